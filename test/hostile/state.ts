import type { DataSource } from 'typeorm';

/**
 * Every stored row that belongs to the given accounts (and what they sent), as one comparable
 * object: accounts, devices, prekeys, envelopes, sends and attachments. Tokens are left out: a
 * request may legitimately mint one.
 */
export async function snapshotAccounts(db: DataSource, accountIds: Uint8Array[]): Promise<Record<string, unknown>> {
  const ids = accountIds.map((a) => Buffer.from(a));
  const q = async (sql: string) => ((await db.query(sql, [ids])) as { v: string | null }[])[0]?.v ?? null;
  return {
    accounts: await q(
      `SELECT md5(string_agg(encode(id, 'hex') || '|' || list_version || '|' || encode(device_list, 'hex') || '|' || coalesce(handle, '-') || '|' ||
                             coalesce(encode(handle_claim, 'hex'), '-') || '|' || handle_claim_version, ',' ORDER BY id)) AS v
       FROM accounts WHERE id = ANY($1)`,
    ),
    accountCount: await q(`SELECT count(*)::text AS v FROM accounts WHERE id = ANY($1)`),
    devices: await q(
      `SELECT md5(string_agg(encode(account_id, 'hex') || '|' || device_id || '|' || encode(dik, 'hex') || '|' || flags, ',' ORDER BY account_id, device_id)) AS v
       FROM devices WHERE account_id = ANY($1)`,
    ),
    prekeys: await q(
      `SELECT count(*) || ':' || coalesce(md5(string_agg(encode(account_id, 'hex') || '|' || device_id || '|' || kind || '|' || key_id || '|' || md5(record), ',' ORDER BY account_id, device_id, kind, key_id)), '-') AS v
       FROM prekeys WHERE account_id = ANY($1)`,
    ),
    envelopes: await q(
      `SELECT count(*) || ':' || coalesce(md5(string_agg(seq || '|' || encode(recipient_account, 'hex') || '|' || recipient_device || '|' || md5(content) || '|' ||
                             expires_at || '|' || read_ttl_s || '|' || delete_at, ',' ORDER BY seq)), '-') AS v
       FROM envelopes WHERE recipient_account = ANY($1) OR sender_account = ANY($1)`,
    ),
    sends: await q(`SELECT count(*)::text AS v FROM message_sends WHERE sender_account = ANY($1)`),
    attachments: await q(
      `SELECT count(*) || ':' || coalesce(md5(string_agg(encode(id, 'hex') || '|' || state || '|' || size, ',' ORDER BY id)), '-') AS v FROM attachments WHERE account_id = ANY($1)`,
    ),
    attachmentUsage: await q(`SELECT coalesce(sum(bytes), 0)::text AS v FROM attachment_usage WHERE account_id = ANY($1)`),
  };
}
