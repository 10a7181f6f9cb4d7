import net from 'node:net';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy';

/** The toxics behave as toxiproxy's do, against a local echo server. */
describe('chaos fault proxy', () => {
  let echo: net.Server;
  let proxy: FaultProxy;

  beforeAll(async () => {
    echo = net.createServer((s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    proxy = await startFaultProxy({ name: 'echo', target: { host: '127.0.0.1', port: (echo.address() as net.AddressInfo).port } });
  });
  afterEach(() => proxy.heal());
  afterAll(async () => {
    await proxy.close();
    await new Promise<void>((r) => echo.close(() => r()));
  });

  const connect = () =>
    new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(proxy.port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
  const roundTrip = (s: net.Socket, text: string, timeoutMs = 2000) =>
    new Promise<string>((resolve, reject) => {
      let got = '';
      const timer = setTimeout(() => reject(new Error(`no echo of ${text} (got "${got}")`)), timeoutMs);
      const onData = (d: Buffer) => {
        got += d.toString();
        if (got.length >= text.length) {
          clearTimeout(timer);
          s.off('data', onData);
          resolve(got);
        }
      };
      s.on('data', onData);
      s.write(text);
    });
  const closed = (s: net.Socket) => new Promise<{ at: number; error?: string }>((resolve) => {
    let error: string | undefined;
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
    s.once('close', () => resolve({ at: Date.now(), error }));
  });

  test('passes bytes through both ways, in order', async () => {
    const s = await connect();
    expect(await roundTrip(s, 'hello')).toBe('hello');
    s.destroy();
  });

  test('latency holds every chunk back in each direction and keeps order', async () => {
    const s = await connect();
    proxy.latency(150);
    const t0 = Date.now();
    const p = roundTrip(s, 'abcdef');
    expect(await p).toBe('abcdef');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    proxy.heal();
    const t1 = Date.now();
    expect(await roundTrip(s, 'x')).toBe('x');
    expect(Date.now() - t1).toBeLessThan(100);
    s.destroy();
  });

  test('blackhole drops everything and closes connections after the timeout', async () => {
    const s = await connect();
    const gone = closed(s);
    const t0 = Date.now();
    proxy.blackhole(300);
    await expect(roundTrip(s, 'lost', 200)).rejects.toThrow('no echo');
    const { at } = await gone;
    expect(at - t0).toBeGreaterThanOrEqual(290);
    proxy.heal();
    const fresh = await connect();
    expect(await roundTrip(fresh, 'back')).toBe('back');
    fresh.destroy();
  });

  test('reset sends an RST to every open connection', async () => {
    const s = await connect();
    await roundTrip(s, 'warm');
    const gone = closed(s);
    proxy.reset();
    expect((await gone).error).toBe('ECONNRESET');
    expect(proxy.connections()).toBe(0);
  });

  test('slow close delays the close of the other side', async () => {
    const s = await connect();
    await roundTrip(s, 'warm');
    proxy.slowClose(300);
    const ended = new Promise<number>((r) => s.once('end', () => r(Date.now())));
    const t0 = Date.now();
    s.end();
    expect((await ended) - t0).toBeGreaterThanOrEqual(290);
    s.destroy();
  });
});
