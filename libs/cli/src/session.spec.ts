import http from 'node:http';
import net from 'node:net';
import { fetchWithTimeout, SILENT_ORIGIN_MEMORY_MS } from './session';

/** The CLI's fetch: a refused or reset connection is not remembered; a silent origin is, for a while. */
describe('fetchWithTimeout', () => {
  const listen = (server: net.Server) => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  const closed = (server: net.Server) => new Promise<void>((resolve) => server.close(() => resolve()));

  it('after a refused connection, the same origin answering again is reached (a listen that outlived an outage)', async () => {
    const probe = net.createServer();
    const port = await listen(probe);
    await closed(probe);
    const fetch = fetchWithTimeout(2000);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow('connection refused');
    const server = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      expect(await res.text()).toBe('ok');
    } finally {
      server.closeAllConnections();
      await closed(server);
    }
  });

  it('a silent origin fails at once for SILENT_ORIGIN_MEMORY_MS after its timeout, then is tried again', async () => {
    const held = new Set<net.Socket>();
    const silent = net.createServer((s) => void held.add(s));
    const port = await listen(silent);
    let clock = 1_000_000;
    const fetch = fetchWithTimeout(200, () => clock);
    try {
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow('no answer within 0.2 s');
      const t0 = Date.now();
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow('no answer within 0.2 s');
      expect(Date.now() - t0).toBeLessThan(100);
      clock += SILENT_ORIGIN_MEMORY_MS + 1;
      const t1 = Date.now();
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow('no answer within 0.2 s');
      expect(Date.now() - t1).toBeGreaterThanOrEqual(150);
    } finally {
      for (const s of held) s.destroy();
      await closed(silent);
    }
  });
});
