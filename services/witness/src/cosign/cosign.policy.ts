import { bytesEqual, verifyConsistency, type ConsistencyProof } from '@umbra/crypto';
import type { WitnessState } from './witness-state.repository';

/** The tree head a log presents (its signature already checked). */
export interface PresentedHead {
  treeSize: number;
  root: Uint8Array;
  timestamp: number;
}

export type Verdict =
  /** Cosign it: the first head seen (trust on first use), the same head again, or a proven extension. */
  | { kind: 'cosign'; first: boolean }
  /** The proof starts from another size than the one last cosigned: the log retries from `treeSize`. */
  | { kind: 'old-size-mismatch'; treeSize: number }
  /**
   * Evidence of a fork, signed by the log itself: the same size with another root, or a smaller size
   * under a newer timestamp (a rollback). Sticky: nothing more is cosigned for this log.
   */
  | { kind: 'fork'; reason: 'same-size-different-root' | 'rollback' }
  /**
   * Refused but not evidence: a consistency proof that does not verify, or an older head replayed
   * (smaller size, not newer). Anyone can POST a genuine signed head with a broken proof, so these
   * must not disable the witness; they are refused every time instead.
   */
  | { kind: 'inconsistent'; reason: 'bad-proof' | 'older-head' }
  /** A fork was recorded earlier: everything is refused until an operator clears it. */
  | { kind: 'forked' };

/** RFC 9162 §2.1.4 check of a presented head against the last one this witness cosigned. Pure. */
export function judgeTreeHead(state: WitnessState, head: PresentedHead, oldSize: number, proof: ConsistencyProof): Verdict {
  if (state.forked) return { kind: 'forked' };
  if (state.treeSize === undefined || state.root === undefined) return { kind: 'cosign', first: true };
  const size = state.treeSize;
  if (head.treeSize === size) {
    return bytesEqual(head.root, state.root) ? { kind: 'cosign', first: false } : { kind: 'fork', reason: 'same-size-different-root' };
  }
  if (head.treeSize < size) {
    return head.timestamp > (state.sthTimestamp ?? 0) ? { kind: 'fork', reason: 'rollback' } : { kind: 'inconsistent', reason: 'older-head' };
  }
  if (oldSize !== size) return { kind: 'old-size-mismatch', treeSize: size };
  // Every tree extends the empty tree; RFC 9162 has no proof from size 0.
  if (size === 0) return proof.path.length === 0 ? { kind: 'cosign', first: false } : { kind: 'inconsistent', reason: 'bad-proof' };
  return verifyConsistency(size, head.treeSize, state.root, head.root, proof.path) ? { kind: 'cosign', first: false } : { kind: 'inconsistent', reason: 'bad-proof' };
}
