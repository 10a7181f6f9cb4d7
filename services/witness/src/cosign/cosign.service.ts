import { Inject, Injectable } from '@nestjs/common';
import {
  CryptoError,
  b64uDecode,
  b64uEncode,
  bytesEqual,
  createCosignature,
  encodeCosignature,
  hexDecode,
  hexEncode,
  ktKeyId,
  parseConsistencyProof,
  parseSth,
  pub,
  sha256,
  verifySthLogSignature,
  type ConsistencyProof,
  type SignedTreeHead,
} from '@umbra/crypto';
import { WITNESS_MAX_FUTURE_SKEW_MS, type WitnessAddSthRequest, type WitnessAddSthResponse, type WitnessStateResponse } from '@umbra/protocol';
import { APP_CONFIG, ApiError, Clock, LOGGER, Metrics, RateLimiter, type AppConfig, type Logger } from '@umbra/server';
import { judgeTreeHead, type Verdict } from './cosign.policy';
import { WitnessStateRepository, type WitnessState, type WitnessStateChange } from './witness-state.repository';

const MINUTE = 60_000;
/** RFC 6962 root of the empty tree: SHA256 of the empty string. */
const EMPTY_ROOT = sha256(new Uint8Array(0));

function headOf(state: WitnessState): Record<string, unknown> {
  return { treeSize: state.treeSize ?? null, root: state.root ? hexEncode(state.root) : null, timestamp: state.sthTimestamp ?? null };
}

function headOfSth(sth: SignedTreeHead): Record<string, unknown> {
  return { treeSize: sth.head.treeSize, root: hexEncode(sth.head.root), timestamp: sth.head.timestamp };
}

function decode<T>(what: string, text: string, parse: (b: Uint8Array) => T): T {
  try {
    return parse(b64uDecode(text));
  } catch (err) {
    if (err instanceof CryptoError) throw new ApiError('VALIDATION_FAILED', `${what}: ${err.message}`);
    throw err;
  }
}

/**
 * The witness (PROTOCOL.md §12): verifies the log's signature, checks consistency with the last tree
 * head it cosigned, persists the new head, and only then returns its cosignature. A signed head that
 * conflicts with a cosigned one is recorded as a fork (sticky) and reported (log event
 * `kt.witness.fork`, metric umbra_witness_forks_total).
 */
