import { Inject, Injectable } from '@nestjs/common';
import { encodeConsistencyProof } from '@umbra/crypto';
import { consistencyRanges, inclusionRanges, refsFor, resolveRanges, type Range } from './kt-tree';
import { KtRepository } from './kt.repository';

/** RFC 6962 proofs from the stored subtree nodes. */
@Injectable()
export class KtProofsService {
  constructor(@Inject(KtRepository) private readonly repo: KtRepository) {}

  private async resolve(ranges: Range[]): Promise<Buffer[]> {
    return resolveRanges(ranges, await this.repo.nodes(refsFor(ranges)));
  }

  inclusion(index: number, size: number): Promise<Buffer[]> {
    return this.resolve(inclusionRanges(index, size));
  }

  /** The encoded ConsistencyProof from `first` to `second`; first = 0 (a witness that has seen nothing) gives an empty path. */
  async consistency(first: number, second: number): Promise<Uint8Array> {
    const path = first === 0 ? [] : await this.resolve(consistencyRanges(first, second));
    return encodeConsistencyProof({ firstSize: first, secondSize: second, path });
  }
}
