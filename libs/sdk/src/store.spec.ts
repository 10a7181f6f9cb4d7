import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { randomBytes } from '@umbra/crypto';
import { EncryptedStore, FileStore, MemoryStore, StoreTransaction, type StoreWrite } from './store';

describe('SDK stores: batches are all or nothing', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(`${tmpdir()}/umbra-store-`);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a transaction reads its own writes and reaches the store only on commit, in one batch', async () => {
    const inner = new MemoryStore();
    await inner.set('a', '1');
    await inner.set('b', '2');
    const batches: (readonly StoreWrite[])[] = [];
    const spy = Object.assign(Object.create(inner) as MemoryStore, {
      batch: (w: readonly StoreWrite[]) => (batches.push(w), inner.batch(w)),
      set: () => Promise.reject(new Error('unexpected set')),
      delete: () => Promise.reject(new Error('unexpected delete')),
    });
    const tx = new StoreTransaction(spy);
    await tx.set('c', '3');
    await tx.delete('a');
    expect(await tx.get('c')).toBe('3');
    expect(await tx.get('a')).toBeUndefined();
    expect((await tx.keys('')).sort()).toEqual(['b', 'c']);
    expect(await inner.get('a')).toBe('1');
    expect(await inner.get('c')).toBeUndefined();
    await tx.commit();
    expect(batches).toEqual([[['c', '3'], ['a', undefined]]]);
    expect((await inner.keys('')).sort()).toEqual(['b', 'c']);
  });

  it('a failed commit leaves the store as it was', async () => {
    const inner = new MemoryStore();
    const failing = Object.assign(Object.create(inner) as MemoryStore, { batch: () => Promise.reject(new Error('disk full')) });
    const tx = new StoreTransaction(failing);
    await tx.set('x', '1');
    await expect(tx.commit()).rejects.toThrow('disk full');
    expect(await inner.keys('')).toEqual([]);
  });

  it('FileStore applies a batch journal left by a crash before anything is read, and hides it', async () => {
    const store = new FileStore(dir);
    await store.set('session/a', 'old');
    await store.set('gone', 'x');
    // A crash after the journal was renamed into place and before it was applied.
    await writeFile(`${dir}/.batch.journal`, JSON.stringify([['session/a', 'new'], ['seen', '["k"]'], ['gone', null]]));
    const reopened = new FileStore(dir);
    expect(await reopened.get('session/a')).toBe('new');
    expect(await reopened.get('seen')).toBe('["k"]');
    expect(await reopened.get('gone')).toBeUndefined();
    expect((await reopened.keys('')).sort()).toEqual(['seen', 'session/a']);
    expect(await readdir(dir)).not.toContain('.batch.journal');
  });

  it('FileStore and EncryptedStore batches set and delete together', async () => {
    const store = new EncryptedStore(new FileStore(dir), randomBytes(32));
    await store.set('a', '1');
    await store.batch([
      ['a', undefined],
      ['b', '2'],
      ['c', '3'],
    ]);
    expect(await store.get('a')).toBeUndefined();
    expect(await store.get('b')).toBe('2');
    expect((await store.keys('')).sort()).toEqual(['b', 'c']);
    expect((await readdir(dir)).filter((f) => !f.endsWith('.tmp')).sort()).toEqual(['b', 'c']);
  });
});
