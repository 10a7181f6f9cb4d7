import { hexDecode, hexEncode, pub } from '@umbra/crypto';
import { ConfigError, loadConfig } from './config';
import { DEV_KT_LOG_PUBLIC_KEY, DEV_KT_LOG_SIGNING_KEY, DEV_WITNESS_PUBLIC_KEY, DEV_WITNESS_SIGNING_KEY } from './kt-dev-keys';

const PROD = { NODE_ENV: 'production', DATABASE_URL: 'postgres://umbra:s3cret-pw@db:5432/umbra', REDIS_URL: 'redis://:pw@redis:6379' };
const WITNESS_SK = '11'.repeat(32);
const LOG_PK = hexEncode(pub(hexDecode('22'.repeat(32))));

describe('key-transparency development keys', () => {
  it('each public key is Pub() of its secret', () => {
    expect(hexEncode(pub(hexDecode(DEV_KT_LOG_SIGNING_KEY)))).toBe(DEV_KT_LOG_PUBLIC_KEY);
    expect(hexEncode(pub(hexDecode(DEV_WITNESS_SIGNING_KEY)))).toBe(DEV_WITNESS_PUBLIC_KEY);
  });
});

describe('witness configuration', () => {
  it('defaults to the development keys and port 3005 outside production; WITNESS_PORT applies when PORT is unset', () => {
    const c = loadConfig('witness', {});
    expect(c.WITNESS_SIGNING_KEY.reveal()).toBe(DEV_WITNESS_SIGNING_KEY);
    expect(c.WITNESS_LOG_PUBLIC_KEY).toBe(DEV_KT_LOG_PUBLIC_KEY);
    expect(c.port).toBe(3005);
    expect(loadConfig('witness', { WITNESS_PORT: '4005' }).port).toBe(4005);
    expect(loadConfig('witness', { WITNESS_PORT: '4005', PORT: '3000' }).port).toBe(3000);
    expect(JSON.stringify(c)).not.toContain(DEV_WITNESS_SIGNING_KEY);
  });

  it('refuses keys that are not keys, naming the variable and never the value', () => {
    for (const env of [{ WITNESS_SIGNING_KEY: 'CHANGE_ME' }, { WITNESS_SIGNING_KEY: 'ff'.repeat(32) }, { WITNESS_LOG_PUBLIC_KEY: '00'.repeat(32) }, { WITNESS_LOG_PUBLIC_KEY: 'abc' }]) {
      let message = '';
      try {
        loadConfig('witness', env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message).toMatch(/WITNESS_(SIGNING_KEY|LOG_PUBLIC_KEY): must be 64 hex digits/);
      expect(message).not.toContain('ff'.repeat(32));
    }
    // Other services do not read the witness keys.
    expect(() => loadConfig('gateway', { WITNESS_SIGNING_KEY: 'CHANGE_ME' })).not.toThrow();
  });

  it('production refuses the development witness key and the development log key', () => {
    expect(() => loadConfig('witness', PROD)).toThrow(/WITNESS_SIGNING_KEY: is the development key[\s\S]*WITNESS_LOG_PUBLIC_KEY: is the development log key/);
    expect(() => loadConfig('witness', { ...PROD, WITNESS_SIGNING_KEY: WITNESS_SK })).toThrow(/WITNESS_LOG_PUBLIC_KEY/);
    expect(() => loadConfig('witness', { ...PROD, WITNESS_LOG_PUBLIC_KEY: LOG_PK })).toThrow(/WITNESS_SIGNING_KEY/);
    const c = loadConfig('witness', { ...PROD, WITNESS_SIGNING_KEY: WITNESS_SK.toUpperCase(), WITNESS_LOG_PUBLIC_KEY: LOG_PK });
    expect(c.WITNESS_LOG_PUBLIC_KEY).toBe(LOG_PK);
  });
});
