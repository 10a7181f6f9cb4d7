import { randomBytes } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { ClientEvent, LIMITS, ServerEvent, WS_PATH, type TypingEvent, type WsAck } from '@umbra/protocol';
import { UmbraApiError } from '@umbra/sdk';
import { TestStack, waitFor } from './support/harness';
import { ClientPool, type TestClient } from './support/clients';

const gidOf = (bytes: number) => randomBytes(bytes).toString('base64url');

describe('typing in a group (issue 16 follow-up): an optional group id, relayed as is', () => {
  let stack: TestStack;
  const pool = new ClientPool(() => stack.origin);
  const sockets: Socket[] = [];

  beforeAll(async () => {
    // Two gateways: the typing device and the member are often on different ones (pub/sub carries the id).
    stack = await TestStack.start({ instances: { gateway: 2 }, env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' } });
  });

  afterAll(async () => {
    for (const s of sockets) s.disconnect();
    await pool.closeAll();
    await stack.stop();
  });

  async function rawSocket(t: TestClient): Promise<Socket> {
    const socket: Socket = io(stack.origin, { path: WS_PATH, transports: ['websocket'], auth: { token: await t.client.getToken() }, reconnection: false });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    return socket;
  }

  function emit<T>(socket: Socket, payload: unknown): Promise<WsAck<T>> {
    return new Promise((resolve) => socket.emit(ClientEvent.Typing, payload, (res: WsAck<T>) => resolve(res)));
  }

  it('one event per member account: an online member sees the group id, an offline one gets nothing, now or later', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    const carol = await pool.registered();
    await alice.client.connect();
    const atBob: TypingEvent[] = [];
    bob.client.on('typing', (ev) => atBob.push(ev));
    await bob.client.connect();
    const gid = gidOf(32);

    const told = [];
    for (const member of [bob, carol]) told.push(await alice.client.typing(member.client.identity.accountIdText, 'started', gid));
    expect(told).toEqual([{ devices: 1 }, { devices: 0 }]);
    await waitFor(() => atBob.length === 1, 5000, 'typing in the group');
    expect(atBob[0]).toEqual({ from: alice.client.identity.accountIdText, fromDeviceId: alice.client.identity.device.deviceId, state: 'started', gid });

    // 1:1 typing carries no group id at all (not an empty one).
    await alice.client.typing(bob.client.identity.accountIdText, 'stopped');
    await waitFor(() => atBob.length === 2, 5000, '1:1 typing');
    expect(atBob[1]).toEqual({ from: alice.client.identity.accountIdText, fromDeviceId: alice.client.identity.device.deviceId, state: 'stopped' });
    expect('gid' in atBob[1]!).toBe(false);

    // The longest id the limit allows goes through unchanged.
    const longest = gidOf(LIMITS.TYPING_GROUP_ID_MAX_BYTES);
    await alice.client.typing(bob.client.identity.accountIdText, 'started', longest);
    await waitFor(() => atBob.length === 3, 5000, 'typing with the longest group id');
    expect(atBob[2]!.gid).toBe(longest);

    // Carol was offline: nothing was kept for her.
    const atCarol: TypingEvent[] = [];
    let carolEmpty = 0;
    carol.client.on('typing', (ev) => atCarol.push(ev));
    carol.client.on('queueEmpty', () => carolEmpty++);
    await carol.client.connect();
    await waitFor(() => carolEmpty > 0, 5000, 'queue-empty');
    await new Promise((r) => setTimeout(r, 300));
    expect(atCarol).toEqual([]);
    expect(carol.received).toEqual([]);
  });

  it('a bad group id is refused with a stable code and reaches nobody', async () => {
    const alice = await pool.registered();
    const bob = await pool.registered();
    const atBob: TypingEvent[] = [];
    bob.client.on('typing', (ev) => atBob.push(ev));
    await bob.client.connect();
    const socket = await rawSocket(alice);
    const to = bob.client.identity.accountIdText;
    const refused = (code: string) => ({ ok: false, error: { code } });

    expect(await emit(socket, { to, state: 'started', gid: 'not base64url!' })).toMatchObject(refused('BAD_ENCODING'));
    expect(await emit(socket, { to, state: 'started', gid: `${gidOf(31)}=` })).toMatchObject(refused('BAD_ENCODING'));
    expect(await emit(socket, { to, state: 'started', gid: gidOf(LIMITS.TYPING_GROUP_ID_MIN_BYTES - 1) })).toMatchObject(refused('VALIDATION_FAILED'));
    expect(await emit(socket, { to, state: 'started', gid: gidOf(LIMITS.TYPING_GROUP_ID_MAX_BYTES + 1) })).toMatchObject(refused('VALIDATION_FAILED'));
    expect(await emit(socket, { to, state: 'started', gid: '' })).toMatchObject(refused('VALIDATION_FAILED'));
    expect(await emit(socket, { to, state: 'started', gid: 7 })).toMatchObject(refused('VALIDATION_FAILED'));
    expect(await emit(socket, { to, state: 'started', gid: null })).toMatchObject(refused('VALIDATION_FAILED'));

    // The SDK surfaces the server's code.
    await alice.client.connect();
    await expect(alice.client.typing(to, 'started', 'not base64url!')).rejects.toMatchObject({ code: 'BAD_ENCODING' });
    await expect(alice.client.typing(to, 'started', gidOf(4))).rejects.toBeInstanceOf(UmbraApiError);

    // None of them was relayed: the first event Bob sees is the good one sent after them.
    const gid = gidOf(32);
    expect(await emit(socket, { to, state: 'started', gid })).toEqual({ ok: true, data: { devices: 1 } });
    await waitFor(() => atBob.length > 0, 5000, 'the good typing event');
    await new Promise((r) => setTimeout(r, 200));
    expect(atBob).toEqual([{ from: alice.client.identity.accountIdText, fromDeviceId: alice.client.identity.device.deviceId, state: 'started', gid }]);
  });
});