@Injectable()
export class CosignService {
  private readonly sk: Uint8Array;
  private readonly pk: Uint8Array;
  private readonly witnessId: Uint8Array;
  private readonly logPk: Uint8Array;
  private readonly logId: Uint8Array;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(WitnessStateRepository) private readonly states: WitnessStateRepository,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    @Inject(Clock) private readonly clock: Clock,
    @Inject(Metrics) private readonly metrics: Metrics,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.sk = hexDecode(config.WITNESS_SIGNING_KEY.reveal());
    this.pk = pub(this.sk);
    this.witnessId = ktKeyId(this.pk);
    this.logPk = hexDecode(config.WITNESS_LOG_PUBLIC_KEY);
    this.logId = ktKeyId(this.logPk);
    logger.info({ event: 'kt.witness.start', witnessPublicKey: hexEncode(this.pk), logId: hexEncode(this.logId) }, 'witness ready');
  }

  /** This witness's public key (hex): what operators pin. */
  publicKeyHex(): string {
    return hexEncode(this.pk);
  }

  async addSth(body: WitnessAddSthRequest, ip: string): Promise<WitnessAddSthResponse> {
    await this.limiter.hit('witness-add-sth', ip, this.config.WITNESS_RATE_LIMIT_PER_IP_PER_MINUTE, MINUTE);
    const sth = decode('sth', body.sth, parseSth);
    const proof = decode('proof', body.proof, parseConsistencyProof);
    this.checkPresented(sth, body.oldSize, proof);

    const verdict = await this.states.decide(this.witnessId, this.logId, (state) => {
      const v = judgeTreeHead(state, sth.head, body.oldSize, proof);
      return { change: this.changeFor(v, state, sth), result: { verdict: v, state } };
    });
    return this.answer(verdict.verdict, verdict.state, sth);
  }

  async state(ip: string): Promise<WitnessStateResponse> {
    await this.limiter.hit('witness-state', ip, this.config.WITNESS_RATE_LIMIT_PER_IP_PER_MINUTE, MINUTE);
    const s = await this.states.read(this.witnessId, this.logId);
    return {
      logId: hexEncode(this.logId),
      witnessId: hexEncode(this.witnessId),
      treeSize: s.treeSize ?? 0,
      root: b64uEncode(s.root ?? EMPTY_ROOT),
      cosignedAt: s.cosignedAt ?? 0,
      forked: s.forked,
    };
  }

  /** Checks that need no state: the log's key and signature, the proof's sizes, the clock. */
  private checkPresented(sth: SignedTreeHead, oldSize: number, proof: ConsistencyProof): void {
    if (!bytesEqual(sth.head.logId, this.logId)) {
      this.metrics.witnessAddSth.inc({ outcome: 'refused' });
      throw new ApiError('FORBIDDEN', 'this witness does not follow that log (log_id differs from WITNESS_LOG_PUBLIC_KEY)');
    }
    if (!verifySthLogSignature(sth, this.logPk)) {
      this.metrics.witnessAddSth.inc({ outcome: 'refused' });
      throw new ApiError('FORBIDDEN', 'the tree head is not signed by the log key this witness follows');
    }
    if (proof.firstSize !== oldSize || proof.secondSize !== sth.head.treeSize) {
      throw new ApiError('VALIDATION_FAILED', `proof is from ${proof.firstSize} to ${proof.secondSize}, expected ${oldSize} to ${sth.head.treeSize}`);
    }
    if (sth.head.treeSize === 0 && !bytesEqual(sth.head.root, EMPTY_ROOT)) throw new ApiError('VALIDATION_FAILED', 'an empty tree must have the empty root');
    if (sth.head.timestamp > this.clock.now() + WITNESS_MAX_FUTURE_SKEW_MS) throw new ApiError('CLOCK_SKEW', 'tree head timestamp is in the future');
  }

  private changeFor(v: Verdict, state: WitnessState, sth: SignedTreeHead): WitnessStateChange {
    if (v.kind === 'cosign') {
      return { kind: 'cosigned', treeSize: sth.head.treeSize, root: sth.head.root, sthTimestamp: sth.head.timestamp, cosignedAt: this.clock.now() };
    }
    if (v.kind === 'fork') {
      return {
        kind: 'forked',
        evidence: { reason: v.reason, detectedAt: this.clock.now(), cosigned: headOf(state), presented: { ...headOfSth(sth), sth: b64uEncode(sth.tbs), signature: b64uEncode(sth.signature) } },
      };
    }
    return { kind: 'none' };
  }

  private answer(v: Verdict, state: WitnessState, sth: SignedTreeHead): WitnessAddSthResponse {
    const logId = hexEncode(this.logId);
    switch (v.kind) {
      case 'cosign': {
        // The state this cosignature vouches for is committed (decide() resolved after COMMIT).
        const t = this.clock.now();
        const c = createCosignature(sth.tbs, this.sk, this.pk, Math.max(t, state.cosignedAt ?? 0));
        if (v.first) this.logger.warn({ event: 'kt.witness.first-sth', logId, presented: headOfSth(sth) }, 'first tree head of this log: trusted on first use');
        this.metrics.witnessAddSth.inc({ outcome: v.first ? 'first' : 'cosigned' });
        return { cosignature: b64uEncode(encodeCosignature(c)) };
      }
      case 'old-size-mismatch':
        this.metrics.witnessAddSth.inc({ outcome: 'old_size_mismatch' });
        throw new ApiError('WITNESS_OLD_SIZE_MISMATCH', `this witness last cosigned tree size ${v.treeSize}; prove consistency from there`, { treeSize: v.treeSize });
      case 'fork':
        this.metrics.witnessForks.inc();
        this.metrics.witnessAddSth.inc({ outcome: 'fork' });
        this.logger.error({ event: 'kt.witness.fork', logId, reason: v.reason, cosigned: headOf(state), presented: headOfSth(sth) }, 'key-transparency log fork detected: this witness refuses the log until an operator clears it');
        throw new ApiError('KT_FORK_DETECTED', `fork detected (${v.reason}): this witness cosigned size ${state.treeSize} with another history and cosigns nothing more for this log`);
      case 'forked':
        this.metrics.witnessAddSth.inc({ outcome: 'refused' });
        throw new ApiError('KT_FORK_DETECTED', 'this log was caught forking earlier: nothing is cosigned until an operator clears it');
      case 'inconsistent':
        this.metrics.witnessAddSth.inc({ outcome: 'bad_proof' });
        this.logger.warn({ event: 'kt.witness.inconsistent', logId, reason: v.reason, cosigned: headOf(state), presented: headOfSth(sth) }, 'tree head not proven consistent with the last cosigned one: refused');
        throw new ApiError('KT_FORK_DETECTED', v.reason === 'bad-proof' ? 'the consistency proof does not verify against the last cosigned tree head' : 'the tree head is older than the last cosigned one');
    }
  }
}
