import {
  b64uDecode,
  b64uEncode,
  bytesEqual,
  parseCosignature,
  verifyCosignature,
  type Cosignature,
  type SignedTreeHead,
} from '@umbra/crypto';
import { WITNESS_PATHS } from '@umbra/protocol';
import type { Logger, Metrics } from '@umbra/server';
import type { KtKeys } from './kt-keys';

type Witness = KtKeys['witnesses'][number];

export type PushOutcome = { ok: true; cosignature: Cosignature } | { ok: false; reason: string };

/**
 * Pushes tree heads to witnesses (C2SP tlog-witness add-checkpoint style, PROTOCOL.md §12): the STH
 * without cosignatures, the size the witness last cosigned and a consistency proof from it. A 409
 * names the witness's real size and the push is retried once from there. Every cosignature returned
 * is checked under the pinned witness key before the log keeps it.
 */
export class KtWitnessClient {
  /** The tree size each witness last cosigned, as far as this process knows. */
  private readonly known = new Map<string, number>();
  private readonly backoff = new Map<string, { until: number; failures: number }>();

  constructor(
    private readonly timeoutMs: number,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  async push(w: Witness, sth: SignedTreeHead, proofFrom: (oldSize: number) => Promise<Uint8Array>, now: number): Promise<PushOutcome> {
    const wait = this.backoff.get(w.url);
    if (wait && now < wait.until) return { ok: false, reason: 'backoff' };
    const outcome = await this.attempt(w, sth, proofFrom);
    if (outcome.ok) {
      this.backoff.delete(w.url);
    } else if (outcome.reason !== 'superseded') {
      const failures = (wait?.failures ?? 0) + 1;
      this.backoff.set(w.url, { failures, until: now + Math.min(60_000, 250 * 2 ** Math.min(failures, 8)) });
      this.metrics.ktWitnessFailures.inc({ witness: w.label, reason: outcome.reason });
      this.logger.warn({ event: 'kt.witness.push-failed', witness: w.label, reason: outcome.reason, treeSize: sth.head.treeSize }, 'witness did not cosign');
    }
    return outcome;
  }

  private async attempt(w: Witness, sth: SignedTreeHead, proofFrom: (oldSize: number) => Promise<Uint8Array>): Promise<PushOutcome> {
    const size = sth.head.treeSize;
    let oldSize = this.known.get(w.url) ?? 0;
    for (let round = 0; round < 3; round++) {
      if (oldSize > size) return { ok: false, reason: 'superseded' };
      const body = JSON.stringify({ sth: b64uEncode(sth.bytes), oldSize, proof: b64uEncode(await proofFrom(oldSize)) });
      let res: Response;
      try {
        res = await fetch(`${w.url}${WITNESS_PATHS.addSth}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch {
        return { ok: false, reason: 'unreachable' };
      }
      const json = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
      if (res.status === 200) {
        let c: Cosignature;
        try {
          c = parseCosignature(b64uDecode(String(json?.cosignature ?? '')));
        } catch {
          return { ok: false, reason: 'bad_cosignature' };
        }
        if (!bytesEqual(c.witnessId, w.id) || !verifyCosignature(sth.tbs, c, w.publicKey)) return { ok: false, reason: 'bad_cosignature' };
        this.known.set(w.url, size);
        return { ok: true, cosignature: c };
      }
      if (res.status === 409) {
        const theirs = witnessSize(json);
        if (theirs === undefined || theirs === oldSize) return { ok: false, reason: 'http_409' };
        oldSize = theirs;
        this.known.set(w.url, theirs);
        continue;
      }
      if (res.status === 422) {
        this.logger.error({ event: 'kt.witness.fork-reported', witness: w.label, treeSize: size }, 'a witness reports that this log forked');
        return { ok: false, reason: 'fork_reported' };
      }
      return { ok: false, reason: `http_${res.status}` };
    }
    return { ok: false, reason: 'http_409' };
  }
}

/** The witness's size from a 409 body: { treeSize } or the error shape's details. */
function witnessSize(json: Record<string, unknown> | undefined): number | undefined {
  const error = json?.error as { details?: { treeSize?: unknown } } | undefined;
  const v = json?.treeSize ?? (json?.details as { treeSize?: unknown } | undefined)?.treeSize ?? error?.details?.treeSize;
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}
