import { randomBytes } from 'node:crypto';
import { TestStack } from './support/harness';
import { registeredClient, type TestClient } from './support/clients';

/** The device-linking mailbox (PROTOCOL.md §1) belongs to the account that posted its message. */
describe('provisioning mailbox', () => {
  let stack: TestStack;
  let holder: TestClient;
  let other: TestClient;

  beforeAll(async () => {
    stack = await TestStack.start();
    holder = await registeredClient(stack.origin);
    other = await registeredClient(stack.origin);
  });

  afterAll(async () => {
    await holder?.client.close();
    await other?.client.close();
    await stack?.stop();
  });

  const b64u = (n: number) => randomBytes(n).toString('base64url');
  const channel = () => b64u(32);
  async function call(method: string, path: string, opts: { body?: unknown; as?: TestClient } = {}) {
    const headers: Record<string, string> = {};
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.as) headers.authorization = `Bearer ${await opts.as.client.getToken()}`;
    const res = await fetch(`${stack.origin}${path}`, { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
    const json = (await res.json().catch(() => ({}))) as { error?: { code?: string }; reply?: string; message?: string };
    return { status: res.status, code: json.error?.code ?? '', reply: json.reply, message: json.message };
  }
  const linkReply = () => Buffer.concat([Buffer.from([1]), randomBytes(64)]).toString('base64url');

  it('the first reply wins: a second one gets 409 and the holder reads the first', async () => {
    const ch = channel();
    const message = b64u(200);
    expect((await call('PUT', `/v1/provisioning/${ch}/message`, { body: { message }, as: holder })).status).toBe(204);
    expect((await call('GET', `/v1/provisioning/${ch}/message`)).message).toBe(message);
    const first = linkReply();
    expect((await call('PUT', `/v1/provisioning/${ch}/reply`, { body: { reply: first } })).status).toBe(204);
    expect(await call('PUT', `/v1/provisioning/${ch}/reply`, { body: { reply: linkReply() } })).toMatchObject({ status: 409, code: 'PROVISIONING_REPLY_EXISTS' });
    expect(await call('GET', `/v1/provisioning/${ch}/reply`, { as: holder })).toMatchObject({ status: 200, reply: first });
  });

  it('only the account that posted the message reads the reply or replaces the message', async () => {
    const ch = channel();
    const message = b64u(200);
    expect((await call('PUT', `/v1/provisioning/${ch}/message`, { body: { message }, as: holder })).status).toBe(204);
    expect(await call('PUT', `/v1/provisioning/${ch}/message`, { body: { message: b64u(200) }, as: other })).toMatchObject({ status: 409, code: 'PROVISIONING_CHANNEL_TAKEN' });
    expect((await call('GET', `/v1/provisioning/${ch}/message`)).message).toBe(message);
    const reply = linkReply();
    expect((await call('PUT', `/v1/provisioning/${ch}/reply`, { body: { reply } })).status).toBe(204);
    expect(await call('GET', `/v1/provisioning/${ch}/reply`, { as: other })).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    expect(await call('GET', `/v1/provisioning/${ch}/reply`)).toMatchObject({ status: 401 });
    // The poster may retry its own post.
    const again = b64u(200);
    expect((await call('PUT', `/v1/provisioning/${ch}/message`, { body: { message: again }, as: holder })).status).toBe(204);
    expect((await call('GET', `/v1/provisioning/${ch}/message`)).message).toBe(again);
    expect(await call('GET', `/v1/provisioning/${ch}/reply`, { as: holder })).toMatchObject({ status: 200, reply });
  });

  it('a reply needs an open channel', async () => {
    expect(await call('PUT', `/v1/provisioning/${channel()}/reply`, { body: { reply: linkReply() } })).toMatchObject({ status: 404, code: 'NOT_FOUND' });
  });
});
