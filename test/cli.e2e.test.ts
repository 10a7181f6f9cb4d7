import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TestStack } from './support/harness';
import { Background, UMBRA_BIN, runCommand, runUmbra, type RunResult } from './support/umbra-cli';
import { randomBytes } from 'node:crypto';
import { MemoryStore, Umbra } from '@umbra/sdk';

const exec = promisify(execFile);
const tmp = (name: string) => mkdtempSync(path.join(tmpdir(), `umbra-${name}-`));
const ACCOUNT_ID = /^um1[02-9ac-hj-np-z]{58}$/;

describe('the umbra bin (issue 13 #1: npx umbra right after npm install)', () => {
  it('is a committed file, declared as the bin in package.json and the lockfile', async () => {
    const pkg = JSON.parse(readFileSync('libs/cli/package.json', 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin).toEqual({ umbra: 'bin/umbra.cjs' });
    const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, { bin?: Record<string, string> }> };
    expect(lock.packages['libs/cli']?.bin).toEqual({ umbra: 'bin/umbra.cjs' });
    const { stdout } = await exec('git', ['ls-files', '--error-unmatch', 'libs/cli/bin/umbra.cjs']);
    expect(stdout.trim()).toBe('libs/cli/bin/umbra.cjs');
  });

  // npm links a bin only if its file exists at install time: install the CLI package the way a fresh
  // clone has it (no dist/) into a scratch project, offline, and run `npx umbra` there.
  const installScratch = (pkgDir: string) => {
    const app = tmp('npx-app');
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'scratch', private: true, dependencies: { '@umbra/cli': `file:${pkgDir}` } }));
    return app;
  };
  const npmEnv = { ...process.env, npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

  it('before any build, `npx umbra` exists and says exactly what to run (exit 1)', async () => {
    const pkg = tmp('npx-pkg');
    cpSync('libs/cli/package.json', path.join(pkg, 'package.json'));
    cpSync('libs/cli/bin', path.join(pkg, 'bin'), { recursive: true });
    const app = installScratch(pkg);
    expect((await runCommand('npm', ['install', '--ignore-scripts'], { cwd: app, env: npmEnv })).code).toBe(0);
    const res = await runCommand('npx', ['umbra', 'init'], { cwd: app, env: npmEnv });
    expect(res.stderr).not.toMatch(/could not determine executable|ENOTCACHED/);
    expect(res.stderr).toMatch(/umbra: the CLI is not built yet: run `npm run build` \(or `npm start`\) in /);
    expect(res.code).toBe(1);
  });

  it('after the build, `npx umbra --help` runs the CLI', async () => {
    const app = installScratch(path.resolve('libs/cli'));
    expect((await runCommand('npm', ['install', '--ignore-scripts'], { cwd: app, env: npmEnv })).code).toBe(0);
    const res = await runCommand('npx', ['umbra', '--help'], { cwd: app, env: npmEnv });
    expect(res).toMatchObject({ code: 0, stderr: '' });
    expect(res.stdout).toMatch(/^umbra — the reference Umbra client/);
  });
});

