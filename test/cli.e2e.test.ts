import { spawn, execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TestStack, waitFor } from './support/harness';

const run = promisify(execFile);
const CLI = path.join(process.cwd(), 'libs/cli/dist/umbra.js');

describe('umbra CLI (built) against a running stack', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start();
  });
  afterAll(() => stack.stop());

  const umbra = async (home: string, ...args: string[]) => (await run(process.execPath, [CLI, '--home', home, '--server', stack.origin, ...args])).stdout.trim();

  it('inits, registers with a handle, sends to @handle, listens, links a second device by QR code, forms a group, and shows matching safety numbers', async () => {
    const a = mkdtempSync(path.join(tmpdir(), 'umbra-a-'));
    const b = mkdtempSync(path.join(tmpdir(), 'umbra-b-'));
    const alice = await umbra(a, 'init');
    expect(alice).toMatch(/^um1[02-9ac-hj-np-z]{58}$/);
    const bob = await umbra(b, 'init');
    await umbra(a, 'register');
    const handle = `bob_${Date.now().toString(36)}`;
    expect(JSON.parse(await umbra(b, 'register', '--handle', handle))).toMatchObject({ accountId: bob, handle });
    expect(JSON.parse(await umbra(b, 'whoami'))).toMatchObject({ accountId: bob, handle, registered: true });

    const listener = spawn(process.execPath, [CLI, '--home', b, '--server', stack.origin, 'listen']);
    let out = '';
    listener.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await new Promise((r) => setTimeout(r, 1500));
      expect(JSON.parse(await umbra(a, 'send', `@${handle}`, 'hello', 'from', 'the', 'CLI'))).toMatchObject({ sent: true });
      await waitFor(() => out.includes('\n'), 10_000, 'a JSON line from listen');
      expect(JSON.parse(out.split('\n')[0]!)).toMatchObject({ from: alice, text: 'hello from the CLI', verified: true, sync: false });
    } finally {
      listener.kill('SIGTERM');
    }
    const devices = JSON.parse(await umbra(a, 'devices'));
    expect(devices).toMatchObject({ accountId: alice, listVersion: 1 });
    expect(devices.devices).toHaveLength(1);
    const snA = JSON.parse(await umbra(a, 'safety-number', bob)).safetyNumber;
    const snB = JSON.parse(await umbra(b, 'safety-number', alice)).safetyNumber;
    expect(snA).toMatch(/^(\d{5} ){11}\d{5}$/);
    expect(snA).toBe(snB);
    await expect(umbra(a, 'send', 'um1nope', 'x')).rejects.toThrow();

    // Link a second device to Bob's account with the QR flow, then it receives too.
    const b2 = mkdtempSync(path.join(tmpdir(), 'umbra-b2-'));
    const linking = spawn(process.execPath, [CLI, '--home', b2, '--server', stack.origin, 'link']);
    let linkOut = '';
    linking.stdout.on('data', (d: Buffer) => (linkOut += d.toString()));
    await waitFor(() => linkOut.includes('\n'), 10_000, 'a link code');
    const code = JSON.parse(linkOut.split('\n')[0]!).linkCode as string;
    expect(code).toMatch(/^umbra-link:1:/);
    expect(JSON.parse(await umbra(b, 'link', code))).toMatchObject({ listVersion: 2 });
    await new Promise<void>((resolve) => linking.on('exit', () => resolve()));
    expect(JSON.parse(linkOut.trim().split('\n').pop()!)).toMatchObject({ accountId: bob, linked: true });
    expect(JSON.parse(await umbra(b2, 'devices')).devices).toHaveLength(2);
    const listener3 = spawn(process.execPath, [CLI, '--home', b2, '--server', stack.origin, 'listen']);
    let out3 = '';
    listener3.stdout.on('data', (d: Buffer) => (out3 += d.toString()));
    try {
      await new Promise((r) => setTimeout(r, 1500));
      await umbra(a, 'send', bob, 'to both of your devices');
      await waitFor(() => out3.includes('to both of your devices'), 10_000, 'the message on the linked device');
    } finally {
      listener3.kill('SIGTERM');
    }

    const group = JSON.parse(await umbra(a, 'group', 'create', `@${handle}`)).group as string;
    const listener2 = spawn(process.execPath, [CLI, '--home', b, '--server', stack.origin, 'listen']);
    let out2 = '';
    listener2.stdout.on('data', (d: Buffer) => (out2 += d.toString()));
    try {
      await new Promise((r) => setTimeout(r, 1500));
      expect(JSON.parse(await umbra(a, 'group', 'send', group, 'hello', 'group'))).toMatchObject({ sent: true });
      await waitFor(() => out2.includes('hello group'), 10_000, 'the group message');
      const line = out2.split('\n').find((l) => l.includes('hello group'))!;
      expect(JSON.parse(line)).toMatchObject({ from: alice, group, text: 'hello group' });
    } finally {
      listener2.kill('SIGTERM');
    }
  });

  it('sets a vanishing timer the peer adopts; the message is gone from both histories when it fires', async () => {
    const a = mkdtempSync(path.join(tmpdir(), 'umbra-va-'));
    const b = mkdtempSync(path.join(tmpdir(), 'umbra-vb-'));
    const alice = await umbra(a, 'init');
    const bob = await umbra(b, 'init');
    await umbra(a, 'register');
    await umbra(b, 'register');
    await expect(umbra(a, 'timer', bob, 'forever')).rejects.toThrow(/not a duration/);
    expect(JSON.parse(await umbra(a, 'timer', bob, '6s'))).toEqual({ timer: { t: 6, m: 'send' } });

    const listener = spawn(process.execPath, [CLI, '--home', b, '--server', stack.origin, 'listen']);
    let out = '';
    listener.stdout.on('data', (d: Buffer) => (out += d.toString()));
    let sentAt = 0;
    try {
      await waitFor(() => out.includes('"timer"'), 10_000, 'bob adopts the timer');
      expect(out).toContain(JSON.stringify({ conversation: alice, timer: { t: 6, m: 'send' } }));
      sentAt = Date.now();
      await umbra(a, 'send', bob, 'this will vanish');
      await waitFor(() => out.includes('this will vanish'), 10_000, 'the vanishing message');
    } finally {
      listener.kill('SIGTERM');
      await new Promise<void>((resolve) => listener.on('exit', () => resolve()));
    }
    const lines = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { text: string | null; vanishesAt: number | null });
    const seen = lines(await umbra(b, 'history', alice)).find((e) => e.text === 'this will vanish');
    expect(seen?.vanishesAt).toBeGreaterThan(sentAt);
    expect(lines(await umbra(a, 'history', bob)).some((e) => e.text === 'this will vanish')).toBe(true);
    await new Promise((r) => setTimeout(r, Math.max(0, seen!.vanishesAt! - Date.now() + 100)));
    expect(lines(await umbra(b, 'history', alice)).some((e) => e.text === 'this will vanish')).toBe(false);
    expect(lines(await umbra(a, 'history', bob)).some((e) => e.text === 'this will vanish')).toBe(false);
  });
});
