import type { DataSource } from 'typeorm';

/** The last tree head one witness cosigned for one log (undefined fields: nothing cosigned yet). */
export interface WitnessState {
  treeSize: number | undefined;
  root: Uint8Array | undefined;
  sthTimestamp: number | undefined;
  cosignedAt: number | undefined;
  forked: boolean;
}

/** What a decision taken under the row lock writes back, in the same transaction. */
export type WitnessStateChange =
  | { kind: 'none' }
  | { kind: 'cosigned'; treeSize: number; root: Uint8Array; sthTimestamp: number; cosignedAt: number }
  | { kind: 'forked'; evidence: Record<string, unknown> };

interface Row {
  treeSize: number | null;
  root: Buffer | null;
  sthTimestamp: number | null;
  cosignedAt: number | null;
  forked: boolean;
}

const COLUMNS = `tree_size AS "treeSize", root, sth_timestamp AS "sthTimestamp", cosigned_at AS "cosignedAt", forked`;

function b(x: Uint8Array): Buffer {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

function toState(row: Row | undefined): WitnessState {
  return {
    treeSize: row?.treeSize ?? undefined,
    root: row?.root ? new Uint8Array(row.root) : undefined,
    sthTimestamp: row?.sthTimestamp ?? undefined,
    cosignedAt: row?.cosignedAt ?? undefined,
    forked: row?.forked ?? false,
  };
}

/** `witness_state`, keyed by (witness id, log id): every query names both. */
export class WitnessStateRepository {
  constructor(private readonly ds: DataSource) {}

  async read(witnessId: Uint8Array, logId: Uint8Array): Promise<WitnessState> {
    const rows: Row[] = await this.ds.query(`SELECT ${COLUMNS} FROM witness_state WHERE witness_id = $1 AND log_id = $2`, [b(witnessId), b(logId)]);
    return toState(rows[0]);
  }

  /**
   * Runs `decide` with the (witness, log) row locked (created empty on first contact) and writes the
   * change it returns before the transaction commits: the caller answers only after this resolves, so
   * a cosignature is never handed out for a state that was not persisted, and two replicas deciding at
   * once are serialised by the row lock.
   */
  async decide<T>(witnessId: Uint8Array, logId: Uint8Array, decide: (state: WitnessState) => { change: WitnessStateChange; result: T }): Promise<T> {
    return this.ds.transaction(async (tx) => {
      const key = [b(witnessId), b(logId)];
      await tx.query(`INSERT INTO witness_state (witness_id, log_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, key);
      const rows: Row[] = await tx.query(`SELECT ${COLUMNS} FROM witness_state WHERE witness_id = $1 AND log_id = $2 FOR UPDATE`, key);
      const { change, result } = decide(toState(rows[0]));
      if (change.kind === 'cosigned') {
        await tx.query(
          `UPDATE witness_state SET tree_size = $3, root = $4, sth_timestamp = $5, cosigned_at = $6, updated_at = now()
           WHERE witness_id = $1 AND log_id = $2`,
          [...key, change.treeSize, b(change.root), change.sthTimestamp, change.cosignedAt],
        );
      } else if (change.kind === 'forked') {
        await tx.query(
          `UPDATE witness_state SET forked = true, fork_evidence = COALESCE(fork_evidence, $3::jsonb), updated_at = now()
           WHERE witness_id = $1 AND log_id = $2`,
          [...key, JSON.stringify(change.evidence)],
        );
      }
      return result;
    });
  }
}
