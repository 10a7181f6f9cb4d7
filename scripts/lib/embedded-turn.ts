import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';

/**
 * Peers a TURN relay must never reach in production: private, loopback, link-local, CGNAT and
 * unique-local ranges (otherwise a client could use the relay to probe the operator's network).
 * docker-compose.yml's coturn lists the same ranges (a test checks it).
 */
export const TURN_DENIED_PEER_RANGES = [
  '0.0.0.0-0.255.255.255',
  '10.0.0.0-10.255.255.255',
  '100.64.0.0-100.127.255.255',
  '127.0.0.0-127.255.255.255',
  '169.254.0.0-169.254.255.255',
  '172.16.0.0-172.31.255.255',
  '192.0.0.0-192.0.0.255',
  '192.168.0.0-192.168.255.255',
  '198.18.0.0-198.19.255.255',
  '::1',
  'fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  'fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
];

/** coturn settings every shipped config has (compose, Kubernetes, `npm start`). */
export const TURN_HARDENING = ['use-auth-secret', 'no-cli', 'no-multicast-peers', 'fingerprint', 'user-quota=12', 'total-quota=1200', 'stale-nonce=600'];

const LOOPBACK_RANGES = new Set(['127.0.0.0-127.255.255.255', '::1']);

const TURNSERVER = ['/usr/bin/turnserver', '/usr/local/bin/turnserver'];

export class TurnMissingError extends Error {}

export interface EmbeddedTurn {
  /** For TURN_URLS. */
  urls: string[];
  /** For TURN_SECRET. */
  secret: string;
  port: number;
  close: () => Promise<void>;
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * coturn (Debian `coturn`) on loopback for `npm start` and the tests, with the shipped hardening.
 * The one development allowance is `allow-loopback-peers` (both call ends are on this machine);
 * production configs deny loopback peers. The secret goes in a 0600 config file, not argv.
 */
export async function startEmbeddedTurn(opts: { host: string; port: number; relayPorts: [number, number]; dir: string; secret?: string; log?: (line: string) => void }): Promise<EmbeddedTurn> {
  const binary = TURNSERVER.find((p) => existsSync(p));
  if (!binary) throw new TurnMissingError('coturn is not installed (apt-get install coturn): calls need a TURN relay');
  const secret = opts.secret ?? randomBytes(24).toString('base64url');
  mkdirSync(opts.dir, { recursive: true });
  const conf = path.join(opts.dir, `turnserver-${opts.port}.conf`);
  const lines = [
    ...TURN_HARDENING,
    ...TURN_DENIED_PEER_RANGES.filter((r) => !LOOPBACK_RANGES.has(r)).map((r) => `denied-peer-ip=${r}`),
    'no-tls',
    'no-dtls',
    `static-auth-secret=${secret}`,
    'realm=umbra.local',
    `listening-ip=${opts.host}`,
    `relay-ip=${opts.host}`,
    `listening-port=${opts.port}`,
    `min-port=${opts.relayPorts[0]}`,
    `max-port=${opts.relayPorts[1]}`,
    'allow-loopback-peers',
    `pidfile=${path.join(opts.dir, `turnserver-${opts.port}.pid`)}`,
    'no-stdout-log',
    `log-file=${path.join(opts.dir, `turnserver-${opts.port}.log`)}`,
    'simple-log',
  ];
  writeFileSync(conf, `${lines.join('\n')}\n`, { mode: 0o600 });
  const child: ChildProcess = spawn(binary, ['-c', conf], { stdio: 'ignore' });
  let exited = false;
  // If this process exits without close() (a signal, a crash), take coturn along.
  const killOnExit = () => child.kill('SIGTERM');
  process.once('exit', killOnExit);
  child.once('exit', () => {
    exited = true;
    process.removeListener('exit', killOnExit);
  });
  const deadline = Date.now() + 10_000;
  while (!(await tcpOpen(opts.host, opts.port))) {
    if (exited) throw new Error(`turnserver exited at start (see ${path.join(opts.dir, `turnserver-${opts.port}.log`)})`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`turnserver did not listen on ${opts.host}:${opts.port} within 10 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  opts.log?.(`embedded TURN (coturn) at ${opts.host}:${opts.port}, relay ports ${opts.relayPorts[0]}–${opts.relayPorts[1]}`);
  return {
    urls: [`turn:${opts.host}:${opts.port}?transport=udp`, `turn:${opts.host}:${opts.port}?transport=tcp`],
    secret,
    port: opts.port,
    close: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}
