import { loadConfig, ConfigError, ENV_SCHEMA } from './config';
import { Secret } from './secret';

describe('loadConfig', () => {
  it('applies defaults and the service port', () => {
    const c = loadConfig('gateway', {});
    expect(c.port).toBe(3000);
    expect(c.PUBLIC_ORIGIN).toBe('http://127.0.0.1:8080');
    expect(c.instanceId).toMatch(/^gateway-/);
    expect(loadConfig('key-directory', { PORT: '4000' }).port).toBe(4000);
  });

  it('fails fast with every bad variable named', () => {
    expect(() => loadConfig('gateway', { PORT: 'eighty', PUBLIC_ORIGIN: 'http://x.example/path', POW_DIFFICULTY: '99' })).toThrow(ConfigError);
    try {
      loadConfig('gateway', { PORT: 'eighty', PUBLIC_ORIGIN: 'http://x.example/path' });
    } catch (err) {
      expect((err as Error).message).toContain('PORT');
      expect((err as Error).message).toContain('PUBLIC_ORIGIN');
    }
  });

  it('never prints secrets', () => {
    const c = loadConfig('gateway', { DATABASE_URL: 'postgres://u:hunter2@db/umbra' });
    expect(c.DATABASE_URL).toBeInstanceOf(Secret);
    expect(c.DATABASE_URL.reveal()).toContain('hunter2');
    expect(JSON.stringify(c)).not.toContain('hunter2');
    expect(String(c.DATABASE_URL)).toBe('[REDACTED]');
  });

  it('documents each variable once in the schema', () => {
    expect(Object.keys(ENV_SCHEMA.shape)).toContain('REDIS_URL');
  });

  describe('production', () => {
    const good = {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://umbra:s3cr3t-db@db:5432/umbra',
      REDIS_URL: 'redis://:s3cr3t-redis@redis:6379',
      S3_ACCESS_KEY_ID: 'umbra-services',
      S3_SECRET_ACCESS_KEY: 's3cr3t-s3-key',
    };
    const refusal = (service: Parameters<typeof loadConfig>[0], env: Record<string, string>): string => {
      try {
        loadConfig(service, env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      return 'accepted';
    };

    it('boots with real secrets', () => {
      expect(loadConfig('media-upload', good).NODE_ENV).toBe('production');
    });

    it('refuses a passwordless or default DATABASE_URL, naming the variable and never printing the value', () => {
      const msg = refusal('gateway', { ...good, DATABASE_URL: 'postgres://umbra@db-host-7/umbra' });
      expect(msg).toContain('DATABASE_URL');
      expect(msg).not.toContain('db-host-7');
      expect(refusal('gateway', { ...good, DATABASE_URL: undefined as unknown as string })).toContain('DATABASE_URL');
    });

    it("refuses the embedded store's S3RVER keys in the services that use S3", () => {
      for (const service of ['media-upload', 'expiry-worker'] as const) {
        const msg = refusal(service, { ...good, S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER' });
        expect(msg).toContain('S3_ACCESS_KEY_ID');
        expect(msg).toContain('S3_SECRET_ACCESS_KEY');
        expect(msg).not.toMatch(/S3RVER(?!_)/);
      }
    });

    it('refuses change-me placeholders in any secret', () => {
      const msg = refusal('key-directory', { ...good, REDIS_URL: 'redis://:change-me-redis@redis:6379', DATABASE_URL: 'postgres://u:CHANGE_ME_PASSWORD@db/umbra' });
      expect(msg).toContain('REDIS_URL');
      expect(msg).toContain('DATABASE_URL');
      expect(msg.toLowerCase()).not.toContain('change-me-redis');
      expect(msg).not.toContain('CHANGE_ME_PASSWORD');
    });

    it('accepts the development defaults outside production', () => {
      expect(loadConfig('media-upload', { NODE_ENV: 'development' }).S3_ACCESS_KEY_ID.reveal()).toBe('S3RVER');
    });
  });

  describe('TRUSTED_PROXIES', () => {
    it('defaults to loopback only (the local edge)', () => {
      expect(loadConfig('gateway', {}).TRUSTED_PROXIES).toEqual(['loopback']);
    });

    it('parses a CIDR list and refuses anything else', () => {
      expect(loadConfig('gateway', { TRUSTED_PROXIES: '10.0.0.0/8, 172.28.0.10/32,fd00::/8' }).TRUSTED_PROXIES).toEqual(['10.0.0.0/8', '172.28.0.10/32', 'fd00::/8']);
      expect(loadConfig('gateway', { TRUSTED_PROXIES: '' }).TRUSTED_PROXIES).toEqual([]);
      for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/8,*', 'fd00::/129']) {
        expect(() => loadConfig('gateway', { TRUSTED_PROXIES: bad })).toThrow(/TRUSTED_PROXIES/);
      }
    });
  });

  describe('TURN (calls)', () => {
    const secret = 'a-long-turn-secret-0123456789';
    it('is off by default, on with a secret and turn: URIs, and never prints the secret', () => {
      expect(loadConfig('gateway', {}).TURN_URLS).toEqual([]);
      const c = loadConfig('gateway', { TURN_SECRET: secret, TURN_URLS: 'turn:turn.example.com:3478?transport=udp, turns:turn.example.com:5349' });
      expect(c.TURN_URLS).toEqual(['turn:turn.example.com:3478?transport=udp', 'turns:turn.example.com:5349']);
      expect(c.TURN_SECRET!.reveal()).toBe(secret);
      expect(JSON.stringify(c)).not.toContain(secret);
      expect(c.TURN_CREDENTIAL_TTL_S).toBe(3600);
    });

    it('refuses one without the other, a short secret, other URI schemes, and a TTL outside 60 s – 1 d', () => {
      expect(() => loadConfig('gateway', { TURN_SECRET: secret })).toThrow(/TURN_SECRET \/ TURN_URLS: set both/);
      expect(() => loadConfig('gateway', { TURN_URLS: 'turn:x:3478' })).toThrow(/TURN_SECRET \/ TURN_URLS: set both/);
      expect(() => loadConfig('gateway', { TURN_SECRET: 'short', TURN_URLS: 'turn:x:3478' })).toThrow(/TURN_SECRET/);
      expect(() => loadConfig('gateway', { TURN_SECRET: secret, TURN_URLS: 'stun:x:3478' })).toThrow(/TURN_URLS/);
      expect(() => loadConfig('gateway', { TURN_SECRET: secret, TURN_URLS: 'turn:x:3478', TURN_CREDENTIAL_TTL_S: '10' })).toThrow(/TURN_CREDENTIAL_TTL_S/);
      try {
        loadConfig('gateway', { TURN_SECRET: 'change-me-turn-secret', TURN_URLS: 'turn:x:3478', NODE_ENV: 'production', DATABASE_URL: 'postgres://u:pw@db/umbra' });
        throw new Error('accepted');
      } catch (err) {
        expect((err as Error).message).toContain('TURN_SECRET: still holds a change-me placeholder');
        expect((err as Error).message).not.toContain('change-me-turn-secret');
      }
    });
  });
});
