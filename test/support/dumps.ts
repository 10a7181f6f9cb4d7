import type { Redis } from 'ioredis';
import type { DataSource } from 'typeorm';

/** Every value in every Postgres table, as text (bytea as hex). */
export async function dumpPostgres(db: DataSource): Promise<string> {
  const tables: { table_name: string }[] = await db.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`);
  const parts: string[] = [];
  for (const { table_name } of tables) {
    const rows: Record<string, unknown>[] = await db.query(`SELECT * FROM "${table_name}"`);
    for (const row of rows) for (const v of Object.values(row)) parts.push(Buffer.isBuffer(v) ? v.toString('hex') : String(v));
  }
  return parts.join('\n').toLowerCase();
}

/** Every value of every Redis key. */
export async function dumpRedis(redis: Redis, match = '*'): Promise<string> {
  const parts: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      parts.push(key);
      if (type === 'string') parts.push((await redis.getBuffer(key))?.toString('latin1') ?? '');
      else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'list') parts.push(JSON.stringify(await redis.lrange(key, 0, -1)));
      else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(key)));
      else if (type === 'zset') parts.push(JSON.stringify(await redis.zrange(key, 0, -1)));
      else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')));
    }
  } while (cursor !== '0');
  return parts.join('\n');
}
