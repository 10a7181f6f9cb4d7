import { ConfigError, loadConfig } from './config';
import { DEV_KT_LOG_SIGNING_KEY, DEV_WITNESS_PUBLIC_KEY } from './kt-dev-keys';

const W = `http://127.0.0.1:3007/|${DEV_WITNESS_PUBLIC_KEY.toUpperCase()}`;
const PROD = { NODE_ENV: 'production', DATABASE_URL: 'postgres://u:pw@db/umbra' };
const OTHER_SK = '11'.repeat(32);

describe('key-transparency log config (key-directory)', () => {
  it('parses KT_WITNESSES into url (no trailing slash) and lower-case key, and defaults the quorum to 1 with witnesses, 0 without', () => {
    const c = loadConfig('key-directory', { KT_WITNESSES: `${W}, https://w2.example.org|${'ab'.repeat(16)}${DEV_WITNESS_PUBLIC_KEY.slice(32)}` });
    expect(c.ktWitnesses[0]).toEqual({ url: 'http://127.0.0.1:3007', publicKey: DEV_WITNESS_PUBLIC_KEY });
    expect(c.ktWitnesses).toHaveLength(2);
    expect(c.KT_WITNESS_QUORUM).toBeUndefined();
    expect(loadConfig('key-directory', {}).ktWitnesses).toEqual([]);
  });

  it('refuses malformed witnesses, a bad log key and a quorum the witnesses cannot meet', () => {
    for (const KT_WITNESSES of ['http://w', `ftp://w|${DEV_WITNESS_PUBLIC_KEY}`, `http://w|${'00'.repeat(32)}`, `http://w|abc`]) {
      expect(() => loadConfig('key-directory', { KT_WITNESSES })).toThrow(/KT_WITNESSES/);
    }
    expect(() => loadConfig('key-directory', { KT_LOG_SIGNING_KEY: '00'.repeat(32) })).toThrow(/KT_LOG_SIGNING_KEY/);
    expect(() => loadConfig('key-directory', { KT_WITNESSES: W, KT_WITNESS_QUORUM: '2' })).toThrow(ConfigError);
    expect(() => loadConfig('key-directory', { KT_WITNESSES: W, KT_WITNESS_QUORUM: '0' })).toThrow(ConfigError);
    expect(loadConfig('key-directory', { KT_WITNESSES: W, KT_WITNESS_QUORUM: '1' }).KT_WITNESS_QUORUM).toBe(1);
  });

  it('production refuses the development log key and running without witnesses; the key never prints', () => {
    expect(() => loadConfig('key-directory', { ...PROD, KT_WITNESSES: W })).toThrow(/KT_LOG_SIGNING_KEY: is the development key/);
    expect(() => loadConfig('key-directory', { ...PROD, KT_LOG_SIGNING_KEY: OTHER_SK })).toThrow(/KT_WITNESSES/);
    const c = loadConfig('key-directory', { ...PROD, KT_LOG_SIGNING_KEY: OTHER_SK, KT_WITNESSES: W });
    expect(JSON.stringify(c)).not.toContain(OTHER_SK);
    expect(JSON.stringify(loadConfig('key-directory', {}))).not.toContain(DEV_KT_LOG_SIGNING_KEY);
    // Other services do not check the log's settings, so the k8s Secret template's placeholders parse for them.
    expect(() => loadConfig('gateway', { KT_LOG_SIGNING_KEY: 'CHANGE_ME_64_HEX', KT_WITNESSES: 'CHANGE_ME' })).not.toThrow();
    expect(() => loadConfig('key-directory', { KT_LOG_SIGNING_KEY: 'CHANGE_ME_64_HEX' })).toThrow(/KT_LOG_SIGNING_KEY: must be 64 hex/);
    expect(() => loadConfig('gateway', { KT_WITNESSES: W, KT_WITNESS_QUORUM: '2' })).not.toThrow();
  });
});
