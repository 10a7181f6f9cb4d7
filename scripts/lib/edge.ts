import http from 'node:http';
import net from 'node:net';
import { clientErrorResponse, maxBodyBytesFor, serviceForPath, type ServiceName } from '@umbra/protocol';
import { serveWeb, type WebRoot } from './web-static';

export interface Upstream {
  host: string;
  port: number;
}

/**
 * The local public origin: routes by path prefix to the services (round robin over instances),
 * WebSocket upgrades included, and serves the web client's files at every other path when `web`
 * is given. In compose this is nginx, in Kubernetes the Ingress.
 */
export interface Edge {
  server: http.Server;
  port: number;
  close: () => Promise<void>;
}

/** `upstreams` is read per request, so instances may be added and removed while the edge runs. */
export function startEdge(opts: { port: number; host: string; upstreams: Record<ServiceName, Upstream[]>; web?: WebRoot }): Promise<Edge> {
  const tunnels = new Set<net.Socket>();
  // Kept-alive upstream connections are dropped after 2 s idle, well before a service's own
  // keep-alive timeout (Node's 5 s): otherwise a request could go out on a connection the service
  // was closing at that moment and fail as ECONNRESET (a spurious 503).
  const agent = new http.Agent({ keepAlive: true, timeout: 2000 });
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
    if (path === '/readyz') return void aggregateReadiness(opts.upstreams).then((report) => sendReadiness(res, report));
    if (path === '/metrics') return notFound(res, 404, 'NOT_FOUND', 'metrics are internal: each service serves /metrics on its own port');
    const service = serviceForPath(path);
    if (!service && opts.web) {
      const web = opts.web;
      return void serveWeb(web, req, res).then(
        (served) => served || notFound(res, 404, 'NOT_FOUND', 'no such route'),
        () => notFound(res, 500, 'INTERNAL', 'could not read the web client'),
      );
    }
    const up = service && pick(service);
    if (!up) return notFound(res, 404, 'NOT_FOUND', 'no such route');
    // Like nginx's client_max_body_size per location: a body over its route's limit is not forwarded.
    if (Number(req.headers['content-length'] ?? 0) > maxBodyBytesFor(req.method ?? 'GET', path)) {
      res.setHeader('connection', 'close');
      return notFound(res, 413, 'PAYLOAD_TOO_LARGE', 'request body too large');
    }
    // Overwrite, never append: a client-sent X-Forwarded-For must not reach the services (TRUSTED_PROXIES).
    const headers = { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress ?? '' };
    const proxied = http.request({ host: up.host, port: up.port, method: req.method, path, headers, agent }, (upstream) => {
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      upstream.pipe(res);
    });
    proxied.on('error', () => {
      if (!res.headersSent) notFound(res, 503, 'UNAVAILABLE', `${service} is unavailable`);
      else res.destroy();
    });
    req.pipe(proxied);
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    if (socket.writable) socket.end(clientErrorResponse(err.code));
    else socket.destroy();
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
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        if (req.rawHeaders[i]!.toLowerCase() !== 'x-forwarded-for') lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      }
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
            agent.destroy();
            for (const t of tunnels) t.destroy();
          }),
      }),
    );
  });
}

const READY_PROBE_TIMEOUT_MS = 2000;
const READY_RETRY_AFTER_S = 5;

export interface ReadinessReport {
  status: 'ready' | 'unavailable';
  /** Per service: instances answering 200 on /readyz, of those configured. No addresses (this is public). */
  services: Record<string, { ready: number; instances: number }>;
}

function probeReady(up: Upstream): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: up.host, port: up.port, path: '/readyz', timeout: READY_PROBE_TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Ready only when every service has at least one ready instance. */
export async function aggregateReadiness(upstreams: Record<ServiceName, Upstream[]>): Promise<ReadinessReport> {
  const services: ReadinessReport['services'] = {};
  await Promise.all(
    Object.entries(upstreams).map(async ([name, list]) => {
      const results = await Promise.all(list.map(probeReady));
      services[name] = { ready: results.filter(Boolean).length, instances: list.length };
    }),
  );
  const ready = Object.keys(services).length > 0 && Object.values(services).every((s) => s.ready > 0);
  return { status: ready ? 'ready' : 'unavailable', services };
}

function sendReadiness(res: http.ServerResponse, report: ReadinessReport): void {
  if (report.status === 'ready') {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(report));
    return;
  }
  const down = Object.entries(report.services)
    .filter(([, s]) => s.ready === 0)
    .map(([name]) => name);
  res
    .writeHead(503, { 'content-type': 'application/json', 'cache-control': 'no-store', 'retry-after': String(READY_RETRY_AFTER_S) })
    .end(JSON.stringify({ ...report, error: { code: 'UNAVAILABLE', message: `no ready instance of ${down.join(', ')}` } }));
}
