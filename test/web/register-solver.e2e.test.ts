import { checkPow } from '@umbra/protocol';
import { MemoryStore, UmbraApiError, UmbraClient, solvePow } from '@umbra/sdk';
import { TestStack } from '../support/harness';

/** UmbraClient.register's solvePow: how the web client runs the proof of work in a Web Worker. */
describe('register with a given proof-of-work solver', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start();
  });
  afterAll(async () => {
    await stack.stop();
  });

  async function newClient(): Promise<UmbraClient> {
    const client = await UmbraClient.open({ serverUrl: stack.origin, store: new MemoryStore() });
    await client.createIdentity();
    return client;
  }

  it("uses the solver's answer for the server's challenge", async () => {
    const client = await newClient();
    const calls: { accountId: Uint8Array; difficulty: number }[] = [];
    await client.register({
      solvePow: (challenge, accountId, difficulty) => {
        calls.push({ accountId, difficulty });
        return solvePow(challenge, accountId, difficulty);
      },
    });
    expect(calls).toEqual([{ accountId: client.identity.accountId, difficulty: 4 }]);
    await expect(client.authenticate()).resolves.toEqual(expect.any(String));
    await client.close();
  });

  it('fails registration when the solver answers wrongly (its answer is what is sent)', async () => {
    const client = await newClient();
    const wrong = async (challenge: Uint8Array, accountId: Uint8Array, difficulty: number) => {
      const right = await solvePow(challenge, accountId, difficulty);
      // Any other 8 bytes: at difficulty 4, one in 16 would pass by chance, so take one that does not.
      for (let n = 1; ; n++) {
        const other = right.slice();
        new DataView(other.buffer).setUint32(4, (new DataView(right.buffer).getUint32(4) + n) >>> 0);
        if (!checkPow(challenge, accountId, other, difficulty)) return other;
      }
    };
    const err = await client.register({ solvePow: wrong }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UmbraApiError);
    expect((err as UmbraApiError).status).toBe(400);
    await client.close();
  });
});
