import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hexDecode, hexEncode, pub } from '@umbra/crypto';
import { DEV_KT_LOG_SIGNING_KEY, DEV_WITNESS_SIGNING_KEY } from '@umbra/server';

/**
 * Key-transparency wiring of `npm start` (PROTOCOL.md §12): the local witness follows the local log,
 * the log pushes its tree heads to the local witness, and the client trust configuration is written to
 * `<data dir>/kt.json` for the SDK and CLI (`--kt-config`, `UMBRA_KT_CONFIG`). With no settings it uses
 * the development keys of libs/server/src/config/kt-dev-keys.ts; variables already set win.
 */

export interface KtTrustConfig {
  logPublicKey: string;
  witnesses: { publicKey: string }[];
  quorum: number;
  mmdMs: number;
  maxSthAgeMs: number;
}

const keyOf = (secretHex: string | undefined, fallback: string) => hexEncode(pub(hexDecode((secretHex ?? fallback).toLowerCase())));

/** Sets WITNESS_LOG_PUBLIC_KEY (the witness's log) and KT_WITNESSES (the log's witnesses) unless already set. */
export function wireLocalWitness(env: Record<string, string | undefined>, witnessUrl: string | undefined): void {
  env.WITNESS_LOG_PUBLIC_KEY ??= keyOf(env.KT_LOG_SIGNING_KEY, DEV_KT_LOG_SIGNING_KEY);
  if (env.KT_WITNESSES === undefined && witnessUrl) env.KT_WITNESSES = `${witnessUrl}|${keyOf(env.WITNESS_SIGNING_KEY, DEV_WITNESS_SIGNING_KEY)}`;
}

/** The trust configuration as the environment describes it (what GET /v1/kt/config answers, computed locally). */
export function ktTrustFromEnv(env: Record<string, string | undefined>): KtTrustConfig {
  const witnesses = (env.KT_WITNESSES ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .map((e) => ({ publicKey: e.slice(e.lastIndexOf('|') + 1).toLowerCase() }));
  return {
    logPublicKey: keyOf(env.KT_LOG_SIGNING_KEY, DEV_KT_LOG_SIGNING_KEY),
    witnesses,
    quorum: env.KT_WITNESS_QUORUM !== undefined ? Number(env.KT_WITNESS_QUORUM) : Math.min(1, witnesses.length),
    mmdMs: env.KT_MMD_MS !== undefined ? Number(env.KT_MMD_MS) : 3_600_000,
    maxSthAgeMs: 86_400_000,
  };
}

/**
 * Writes `file`: the log's own GET /v1/kt/config when it answers (the same JSON operators publish),
 * else the configuration computed from the environment. Returns where it came from.
 */
export async function writeKtTrustConfig(origin: string, env: Record<string, string | undefined>, file: string): Promise<'log' | 'environment'> {
  let config: KtTrustConfig | undefined;
  try {
    const res = await fetch(`${origin}/v1/kt/config`, { signal: AbortSignal.timeout(5000) });
    if (res.ok) config = (await res.json()) as KtTrustConfig;
  } catch {
    // not served (yet): fall back to the environment
  }
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(config ?? ktTrustFromEnv(env), null, 2)}\n`);
  return config ? 'log' : 'environment';
}
