import type { DataSource } from 'typeorm';
import { isCluster, type RedisClient } from '../redis/redis';

type Check = () => Promise<void>;

function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout')), ms);
    p.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

export class HealthService {
  private draining = false;
  private readonly checks = new Map<string, Check>();

  constructor(ds: DataSource, redis: RedisClient) {
    this.checks.set('postgres', async () => {
      await ds.query('SELECT 1');
    });
    this.checks.set('redis', async () => {
      if (!isCluster(redis)) {
        await redis.ping();
        return;
      }
      // A cluster with a slot unserved (a master down, its replica not yet promoted) refuses every command.
      if (!String(await redis.cluster('INFO')).includes('cluster_state:ok')) throw new Error('cluster_state is not ok');
    });
  }

  addCheck(name: string, check: Check): void {
    this.checks.set(name, check);
  }

  markDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  async readiness(): Promise<{ status: 'ok' | 'unavailable'; checks: Record<string, string> }> {
    const checks: Record<string, string> = {};
    await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        try {
          await withTimeout(check(), 1000);
          checks[name] = 'ok';
        } catch (err) {
          checks[name] = err instanceof Error && err.message === 'timeout' ? 'timeout' : 'down';
        }
      }),
    );
    if (this.draining) checks['shutdown'] = 'draining';
    const ok = !this.draining && Object.values(checks).every((v) => v === 'ok');
    return { status: ok ? 'ok' : 'unavailable', checks };
  }
}
