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
});
