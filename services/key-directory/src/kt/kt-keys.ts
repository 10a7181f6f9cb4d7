import { hexDecode, hexEncode, ktKeyId, pub } from '@umbra/crypto';
import type { AppConfig } from '@umbra/server';

/** The log's key pair and its witnesses, from the validated config. */
export interface KtKeys {
  logSk: Uint8Array;
  logPk: Uint8Array;
  logId: Uint8Array;
  witnesses: { url: string; publicKey: Uint8Array; id: Uint8Array; label: string }[];
  quorum: number;
}

export const KT_KEYS = Symbol('KT_KEYS');

/** KT_WITNESS_QUORUM defaults to 1 with witnesses and 0 without (allowed outside production only; config.ts). */
export function ktKeysFrom(config: AppConfig): KtKeys {
  const logSk = hexDecode(config.KT_LOG_SIGNING_KEY.reveal().toLowerCase());
  const logPk = pub(logSk);
  const witnesses = config.ktWitnesses.map((w) => {
    const publicKey = hexDecode(w.publicKey);
    const id = ktKeyId(publicKey);
    return { url: w.url, publicKey, id, label: hexEncode(id).slice(0, 16) };
  });
  return { logSk, logPk, logId: ktKeyId(logPk), witnesses, quorum: config.KT_WITNESS_QUORUM ?? (witnesses.length > 0 ? 1 : 0) };
}