describe('the command line (issue 13 #5: wrong invocations are exit 2 with usage)', () => {
  const home = tmp('cl');
  const usageErrors: [string[], RegExp][] = [
    [[], /no command given/],
    [['--bogus'], /unknown option --bogus/],
    [['init', '--bogus'], /unknown option --bogus/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['init', 'extra'], /unexpected argument "extra"/],
    [['whoami', '--handle', 'x'], /umbra whoami has no option --handle/],
    [['register', '--handle'], /--handle needs a value/],
    [['register', 'alice'], /unexpected argument "alice"/],
    [['send'], /missing arguments/],
    [['send', '@bob'], /missing argument/],
    [['send-file', '@bob'], /missing argument/],
    [['send-file', '@bob', 'a', 'b'], /unexpected argument "b"/],
    [['timer', '@bob'], /missing argument/],
    [['history'], /missing argument/],
    [['safety-number'], /missing argument/],
    [['devices', 'remove'], /missing argument/],
    [['devices', 'remove', '1', '2'], /unexpected argument "2"/],
    [['link', 'a', 'b'], /unexpected argument "b"/],
    [['group'], /umbra group needs one of: create, add, remove, send, timer/],
    [['group', 'frob'], /unknown command "umbra group frob"/],
    [['group', 'create'], /missing argument/],
    [['group', 'send', 'gid'], /missing argument/],
    [['handle'], /umbra handle needs one of: set, clear/],
    [['handle', 'set'], /missing argument/],
    [['handle', 'set', 'a', 'b'], /unexpected argument "b"/],
    [['handle', 'clear', 'x'], /unexpected argument "x"/],
    [['--timeout', 'soon', 'whoami'], /--timeout is a number of seconds/],
    [['--server', 'ftp://x', 'whoami'], /--server must be an http/],
    [['-x'], /unknown option -x/],
    [['--json=yes', 'whoami'], /--json takes no value/],
  ];
  it.each(usageErrors)('umbra %j → exit 2, the reason and the usage on stderr, nothing on stdout', async (args, reason) => {
    const res = await runUmbra(['--home', home, ...args]);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(reason);
    expect(res.stderr).toMatch(/usage: umbra/);
  });

  it.each([[['--help']], [['help']], [['-h']], [['send', '--help']], [['help', 'group', 'send']]])('umbra %j → exit 0, usage on stdout', async (args) => {
    const res = await runUmbra(args);
    expect(res).toMatchObject({ code: 0, stderr: '' });
    expect(res.stdout).toMatch(/usage: umbra/);
  });

  it('usage errors and --help load neither the SDK nor the crypto library (every command is a new process)', async () => {
    // Counts the SDK's and crypto's modules in the CommonJS cache as the process exits.
    const probe = `import { createRequire } from 'node:module';
      const cache = createRequire('/').cache;
      process.on('exit', () => process.stderr.write('[sdk modules: ' + Object.keys(cache).filter((k) => /\\/libs\\/(sdk|crypto)\\//.test(k)).length + ']'));`;
    const loaded = async (...args: string[]) => {
      const res = await runCommand(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(probe)}`, UMBRA_BIN, ...args]);
      return Number(/\[sdk modules: (\d+)\]$/.exec(res.stderr)?.[1]);
    };
    expect(await loaded('--help')).toBe(0);
    expect(await loaded('send')).toBe(0);
    // The probe does see them once a command opens its session.
    expect(await loaded('--home', tmp('cl-probe'), 'whoami')).toBeGreaterThan(0);
  });

  it('says what the user did wrong, without internal names (exit 1)', async () => {
    const empty = tmp('cl-empty');
    const cases: [string[], string][] = [
      [['whoami'], `umbra: no identity here (${empty}): run umbra init, or umbra link to add this device to an account\n`],
      [['send', 'um1abc', 'hi'], `umbra: no identity here (${empty}): run umbra init, or umbra link to add this device to an account\n`],
      [['link', 'not-a-code'], 'umbra: that is not a link code: run umbra link (with no argument) on the new device and pass the code it prints, which starts with umbra-link:1:\n'],
      [['link', 'umbra-link:1:AAAA'], 'umbra: that link code is damaged (copy all of it, from umbra-link:1: to the end)\n'],
      [['timer', '@bob', 'forever'], 'umbra: not a duration: forever (use off, 30s, 5m, 1h, 7d)\n'],
    ];
    for (const [args, message] of cases) {
      const res = await runUmbra(['--home', empty, ...args]);
      expect({ args, code: res.code, stderr: res.stderr }).toEqual({ args, code: 1, stderr: message });
    }
    const id = (await runUmbra(['--home', empty, 'init'])).stdout.trim();
    expect(id).toMatch(ACCOUNT_ID);
    const again = await runUmbra(['--home', empty, 'init']);
    expect(again).toMatchObject({ code: 1, stderr: `umbra: ${empty} already holds the identity ${id}; use another --home for a new one\n` });
    const badPeer = await runUmbra(['--home', empty, 'send', 'um1nope', 'x']);
    expect(badPeer).toMatchObject({ code: 1, stderr: 'umbra: not an account id or @handle: um1nope (account ids start with um1, handles with @)\n' });
    const badHandle = await runUmbra(['--home', empty, 'handle', 'set', 'a!']);
    expect(badHandle).toMatchObject({ code: 1, stderr: 'umbra: not a valid handle: a! (3–32 letters a–z, digits or _)\n' });
    const json = await runUmbra(['--home', empty, '--json', 'timer', '@bob', 'forever']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr)).toEqual({ error: { code: null, message: 'not a duration: forever (use off, 30s, 5m, 1h, 7d)' } });
  });
});

/** A local TCP proxy that can drop every connection and come back on the same port. */
class Proxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  constructor(private readonly targetPort: number) {}
  async up(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => (client.destroy(), upstream.destroy(), this.sockets.delete(s)));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }
  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}

describe('umbra CLI (built) against a running stack', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start({ env: { RATE_LIMIT_REGISTER_PER_IP_PER_HOUR: '1000' } });
  });
  afterAll(() => stack.stop());

  const umbra = async (home: string, ...args: string[]) => {
    const res = await runUmbra(['--home', home, '--server', stack.origin, ...args]);
    if (res.code !== 0) throw new Error(`umbra ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
    return res.stdout.trim();
  };
  const json = async (home: string, ...args: string[]) => JSON.parse(await umbra(home, '--json', ...args)) as Record<string, unknown>;
  const listen = (home: string, ...args: string[]) => Background.umbra(['--home', home, '--server', stack.origin, 'listen', ...args]);
  const listening = (b: Background) => b.until((x) => x.stderr.includes('umbra: listening as'), 'listen to connect');

  it('inits, registers, claims a handle later, sends to @handle, listens, links a second device, forms a group, and shows matching safety numbers', async () => {
    const a = tmp('a');
    const b = tmp('b');
    const [alice, bob] = await Promise.all([umbra(a, 'init'), umbra(b, 'init')]);
    expect(alice).toMatch(ACCOUNT_ID);
    const [registeredA, registeredB] = await Promise.all([umbra(a, 'register'), json(b, 'register')]);
    expect(registeredA).toMatch(new RegExp(`^registered: ${alice} \\(device \\d+\\)$`));
    expect(registeredB).toMatchObject({ accountId: bob, alreadyRegistered: false });
    // Issue 13 #2: a handle after registering, by `handle set` or by registering again with --handle.
    const handle = `bob_${Date.now().toString(36)}`;
    expect(await umbra(b, 'handle', 'set', handle)).toBe(`handle: @${handle}`);
    expect(await json(b, 'whoami')).toEqual({ accountId: bob, deviceId: expect.any(Number), handle, registered: true });
    expect(await umbra(b, 'whoami')).toMatch(new RegExp(`^account: +${bob}\\ndevice: +\\d+\\nhandle: +@${handle}\\nregistered: yes$`));
    expect(await umbra(b, 'handle', 'clear')).toBe('handle cleared');
    expect(await json(b, 'whoami')).toMatchObject({ handle: null });
    const notFound = await runUmbra(['--home', a, '--server', stack.origin, 'send', `@${handle}`, 'hi']);
    expect(notFound).toMatchObject({ code: 1, stderr: `umbra: no account has the handle @${handle}\n` });
    expect(await umbra(b, 'register', '--handle', handle)).toMatch(new RegExp(`^already registered: ${bob} \\(device \\d+\\)\\nhandle: @${handle}$`));
    expect(await json(b, 'whoami')).toMatchObject({ handle, registered: true });
    const taken = await runUmbra(['--home', a, '--server', stack.origin, 'handle', 'set', handle]);
    expect(taken).toMatchObject({ code: 1, stderr: `umbra: @${handle} belongs to another account; pick another handle\n` });

    const listener = listen(b);
    try {
      await listening(listener);
      expect(await umbra(a, 'send', `@${handle}`, 'hello', 'from', 'the', 'CLI')).toBe(`sent to @${handle}`);
      await listener.until((l) => l.stdout.includes('hello from the CLI'), 'the message on listen');
      expect(listener.stdout).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ  ${alice}: hello from the CLI\\n`));
    } finally {
      await listener.stop();
    }
    const jsonListener = listen(b, '--json');
    try {
      await listening(jsonListener);
      expect(await json(a, 'send', bob, 'as', 'json')).toMatchObject({ sent: true, to: bob });
      await jsonListener.until((l) => l.stdout.includes('\n'), 'a JSON line');
      expect(JSON.parse(jsonListener.stdout.split('\n')[0]!)).toMatchObject({ from: alice, text: 'as json', verified: true, sync: false });
    } finally {
      expect(await jsonListener.stop()).toBe(0);
    }
    expect(await json(a, 'devices')).toMatchObject({ accountId: alice, listVersion: 1, devices: [expect.objectContaining({ deviceId: expect.any(Number) })] });
    expect(await umbra(a, 'devices')).toMatch(new RegExp(`^${alice} \\(you\\), device list version 1:\\n  device \\d+  added .*\\(this device\\)$`));
    const [snA, snB] = (await Promise.all([json(a, 'safety-number', bob), json(b, 'safety-number', alice)])).map((r) => r.safetyNumber);
    expect(snA).toMatch(/^(\d{5} ){11}\d{5}$/);
    expect(snA).toBe(snB);
    expect((await umbra(a, 'safety-number', `@${handle}`)).split('\n')).toEqual([`safety number with @${handle}:`, (snA as string).slice(0, 35), (snA as string).slice(36)]);

    // Link a second device to Bob's account: each side shows the other what it is about to trust.
    const b2 = tmp('b2');
    const linking = Background.umbra(['--home', b2, '--server', stack.origin, 'link']);
    await linking.until((l) => l.stdout.includes('\n') && l.stderr.includes('waiting'), 'a link code');
    const code = linking.stdout.split('\n')[0]!;
    expect(code).toMatch(/^umbra-link:1:/);
    const key = /key ([0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4})/.exec(linking.stderr)?.[1];
    expect(key).toBeDefined();
    const approve = await runUmbra(['--home', b, '--server', stack.origin, 'link', code]);
    expect(approve.code).toBe(0);
    expect(approve.stderr).toMatch(new RegExp(`^umbra: adding device \\d+ \\(key ${key}\\) to ${bob}; the new device shows the same key\\n$`));
    expect(approve.stdout).toMatch(new RegExp(`^added device \\d+ \\(key ${key}\\); device list version 2\\n$`));
    await linking.wait();
    expect(linking.exitCode).toBe(0);
    // §1: the new device showed the account it was joining before it answered, then the result.
    expect(linking.stdout.trim().split('\n')).toEqual([code, `joining ${bob}`, expect.stringMatching(new RegExp(`^linked to ${bob} as device \\d+$`))]);
    expect((await json(b2, 'devices')).devices).toHaveLength(2);
    const listener3 = listen(b2);
    try {
      await listening(listener3);
      await umbra(a, 'send', bob, 'to both of your devices');
      await listener3.until((l) => l.stdout.includes('to both of your devices'), 'the message on the linked device');
    } finally {
      await listener3.stop();
    }

    // Issue 13 #3: `group create` prints just the id, and `group send` takes it as printed.
    const group = await umbra(a, 'group', 'create', `@${handle}`);
    expect(group).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const listener2 = listen(b);
    try {
      await listening(listener2);
      expect(await umbra(a, 'group', 'send', group, 'hello', 'group')).toBe('sent to the group');
      await listener2.until((l) => l.stdout.includes('hello group'), 'the group message');
      expect(listener2.stdout).toContain(`${alice} in group ${group}: hello group`);
    } finally {
      await listener2.stop();
    }
    const unknown = await runUmbra(['--home', a, '--server', stack.origin, 'group', 'send', 'nope', 'x']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^umbra: no group nope on this device/);
  }, 240_000);

  it('sets a vanishing timer the peer adopts; the message is gone from both histories when it fires', async () => {
    const a = tmp('va');
    const b = tmp('vb');
    const [alice, bob] = await Promise.all([umbra(a, 'init'), umbra(b, 'init')]);
    await Promise.all([umbra(a, 'register'), umbra(b, 'register')]);
    // Long enough for the listen and both history reads below to finish before it fires.
    expect(await json(a, 'timer', bob, '10s')).toEqual({ timer: { t: 10, m: 'send' } });

    const listener = listen(b, '--json');
    let sentAt = 0;
    try {
      await listener.until((l) => l.stdout.includes('"timer"'), 'bob adopts the timer');
      expect(listener.stdout).toContain(JSON.stringify({ conversation: alice, timer: { t: 10, m: 'send' } }));
      sentAt = Date.now();
      await umbra(a, 'send', bob, 'this will vanish');
      await listener.until((l) => l.stdout.includes('this will vanish'), 'the vanishing message');
    } finally {
      await listener.stop();
    }
    const lines = async (home: string, peer: string) =>
      (await umbra(home, '--json', 'history', peer)).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { text: string | null; vanishesAt: number | null });
    const [seenByBob, historyA] = await Promise.all([lines(b, alice), umbra(a, 'history', bob)]);
    const seen = seenByBob.find((e) => e.text === 'this will vanish');
    expect(seen?.vanishesAt).toBeGreaterThan(sentAt);
    expect(historyA).toMatch(/  me: this will vanish  \[vanishes \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\]$/);
    await new Promise((r) => setTimeout(r, Math.max(0, seen!.vanishesAt! - Date.now() + 100)));
    expect((await lines(b, alice)).some((e) => e.text === 'this will vanish')).toBe(false);
    expect(await umbra(a, 'history', bob)).not.toContain('this will vanish');
  }, 120_000);

  const run = (home: string, ...args: string[]) => runUmbra(['--home', home, '--server', stack.origin, ...args]);

  /** Links a new device (empty `home`) to the account of `holder`; its device id. */
  const linkDevice = async (holder: string, home: string): Promise<number> => {
    const linking = Background.umbra(['--home', home, '--server', stack.origin, 'link']);
    await linking.until((l) => l.stdout.includes('\n') && l.stderr.includes('waiting'), 'a link code');
    const approve = await run(holder, '--json', 'link', linking.stdout.split('\n')[0]!);
    expect(approve.code).toBe(0);
    await linking.wait();
    expect(linking.exitCode).toBe(0);
    return (JSON.parse(approve.stdout) as { deviceId: number }).deviceId;
  };

  it('listen prints what people sent, never receipts, typing or call signalling (issue 16 follow-up)', async () => {
    const a = tmp('la');
    const alice = await umbra(a, 'init');
    await umbra(a, 'register');
    const bob = await Umbra.create({ serverUrl: stack.origin, store: new MemoryStore() });
    try {
      // Alice writes first and Bob reads it: his read receipt waits in Alice's queue for her listen.
      const arrived = bob.next('message', (e) => e.conv === alice, 15_000);
      await umbra(a, 'send', bob.account.id, 'hi bob');
      const first = await arrived;
      await bob.messages.markRead(alice, first.message.content.id);

      const listener = listen(a);
      try {
        await listening(listener);
        const call = { call_id: randomBytes(8).toString('hex'), party_id: randomBytes(8).toString('base64url') };
        const content = (fields: Record<string, unknown>) => ({ v: 1 as const, id: randomBytes(16).toString('base64url'), ts: Date.now(), k: 'call' as const, ...call, ...fields });
        await bob.messages.typing(alice, 'started');
        await bob.messenger.sendContent(alice, content({ op: 'offer', media: 'audio', sdp: 'v=0', E_c: randomBytes(32).toString('base64url') }));
        await bob.messenger.sendContent(alice, content({ op: 'ice', candidates: ['candidate:1 1 udp 2122260223 127.0.0.1 9 typ host'], end: true }));
        await bob.messenger.sendContent(alice, content({ op: 'hangup', reason: 'hangup' }));
        await bob.messages.typing(alice, 'stopped');
        await bob.messages.send(alice, 'after the control messages');
        await listener.until((l) => l.stdout.includes('after the control messages'), 'the text after the control messages');
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        expect(await listener.stop()).toBe(0);
      }
      // Only the text: nothing for the receipt, typing or call signalling (offer, ICE, hangup).
      const lines = listener.stdout.trim().split('\n').map((l) => l.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  /, ''));
      expect(lines).toEqual([`${bob.account.id}: after the control messages`]);
      expect(listener.stderr).not.toMatch(/could not/);
    } finally {
      await bob.close();
    }
  }, 120_000);

  it('devices remove takes another device off the account; this device, unknown ids and devices without the account key are refused (exit 1)', async () => {
    const a = tmp('ra');
    const p1 = tmp('rp1');
    const p2 = tmp('rp2');
    const alice = await umbra(a, 'init');
    await umbra(a, 'register');
    const own = (await json(a, 'whoami')).deviceId as number;
    const phone1 = await linkDevice(a, p1);
    const phone2 = await linkDevice(a, p2);
    expect((await json(a, 'devices')).devices).toHaveLength(3);
    let unknown = 1;
    while ([own, phone1, phone2].includes(unknown)) unknown++;

    expect(await run(a, 'devices', 'remove', String(own))).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `umbra: device ${own} is this device, which cannot remove itself (remove it from the device that created the account)\n`,
    });
    const notThere = await run(a, 'devices', 'remove', String(unknown));
    expect(notThere).toMatchObject({ code: 1, stdout: '' });
    expect(notThere.stderr).toMatch(new RegExp(`^umbra: device ${unknown} is not in your account's device list \\(it has [\\d, ]+; umbra devices lists them\\)\n$`));
    expect(await run(a, 'devices', 'remove', 'phone')).toMatchObject({ code: 1, stdout: '', stderr: 'umbra: not a device id: phone (umbra devices lists them)\n' });
    expect(await run(p1, 'devices', 'remove', String(phone2))).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'umbra: only the device that created the account (it holds the account key) can remove devices\n',
    });
    const jsonRefusal = await run(a, '--json', 'devices', 'remove', String(own));
    expect(jsonRefusal.code).toBe(1);
    expect(JSON.parse(jsonRefusal.stderr)).toEqual({ error: { code: null, message: expect.stringMatching(/^device \d+ is this device/) } });
    expect((await json(a, 'devices')).devices).toHaveLength(3);

    expect(await umbra(a, 'devices', 'remove', String(phone1))).toBe(`removed device ${phone1}; device list version 4`);
    expect(await json(a, 'devices', 'remove', String(phone2))).toEqual({ removed: phone2, listVersion: 5, removedDeviceIds: [phone2] });
    expect(await json(a, 'devices')).toMatchObject({ accountId: alice, listVersion: 5, devices: [expect.objectContaining({ deviceId: own })] });
    expect((await json(a, 'devices')).devices).toHaveLength(1);
    // The removed devices are signed out; removing one again is an unknown id.
    expect(await json(p1, 'whoami')).toMatchObject({ accountId: alice, registered: false });
    expect(await run(a, 'devices', 'remove', String(phone1))).toMatchObject({ code: 1, stderr: expect.stringContaining(`device ${phone1} is not in your account's device list`) });
  }, 180_000);

  it('send and safety-number warn on stderr when a handle names another account than before, until the new safety number was shown', async () => {
    const a = tmp('ia');
    const b = tmp('ib');
    const c = tmp('ic');
    const handle = `moved_${Date.now().toString(36)}`;
    const [, bob, carol] = await Promise.all([umbra(a, 'init'), umbra(b, 'init'), umbra(c, 'init')]);
    await Promise.all([umbra(a, 'register'), umbra(b, 'register', '--handle', handle)]);
    const toBob = await run(a, 'send', `@${handle}`, 'to bob');
    expect(toBob).toMatchObject({ code: 0, stdout: `sent to @${handle}\n` });
    expect(toBob.stderr).not.toContain('WARNING');

    // Bob lets the handle go and Carol claims it.
    await umbra(b, 'handle', 'clear');
    await umbra(c, 'register', '--handle', handle);
    const warning = new RegExp(
      `^umbra: WARNING: @${handle} now names a different account than before \\(${bob} until \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ, now ${carol}\\): ` +
        `someone else may hold the handle, or its owner has a new identity\\. Compare safety numbers with them before trusting it: umbra safety-number @${handle}$`,
      'm',
    );
    const toCarol = await run(a, 'send', `@${handle}`, 'to whoever holds it now');
    expect(toCarol).toMatchObject({ code: 0, stdout: `sent to @${handle}\n` });
    expect(toCarol.stderr).toMatch(warning);
    // Every send warns until then; --json has the change in the result too.
    const again = await run(a, '--json', 'send', `@${handle}`, 'again');
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(warning);
    expect(JSON.parse(again.stdout)).toMatchObject({ sent: true, to: carol, identityChange: { handle, previous: bob, current: carol, at: expect.any(Number) } });
    // By account id there is no handle to have changed.
    expect((await run(a, 'send', carol, 'by id')).stderr).not.toContain('WARNING');

    const sn = await run(a, '--json', 'safety-number', `@${handle}`);
    expect(sn.code).toBe(0);
    expect(sn.stderr).toMatch(warning);
    expect(sn.stderr).toContain(`umbra: this is the safety number with the new account; umbra will not warn about @${handle} again\n`);
    expect(JSON.parse(sn.stdout)).toMatchObject({ peer: carol, identityChange: { handle, previous: bob, current: carol } });
    expect(JSON.parse(sn.stdout).safetyNumber).toBe((await json(c, 'safety-number', (await json(a, 'whoami')).accountId as string)).safetyNumber);

    const seen = await run(a, 'send', `@${handle}`, 'seen');
    expect(seen.code).toBe(0);
    expect(seen.stderr).not.toContain('WARNING');
    const snAgain = await run(a, 'safety-number', `@${handle}`);
    expect(snAgain.code).toBe(0);
    expect(snAgain.stderr).not.toContain('WARNING');
  }, 120_000);

  describe('an unreachable server (issue 13 #4): a clear error within the timeout, exit 1', () => {
    let registered: string;
    let bobHome: string;
    let bob: string;
    let closedPort: number;
    let silent: net.Server;
    const held: net.Socket[] = [];
    beforeAll(async () => {
      registered = tmp('un');
      bobHome = tmp('unb');
      [, bob] = await Promise.all([umbra(registered, 'init'), umbra(bobHome, 'init')]);
      await Promise.all([umbra(registered, 'register'), umbra(bobHome, 'register')]);
      const probe = net.createServer();
      await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
      closedPort = (probe.address() as net.AddressInfo).port;
      await new Promise<void>((r) => probe.close(() => r()));
      // Accepts connections and never answers.
      silent = net.createServer((s) => held.push(s.on('error', () => undefined)));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    });
    afterAll(async () => {
      for (const s of held) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    });

    // `registered` holds a valid token, so `send` goes straight to the socket (the path that used to retry forever).
    const commands = (): string[][] => [['register'], ['whoami'], ['send', bob, 'hi'], ['listen'], ['handle', 'set', 'someone'], ['group', 'create', bob], ['devices']];

    /** A copy of the registered device's home, so that commands running side by side share no state. */
    const registeredCopy = () => {
      const home = tmp('unc');
      cpSync(registered, home, { recursive: true });
      return home;
    };

    /** Each command once against `origin` with a 2 s timeout, a few at a time (they are independent). */
    const eachCommand = async (origin: string): Promise<{ args: string[]; res: RunResult }[]> => {
      const results: { args: string[]; res: RunResult }[] = [];
      const all = commands();
      for (let i = 0; i < all.length; i += 4) {
        const batch = all.slice(i, i + 4);
        const runs = await Promise.all(batch.map((args) => runUmbra(['--home', registeredCopy(), '--server', origin, '--timeout', '2', ...args], { killAfterMs: 20_000 })));
        results.push(...runs.map((res, j) => ({ args: batch[j]!, res })));
      }
      return results;
    };

    it('connection refused', async () => {
      const origin = `http://127.0.0.1:${closedPort}`;
      const results = await eachCommand(origin);
      expect(results).toHaveLength(7);
      for (const { args, res } of results) {
        expect({ args, code: res.code, stderr: res.stderr }).toEqual({ args, code: 1, stderr: `umbra: cannot reach ${origin}: connection refused\n` });
      }
    }, 120_000);

    it('a server that accepts and never answers', async () => {
      const origin = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
      // The default timeout is 10 s; it runs alongside the 2 s ones.
      const withDefault = runUmbra(['--home', registeredCopy(), '--server', origin, 'send', bob, 'hi'], { killAfterMs: 30_000 });
      const results = await eachCommand(origin);
      expect(results).toHaveLength(7);
      for (const { args, res } of results) {
        expect({ args, code: res.code, stderr: res.stderr }).toEqual({ args, code: 1, stderr: expect.stringMatching(new RegExp(`^umbra: cannot reach ${origin}: no (answer|connection) within 2 s\\n$`)) });
        expect(res.ms).toBeLessThan(6000);
      }
      const res = await withDefault;
      expect(res).toMatchObject({ code: 1, stderr: `umbra: cannot reach ${origin}: no connection within 10 s\n` });
      expect(res.ms).toBeGreaterThanOrEqual(10_000);
      expect(res.ms).toBeLessThan(15_000);
    }, 120_000);

    it('listen keeps reconnecting and says so on stderr, then receives again', async () => {
      const proxy = new Proxy(Number(new URL(stack.origin).port));
      await proxy.up();
      const viaProxy = `http://127.0.0.1:${proxy.port}`;
      // Bob's home: the sends to him above never reached a server.
      const listener = Background.umbra(['--home', bobHome, '--server', viaProxy, 'listen']);
      try {
        await listening(listener);
        await proxy.down();
        await listener.until((l) => l.stderr.includes(`umbra: lost the connection to ${viaProxy}; reconnecting…\n`), 'the lost-connection note');
        await new Promise((r) => setTimeout(r, 1500));
        expect(listener.exitCode).toBeUndefined();
        await proxy.up();
        await listener.until((l) => l.stderr.includes(`umbra: reconnected to ${viaProxy}\n`), 'the reconnected note', 20_000);
        await umbra(registered, 'send', bob, 'after the outage');
        await listener.until((l) => l.stdout.includes('after the outage'), 'a message after reconnecting');
      } finally {
        await listener.stop();
        await proxy.down().catch(() => undefined);
      }
    }, 120_000);
  });
});

