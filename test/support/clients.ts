import { MemoryStore, UmbraClient, type KeyValueStore } from '@umbra/sdk';
import type { DeliveredEnvelope } from '@umbra/protocol';
import { randomBytes } from 'node:crypto';
import { waitFor } from './harness';

export interface TestClient {
  client: UmbraClient;
  store: KeyValueStore;
  received: DeliveredEnvelope[];
  queueEmpty: number;
}

export async function openClient(origin: string, store: KeyValueStore = new MemoryStore()): Promise<TestClient> {
  const client = await UmbraClient.open({ serverUrl: origin, store, sendTimeoutMs: 5000 });
  const t: TestClient = { client, store, received: [], queueEmpty: 0 };
  client.on('message', (env) => {
    t.received.push(env);
  });
  client.on('queueEmpty', () => {
    t.queueEmpty++;
  });
  return t;
}

/** A new identity, registered, with its token. */
export async function registeredClient(origin: string): Promise<TestClient> {
  const t = await openClient(origin);
  await t.client.createIdentity();
  await t.client.register();
  return t;
}

export function randomContent(n = 200): string {
  return randomBytes(n).toString('base64url');
}

export function toDevice(t: TestClient, content = randomContent()) {
  return { accountId: t.client.identity.accountIdText, deviceId: t.client.identity.device.deviceId, type: 2 as const, content };
}

export async function waitReceived(t: TestClient, n: number, timeoutMs = 5000): Promise<void> {
  await waitFor(() => t.received.length >= n, timeoutMs, `${n} messages (have ${t.received.length})`);
}

/** Registered clients of one test file, closed together. */
export class ClientPool {
  private readonly clients: TestClient[] = [];

  constructor(private readonly origin: () => string) {}

  async registered(): Promise<TestClient> {
    const c = await registeredClient(this.origin());
    this.clients.push(c);
    return c;
  }

  track(c: TestClient): TestClient {
    this.clients.push(c);
    return c;
  }

  async closeAll(): Promise<void> {
    for (const c of this.clients.splice(0)) await c.client.close();
  }
}
