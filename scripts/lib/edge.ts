import http from 'node:http';
import net from 'node:net';
import { serviceForPath, type ServiceName } from '@umbra/protocol';

export interface Upstream {
  host: string;
  port: number;
}

/**
 * The local public origin: routes by path prefix to the services (round robin over instances),
 * WebSocket upgrades included. In compose this is nginx, in Kubernetes the Ingress.
 */
export interface Edge {
  server: http.Server;
  port: number;
  close: () => Promise<void>;
}

/** `upstreams` is read per request, so instances may be added and removed while the edge runs. */
export function startEdge(opts: { port: number; host: string; upstreams: Record<ServiceName, Upstream[]> }): Promise<Edge> {
  const tunnels = new Set<net.Socket>();
  const counters = new Map<ServiceName, number>();
  const pick = (service: ServiceName): Upstream | undefined => {
    const list = opts.upstreams[service] ?? [];
    if (list.length === 0) return undefined;
    const n = counters.get(service) ?? 0;
    counters.set(service, n + 1);
    return list[n % list.length];
  };
  const notFound = (res: http.ServerResponse, status: number, code: string, message: string) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code, message } }));
  };

  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    const service = serviceForPath(path);
    const up = service && pick(service);
    if (!up) return notFound(res, 404, 'NOT_FOUND', 'no such route');
    const headers = { ...req.headers, 'x-forwarded-for': [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ') };
    const proxied = http.request({ host: up.host, port: up.port, method: req.method, path, headers }, (upstream) => {
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      upstream.pipe(res);
    });
    proxied.on('error', () => {
      if (!res.headersSent) notFound(res, 503, 'UNAVAILABLE', `${service} is unavailable`);
      else res.destroy();
    });
    req.pipe(proxied);
  });

  server.on('upgrade', (req, socket, head) => {
    const service = serviceForPath(req.url ?? '/');
    const up = service && pick(service);
    if (!up) return socket.destroy();
    const target = net.connect(up.port, up.host, () => {
      tunnels.add(socket as net.Socket);
      tunnels.add(target);
      socket.once('close', () => tunnels.delete(socket as net.Socket));
      target.once('close', () => tunnels.delete(target));
      const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      lines.push(`X-Forwarded-For: ${req.socket.remoteAddress ?? ''}`);
      target.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) target.write(head);
      socket.pipe(target).pipe(socket);
    });
    target.on('error', () => socket.destroy());
    socket.on('error', () => target.destroy());
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () =>
      resolve({
        server,
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
            for (const t of tunnels) t.destroy();
          }),
      }),
    );
  });
}
