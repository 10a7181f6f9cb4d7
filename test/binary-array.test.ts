import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { byteaArray } from '@umbra/server';
import { TEST_DATABASE_URL } from './support/harness';

describe('bytea[] parameters in the binary array format (real Postgres)', () => {
  const db = new Client({ connectionString: TEST_DATABASE_URL });
  beforeAll(() => db.connect());
  afterAll(() => db.end());

  it('arrive as the same values, in order, empty elements and an empty array included', async () => {
    const values = [randomBytes(32), Buffer.alloc(0), randomBytes(1), randomBytes(70_000)];
    const { rows } = await db.query<{ v: Buffer; i: string }>('SELECT v, i FROM unnest($1::bytea[]) WITH ORDINALITY AS x(v, i) ORDER BY i', [byteaArray(values)]);
    expect(rows.map((r) => r.v)).toEqual(values);
    const empty = await db.query<{ n: number }>('SELECT cardinality($1::bytea[])::int AS n', [byteaArray([])]);
    expect(empty.rows[0]!.n).toBe(0);
  });

  it('is refused for another element type, so a wrong cast cannot pass silently', async () => {
    await expect(db.query('SELECT $1::int8[]', [byteaArray([randomBytes(8)])])).rejects.toThrow(/element type/);
  });
});
