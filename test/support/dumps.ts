import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { DataSource } from 'typeorm';

/**
 * Which needles (case-insensitive) occur in any row of any Postgres table, with bytea as hex. Rows
 * are read through a cursor and searched one by one: the shared test database can hold more text
 * than one JavaScript string.
 */
export async function searchPostgres(db: DataSource, needles: string[]): Promise<{ found: string[]; rows: number; chars: number }> {
  const lower = needles.map((n) => n.toLowerCase());
  const found = new Set<string>();
  let rows = 0;
  let chars = 0;
  const tables: { table_name: string }[] = await db.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`);
  const runner = db.createQueryRunner();
  try {
    await runner.startTransaction('REPEATABLE READ');
    for (const { table_name } of tables) {
      await runner.query(`DECLARE dump NO SCROLL CURSOR FOR SELECT x::text AS r FROM "${table_name}" x`);
      for (;;) {
        const batch: { r: string }[] = await runner.query(`FETCH 2000 FROM dump`);
        if (batch.length === 0) break;
        for (const { r } of batch) {
          rows++;
          chars += r.length;
          const text = r.toLowerCase();
          lower.forEach((n, i) => {
            if (text.includes(n)) found.add(needles[i]!);
          });
        }
      }
      await runner.query(`CLOSE dump`);
    }
    await runner.commitTransaction();
  } finally {
    await runner.release();
  }
  return { found: [...found], rows, chars };
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

/**
 * Which needles occur, as bytes, in any file under `dir` (the embedded S3 store's objects, parts and
 * metadata), with how many files and bytes were searched.
 */
export async function searchFiles(dir: string, needles: string[]): Promise<{ found: { needle: string; file: string }[]; files: number; bytes: number }> {
  const found: { needle: string; file: string }[] = [];
  let files = 0;
  let bytes = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const content = await readFile(file);
    files++;
    bytes += content.length;
    for (const needle of needles) if (content.includes(Buffer.from(needle)) || file.includes(needle)) found.push({ needle, file });
  }
  return { found, files, bytes };
}
