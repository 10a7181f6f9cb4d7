import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { LIMITS, PUBLIC_PREFIXES } from '@umbra/protocol';
import { ENV_SCHEMA, loadConfig } from '@umbra/server';
import { objectId, readYamlDocuments, renderKustomization, type K8sObject } from './kustomize';
import { BROWSER_CORS } from '../../scripts/lib/embedded-s3';
import { s3ConnectSources, webContentSecurityPolicy } from '../../scripts/lib/web-static';
import { cspOf, podTemplate, renderWebCsp, repoPath, selects, SERVICES, UMBRA_IMAGE, validateObject, WEB_CSP_INCLUDE, type Container, type LabelSelector } from './support';

const ENV_KEYS = new Set(Object.keys(ENV_SCHEMA.shape));
const OVERLAYS = ['dev', 'prod'] as const;
const rendered = Object.fromEntries(OVERLAYS.map((o) => [o, renderKustomization(repoPath('k8s', 'overlays', o))])) as Record<(typeof OVERLAYS)[number], K8sObject[]>;
const secretTemplate = readYamlDocuments(repoPath('k8s', 'base', 'secret.template.yaml')) as K8sObject[];

const byKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const containersOf = (o: K8sObject): Container[] => {
  const t = podTemplate(o);
  return t ? [...(t.spec.initContainers ?? []), ...t.spec.containers] : [];
};
const isUmbra = (c: Container) => c.image.startsWith(`${UMBRA_IMAGE}:`) || c.image.startsWith(`${UMBRA_IMAGE}@`);

/** kubectl with an embedded kustomize v4+ (Debian's kubectl 1.20 has v2, which lacks `labels`). */
function kubectlKustomize(): boolean {
  const r = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return false;
  const m = /Kustomize Version:\s*v(\d+)/.exec(r.stdout);
  return m !== null && Number(m[1]) >= 4;
}

describe.each(OVERLAYS)('k8s overlay %s', (overlay) => {
  const objects = rendered[overlay];
  const workloads = objects.filter((o) => podTemplate(o) !== undefined);
  /** The Umbra services' Deployments (PgBouncer is checked on its own below). */
  const deployments = byKind(objects, 'Deployment').filter((d) => containersOf(d).some(isUmbra));
  /** The web client's static pods (nginx with the files of the compose web image). */
  const web = byKind(objects, 'Deployment').find((d) => d.metadata.name === 'web')!;

  it('renders the five services, a migration Job, PgBouncer, the web client, coturn, config, Ingress and NetworkPolicies into one namespace', () => {
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual([...SERVICES].sort());
    expect(byKind(objects, 'Deployment').map((d) => d.metadata.name).sort()).toEqual([...SERVICES, 'coturn', 'pgbouncer', 'web'].sort());
    expect(byKind(objects, 'Job').map((j) => j.metadata.name)).toContain('umbra-migrate');
    expect(byKind(objects, 'ConfigMap').map((c) => c.metadata.name)).toContain('umbra-config');
    expect(byKind(objects, 'Ingress').length).toBeGreaterThan(0);
    const ns = byKind(objects, 'Namespace');
    expect(ns).toHaveLength(1);
    for (const o of objects) if (o.kind !== 'Namespace') expect(`${objectId(o)} in ${o.metadata.namespace}`).toBe(`${objectId(o)} in ${ns[0]!.metadata.name}`);
    for (const o of objects) expect(o.metadata.labels?.['app.kubernetes.io/part-of']).toBe('umbra');
  });

  it('every object is valid for kubernetes-models (unknown kinds fail)', () => {
    for (const o of objects) validateObject(o);
  });

  it('matches `kubectl kustomize` when kubectl (kustomize v4+) is installed', () => {
    if (!kubectlKustomize()) {
      console.warn('skipped the kubectl kustomize cross-check: no kubectl with kustomize v4+ on the PATH; the built-in renderer alone was used');
      return;
    }
    const r = spawnSync('kubectl', ['kustomize', repoPath('k8s', 'overlays', overlay)], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const theirs = parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject);
    const index = (list: K8sObject[]) => Object.fromEntries(list.map((o) => [objectId(o), o]));
    expect(index(objects)).toEqual(index(theirs));
  });

  it('every container: probes (long-running), requests and limits, non-root, read-only root, no escalation, no capabilities, seccomp', () => {
    for (const w of workloads) {
      const t = podTemplate(w)!;
      expect(`${w.metadata.name}: ${t.spec.securityContext?.runAsNonRoot}`).toBe(`${w.metadata.name}: true`);
      expect(t.spec.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
      expect(t.spec.hostNetwork ?? false).toBe(false);
      for (const c of containersOf(w)) {
        const where = `${w.kind}/${w.metadata.name}/${c.name}`;
        if (w.kind !== 'Job') {
          expect(`${where} liveness ${Boolean(c.livenessProbe)} readiness ${Boolean(c.readinessProbe)}`).toBe(`${where} liveness true readiness true`);
        }
        for (const r of ['cpu', 'memory']) {
          expect(`${where} requests.${r}=${c.resources?.requests?.[r] !== undefined}`).toBe(`${where} requests.${r}=true`);
          expect(`${where} limits.${r}=${c.resources?.limits?.[r] !== undefined}`).toBe(`${where} limits.${r}=true`);
        }
        const sc = c.securityContext ?? {};
        expect({ where, runAsNonRoot: sc.runAsNonRoot, readOnlyRootFilesystem: sc.readOnlyRootFilesystem, allowPrivilegeEscalation: sc.allowPrivilegeEscalation, privileged: sc.privileged ?? false, drop: sc.capabilities?.drop, add: sc.capabilities?.add ?? [], seccomp: sc.seccompProfile?.type }).toEqual({
          where, runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, drop: ['ALL'], add: [], seccomp: 'RuntimeDefault',
        });
        if (sc.runAsUser !== undefined) expect(sc.runAsUser).toBeGreaterThan(0);
      }
    }
  });

  it('every image is pinned to a tag or digest, never latest', () => {
    for (const w of workloads) {
      for (const c of containersOf(w)) {
        const m = /^(?<repo>[^@]+?)(?::(?<tag>[^:@/]+))?(?:@(?<digest>sha256:[a-f0-9]{64}))?$/.exec(c.image);
        const pinned = Boolean(m?.groups?.digest) || Boolean(m?.groups?.tag && m.groups.tag !== 'latest');
        expect(`${w.metadata.name}/${c.name} ${c.image} pinned=${pinned}`).toBe(`${w.metadata.name}/${c.name} ${c.image} pinned=true`);
      }
    }
    const umbraTags = new Set(workloads.flatMap(containersOf).filter(isUmbra).map((c) => c.image));
    expect(umbraTags.size).toBe(1);
  });

  it('Deployments: startup probe, /healthz liveness, /readyz readiness, spread, and a grace period longer than preStop + SHUTDOWN_GRACE_MS', () => {
    const config = byKind(objects, 'ConfigMap').find((c) => c.metadata.name === 'umbra-config')!;
    const data = (config as unknown as { data: Record<string, string> }).data;
    const graceMs = Number(data.SHUTDOWN_GRACE_MS ?? ENV_SCHEMA.shape.SHUTDOWN_GRACE_MS.parse(undefined));
    for (const d of deployments) {
      const t = podTemplate(d)!;
      const c = t.spec.containers.find(isUmbra)!;
      expect(c).toBeDefined();
      const probePath = (p: unknown) => (p as { httpGet?: { path?: string } } | undefined)?.httpGet?.path;
      expect([d.metadata.name, probePath(c.livenessProbe), probePath(c.readinessProbe), probePath(c.startupProbe)]).toEqual([d.metadata.name, '/healthz', '/readyz', '/healthz']);
      const preStop = c.lifecycle?.preStop;
      const sleepS = preStop?.sleep?.seconds ?? Number(preStop?.exec?.command?.[0] === 'sleep' ? preStop.exec.command[1] : NaN);
      expect(`${d.metadata.name} preStop sleep ${Number.isFinite(sleepS) && sleepS > 0}`).toBe(`${d.metadata.name} preStop sleep true`);
      const grace = t.spec.terminationGracePeriodSeconds ?? 30;
      expect(`${d.metadata.name}: ${grace * 1000} > ${sleepS * 1000 + graceMs}: ${grace * 1000 > sleepS * 1000 + graceMs}`).toMatch(/: true$/);
      const keys = (t.spec.topologySpreadConstraints ?? []).map((s) => s.topologyKey);
      expect(keys).toEqual(expect.arrayContaining(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']));
      for (const s of t.spec.topologySpreadConstraints ?? []) expect(selects(s.labelSelector, t.metadata?.labels)).toBe(true);
      // The command runs under the image's tini ENTRYPOINT: `args`, never `command`.
      expect(c.command).toBeUndefined();
      expect(c.args).toEqual(['node', `dist/services/${d.metadata.name}/src/main.js`]);
      // The HPA owns the replica count.
      expect((d.spec as { replicas?: number }).replicas).toBeUndefined();
    }
  });

  it('every Deployment has exactly one HPA (autoscaling/v2) and a PodDisruptionBudget selecting it', () => {
    const hpas = byKind(objects, 'HorizontalPodAutoscaler') as unknown as { metadata: { name: string }; spec: { scaleTargetRef: { kind: string; name: string }; minReplicas?: number; maxReplicas: number } }[];
    const pdbs = byKind(objects, 'PodDisruptionBudget') as unknown as { metadata: { name: string }; spec: { selector: LabelSelector; minAvailable?: unknown; maxUnavailable?: unknown } }[];
    for (const d of [...deployments, web]) {
      const labels = podTemplate(d)!.metadata?.labels;
      const mine = hpas.filter((h) => h.spec.scaleTargetRef.kind === 'Deployment' && h.spec.scaleTargetRef.name === d.metadata.name);
      expect(`${d.metadata.name}: ${mine.length} HPA`).toBe(`${d.metadata.name}: 1 HPA`);
      expect(mine[0]!.spec.maxReplicas).toBeGreaterThanOrEqual(mine[0]!.spec.minReplicas ?? 1);
      const pdb = pdbs.filter((p) => selects(p.spec.selector, labels));
      expect(`${d.metadata.name}: ${pdb.length} PDB`).toBe(`${d.metadata.name}: 1 PDB`);
      // A PDB never blocks a drain: one pod may always go.
      expect(pdb[0]!.spec.maxUnavailable).toBe(1);
    }
    for (const h of hpas) expect([...deployments, web].map((d) => d.metadata.name)).toContain(h.spec.scaleTargetRef.name);
    for (const p of pdbs) expect(byKind(objects, 'Deployment').some((d) => selects(p.spec.selector, podTemplate(d)!.metadata?.labels))).toBe(true);
    // Several gateways and relays always (cross-instance delivery).
    for (const name of ['gateway', 'message-relay']) expect(hpas.find((h) => h.metadata.name === name)!.spec.minReplicas).toBeGreaterThanOrEqual(2);
  });

  it('every Service selects the pods of a workload and targets a port they declare; the Deployment selector matches its template', () => {
    for (const s of byKind(objects, 'Service')) {
      const spec = s.spec as { selector: Record<string, string>; ports: { name?: string; targetPort?: string | number; port: number }[] };
      const targets = workloads.filter((w) => selects({ matchLabels: spec.selector }, podTemplate(w)!.metadata?.labels));
      expect(`${s.metadata.name}: ${targets.map((w) => w.metadata.name).join(',')}`).toMatch(/: .+/);
      for (const p of spec.ports) {
        const ports = targets.flatMap(containersOf).flatMap((c) => c.ports ?? []);
        const ok = typeof p.targetPort === 'string' ? ports.some((q) => q.name === p.targetPort) : ports.some((q) => q.containerPort === (p.targetPort ?? p.port));
        expect(`${s.metadata.name}:${p.port} -> ${p.targetPort} ${ok}`).toMatch(/ true$/);
      }
    }
    for (const w of workloads.filter((x) => x.kind !== 'Job')) {
      expect(selects((w.spec as { selector: LabelSelector }).selector, podTemplate(w)!.metadata?.labels)).toBe(true);
    }
  });

  describe('connection pooling (PgBouncer, transaction mode)', () => {
    const bouncer = byKind(objects, 'Deployment').find((d) => d.metadata.name === 'pgbouncer')!;
    const ini = (byKind(objects, 'ConfigMap').find((c) => c.metadata.name === 'pgbouncer-config') as unknown as { data: Record<string, string> }).data['pgbouncer.ini']!;
    const setting = (key: string) => new RegExp(`^${key}\\s*=\\s*(.*)$`, 'm').exec(ini)?.[1]?.trim();
    const secrets = new Map([...byKind(objects, 'Secret'), ...(overlay === 'prod' ? secretTemplate : [])].map((s) => [s.metadata.name, (s as unknown as { stringData: Record<string, string> }).stringData]));

    it('runs a pinned PgBouncer in transaction mode on 6432, behind a Service and a PodDisruptionBudget, with fixed replicas', () => {
      const c = containersOf(bouncer)[0]!;
      expect(c.image).toMatch(/^edoburu\/pgbouncer:v?1\.\d+\.\d+/);
      expect({ mode: setting('pool_mode'), port: setting('listen_port'), auth: setting('auth_type') }).toEqual({ mode: 'transaction', port: '6432', auth: 'scram-sha-256' });
      expect(ini).toMatch(/^%include \/etc\/pgbouncer\/databases\.ini$/m);
      expect(c.args).toEqual(['/etc/pgbouncer/pgbouncer.ini']);
      expect((bouncer.spec as { replicas?: number }).replicas).toBeGreaterThanOrEqual(2);
      const svc = byKind(objects, 'Service').find((s) => s.metadata.name === 'pgbouncer')!;
      expect((svc.spec as { ports: { port: number }[] }).ports.map((p) => p.port)).toEqual([6432]);
      const pdbs = byKind(objects, 'PodDisruptionBudget') as unknown as { spec: { selector: LabelSelector; maxUnavailable?: unknown } }[];
      expect(pdbs.filter((p) => selects(p.spec.selector, podTemplate(bouncer)!.metadata?.labels)).map((p) => p.spec.maxUnavailable)).toEqual([1]);
      expect(Number(setting('max_db_connections'))).toBeGreaterThanOrEqual(Number(setting('default_pool_size')));
    });

    it('is sized: every service pod at its HPA maximum fits one PgBouncer pod, and all pods\' server connections fit Postgres\' default max_connections', () => {
      const data = (byKind(objects, 'ConfigMap').find((c) => c.metadata.name === 'umbra-config') as unknown as { data: Record<string, string> }).data;
      const pool = Number(data.DATABASE_POOL_SIZE ?? ENV_SCHEMA.shape.DATABASE_POOL_SIZE.parse(undefined));
      const hpas = byKind(objects, 'HorizontalPodAutoscaler') as unknown as { spec: { maxReplicas: number } }[];
      const clients = hpas.reduce((n, h) => n + h.spec.maxReplicas * pool, 0);
      // A pod may take every client while the other one restarts.
      expect(clients).toBeLessThanOrEqual(Number(setting('max_client_conn')));
      const servers = (bouncer.spec as { replicas: number }).replicas * (Number(setting('max_db_connections')) + Number(setting('reserve_pool_size') ?? 0));
      // 100 is Postgres' default; keep room for the migration and administrators.
      expect(servers).toBeLessThanOrEqual(100 - 10);
    });

    it('every service connects through the pooler; only the migration Job connects to Postgres directly', () => {
      const viaPooler = new URL(secrets.get('umbra-secrets')!.DATABASE_URL!);
      expect(`${viaPooler.host}${viaPooler.pathname}`).toBe('pgbouncer:6432/umbra');
      const direct = new URL(secrets.get('umbra-migrate')!.DATABASE_URL!);
      expect(direct.port).toBe('5432');
      expect(direct.hostname).not.toBe('pgbouncer');
      const job = byKind(objects, 'Job').find((j) => j.metadata.name === 'umbra-migrate')!;
      const env = (containersOf(job)[0]!.env ?? []) as { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
      expect(env.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef).toEqual({ name: 'umbra-migrate', key: 'DATABASE_URL' });
      for (const d of deployments) {
        for (const c of containersOf(d).filter(isUmbra)) {
          expect(`${d.metadata.name} ${(c.env ?? []).some((e) => e.name === 'DATABASE_URL')}`).toBe(`${d.metadata.name} false`);
          expect(c.envFrom?.some((f) => f.secretRef?.name === 'umbra-secrets')).toBe(true);
        }
      }
      // The pooler's own Secret: where Postgres is, and the same user and password the services use.
      const pg = secrets.get('umbra-pgbouncer')!;
      expect(pg['databases.ini']).toMatch(/^\[databases\]\n\S+ = host=\S+ port=5432 dbname=\S+/);
      expect(pg['userlist.txt']).toContain(`"${decodeURIComponent(viaPooler.username)}" "${decodeURIComponent(viaPooler.password)}"`);
      const sources = (podTemplate(bouncer)!.spec as unknown as { volumes: { projected?: { sources: { secret?: { name: string } }[] } }[] }).volumes.flatMap((v) => v.projected?.sources ?? []);
      expect(sources.map((s) => s.secret?.name).filter(Boolean)).toEqual(['umbra-pgbouncer']);
    });
  });

  it('Ingress paths are exactly PUBLIC_PREFIXES, each to its service, and "/" to the web client; WebSocket with long timeouts', () => {
    const ingresses = byKind(objects, 'Ingress') as unknown as {
      metadata: { name: string; annotations?: Record<string, string> };
      spec: { ingressClassName?: string; rules: { host?: string; http: { paths: { path: string; pathType: string; backend: { service: { name: string; port: { name?: string; number?: number } } } }[] } }[] };
    }[];
    const routes = ingresses.flatMap((i) => i.spec.rules.flatMap((r) => r.http.paths.map((p) => ({ prefix: p.path, service: p.backend.service.name, pathType: p.pathType, host: r.host, ingress: i.metadata.name }))));
    const sort = <T extends { prefix: string }>(l: T[]) => [...l].sort((a, b) => a.prefix.localeCompare(b.prefix));
    expect(sort(routes.map(({ prefix, service }) => ({ prefix, service })))).toEqual(sort([...PUBLIC_PREFIXES, { prefix: '/', service: 'web' }]));
    for (const r of routes) expect(`${r.prefix} ${r.pathType}`).toBe(`${r.prefix} Prefix`);
    expect(new Set(routes.map((r) => r.host)).size).toBe(1);
    const services = byKind(objects, 'Service');
    for (const r of routes) expect(services.map((s) => s.metadata.name)).toContain(r.service);
    const ws = ingresses.find((i) => i.spec.rules.some((r) => r.http.paths.some((p) => p.path === '/v1/ws')))!;
    const a = ws.metadata.annotations ?? {};
    expect(Number(a['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(3600);
    expect(Number(a['nginx.ingress.kubernetes.io/proxy-send-timeout'])).toBeGreaterThanOrEqual(3600);
    for (const i of ingresses) expect(i.spec.ingressClassName).toBe('nginx');
    // The ops endpoints are never public.
    for (const r of routes) expect(['/metrics', '/healthz', '/readyz']).not.toContain(r.prefix);
  });

  it('Ingress body limit is the largest route body (the services refuse the rest in JSON); TRUSTED_PROXIES is set and valid', () => {
    const api = (byKind(objects, 'Ingress') as unknown as { metadata: { name: string; annotations?: Record<string, string> } }[]).find((i) => i.metadata.name === 'umbra-api')!;
    const size = api.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-body-size'] ?? '';
    const m = /^(\d+)([km])$/.exec(size)!;
    expect(Number(m[1]) * (m[2] === 'm' ? 1024 * 1024 : 1024)).toBe(LIMITS.MAX_HTTP_BODY_BYTES);
    const data = (byKind(objects, 'ConfigMap').find((c) => c.metadata.name === 'umbra-config') as unknown as { data: Record<string, string> }).data;
    expect(data.TRUSTED_PROXIES).toBeTruthy();
    expect(data).not.toHaveProperty('TRUST_PROXY');
    expect(loadConfig('gateway', { TRUSTED_PROXIES: data.TRUSTED_PROXIES }).TRUSTED_PROXIES.length).toBeGreaterThan(0);
  });

  it('the web client: the compose web image at the release tag, its nginx.conf from a ConfigMap, probes on /healthz, never the services\' image', () => {
    expect(web).toBeDefined();
    const t = podTemplate(web)!;
    const c = t.spec.containers[0]!;
    expect(c.image).toBe(`${UMBRA_IMAGE}-web:0.1.0`);
    const umbra = workloads.flatMap(containersOf).find(isUmbra)!;
    expect(c.image.split(':')[1]).toBe(umbra.image.split(':')[1]);
    const probePath = (p: unknown) => (p as { httpGet?: { path?: string } } | undefined)?.httpGet?.path;
    expect([probePath(c.startupProbe), probePath(c.livenessProbe), probePath(c.readinessProbe)]).toEqual(['/healthz', '/healthz', '/healthz']);
    const mounts = (c as unknown as { volumeMounts: { name: string; mountPath: string; subPath?: string }[] }).volumeMounts;
    expect(mounts).toEqual(expect.arrayContaining([expect.objectContaining({ mountPath: '/etc/nginx/nginx.conf', subPath: 'nginx.conf' }), expect.objectContaining({ mountPath: '/tmp' })]));
    const conf = (byKind(objects, 'ConfigMap').find((m) => m.metadata.name === 'umbra-web-nginx') as unknown as { data: Record<string, string> }).data['nginx.conf']!;
    expect(conf).toContain('listen 8080;');
    expect(conf).toContain('root /usr/share/nginx/umbra-web;');
    expect(conf).not.toMatch(/proxy_pass|upstream/);
  });

  it("the web client's CSP allows exactly the S3 origin of this overlay's config (WEB_CONNECT_SRC from umbra-web-config)", () => {
    const data = (name: string) => (byKind(objects, 'ConfigMap').find((m) => m.metadata.name === name) as unknown as { data: Record<string, string> }).data;
    const c = podTemplate(web)!.spec.containers[0]!;
    expect(c.envFrom).toEqual([{ configMapRef: { name: 'umbra-web-config' } }]);
    const connectSrc = data('umbra-web-config').WEB_CONNECT_SRC!;
    expect(connectSrc.split(' ')).toEqual(s3ConnectSources(data('umbra-config')));
    const conf = data('umbra-web-nginx')['nginx.conf']!;
    expect(conf).toContain(`include ${WEB_CSP_INCLUDE};`);
    expect(conf).not.toMatch(/add_header\s+Content-Security-Policy/i);
    expect(cspOf(renderWebCsp({ WEB_CONNECT_SRC: connectSrc }))).toBe(webContentSecurityPolicy(s3ConnectSources(data('umbra-config'))));
  });

  describe('NetworkPolicies', () => {
    type Peer = { namespaceSelector?: LabelSelector; podSelector?: LabelSelector; ipBlock?: { cidr: string; except?: string[] } };
    type Rule = { from?: Peer[]; to?: Peer[]; ports?: { protocol?: string; port?: number | string }[] };
    type Policy = { metadata: { name: string }; spec: { podSelector: LabelSelector; policyTypes?: string[]; ingress?: Rule[]; egress?: Rule[] } };
    const policies = byKind(objects, 'NetworkPolicy') as unknown as Policy[];
    const applying = (labels: Record<string, string> | undefined, type: 'Ingress' | 'Egress') =>
      policies.filter((p) => (p.spec.policyTypes ?? ['Ingress']).includes(type) && selects(p.spec.podSelector, labels));
    const nsOf = (peer: Peer) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'];
    const umbraWorkloads = workloads.filter((w) => containersOf(w).some(isUmbra));

    it('deny all ingress and egress by default', () => {
      expect(policies.some((p) => Object.keys(p.spec.podSelector).length === 0 && !p.spec.ingress && !p.spec.egress && ['Ingress', 'Egress'].every((t) => p.spec.policyTypes?.includes(t)))).toBe(true);
    });

    it('gateway, key-directory and media-upload: ingress only from the ingress controller (and metrics scraping)', () => {
      for (const name of ['gateway', 'key-directory', 'media-upload']) {
        const labels = podTemplate(deployments.find((d) => d.metadata.name === name)!)!.metadata?.labels;
        const peers = applying(labels, 'Ingress').flatMap((p) => (p.spec.ingress ?? []).flatMap((r) => r.from ?? [{}]));
        expect(peers.map(nsOf).sort()).toEqual(['ingress-nginx', 'monitoring']);
        for (const p of peers) expect(p.ipBlock).toBeUndefined();
      }
    });

    it('the web pods: ingress only from the ingress controller on 8080, egress only DNS', () => {
      const labels = podTemplate(web)!.metadata?.labels;
      const rules = applying(labels, 'Ingress').flatMap((p) => p.spec.ingress ?? []);
      expect(rules.flatMap((r) => (r.from ?? [{}]).map(nsOf))).toEqual(['ingress-nginx']);
      expect(rules.flatMap((r) => (r.ports ?? []).map((p) => p.port))).toEqual([8080]);
      expect(applying(labels, 'Egress').flatMap((p) => (p.spec.egress ?? []).flatMap((r) => (r.ports ?? []).map((q) => q.port))).sort()).toEqual([53, 53]);
    });

    it('message-relay, expiry-worker and the migration: no ingress but metrics scraping from the monitoring namespace', () => {
      for (const w of umbraWorkloads.filter((x) => !['gateway', 'key-directory', 'media-upload', 'witness'].includes(x.metadata.name))) {
        const rules = applying(podTemplate(w)!.metadata?.labels, 'Ingress').flatMap((p) => p.spec.ingress ?? []);
        for (const r of rules) {
          expect((r.from ?? [{}]).map(nsOf)).toEqual(['monitoring']);
          expect(r.ports?.map((p) => p.port)).toEqual([3000]);
        }
      }
    });

    /** key-directory → witness (key transparency), the one pod-to-pod egress between Umbra services. */
    const isWitnessPush = (w: K8sObject, r: Rule) =>
      w.metadata.name === 'key-directory' && (r.to ?? []).length > 0 && (r.to ?? []).every((p) => !p.ipBlock && !p.namespaceSelector && p.podSelector?.matchLabels?.['app.kubernetes.io/component'] === 'witness') && (r.ports ?? []).every((p) => p.port === 3000);

    it('the witness: ingress only from key-directory pods (and metrics scraping); key-directory may reach it on the http port', () => {
      const labels = podTemplate(deployments.find((d) => d.metadata.name === 'witness')!)!.metadata?.labels;
      const peers = applying(labels, 'Ingress').flatMap((p) => (p.spec.ingress ?? []).flatMap((r) => r.from ?? [{}]));
      expect(peers.map((p) => nsOf(p) ?? p.podSelector?.matchLabels?.['app.kubernetes.io/component']).sort()).toEqual(['key-directory', 'monitoring']);
      const kd = workloads.find((w) => w.metadata.name === 'key-directory')!;
      expect(applying(podTemplate(kd)!.metadata?.labels, 'Egress').flatMap((p) => p.spec.egress ?? []).some((r) => isWitnessPush(kd, r))).toBe(true);
    });

    /** Umbra pod → PgBouncer pods on 6432. */
    const isPoolerEgress = (r: Rule) =>
      (r.to ?? []).length > 0 && (r.to ?? []).every((p) => !p.ipBlock && !p.namespaceSelector && p.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'pgbouncer') && (r.ports ?? []).every((p) => p.port === 6432);
    const egressPorts = (w: K8sObject) => applying(podTemplate(w)!.metadata?.labels, 'Egress').flatMap((p) => (p.spec.egress ?? []).flatMap((r) => (r.ports ?? []).map((q) => q.port)));

    it('Postgres only through PgBouncer: services egress to the pooler on 6432 and never to 5432; the pooler and the migration reach 5432', () => {
      for (const w of umbraWorkloads) {
        const rules = applying(podTemplate(w)!.metadata?.labels, 'Egress').flatMap((p) => p.spec.egress ?? []);
        expect(`${w.metadata.name} pooler egress ${rules.some(isPoolerEgress)}`).toBe(`${w.metadata.name} pooler egress true`);
        const direct = egressPorts(w).includes(5432);
        expect(`${w.metadata.name} egress 5432 ${direct}`).toBe(`${w.metadata.name} egress 5432 ${w.kind === 'Job'}`);
      }
      const bouncer = workloads.find((w) => w.metadata.name === 'pgbouncer')!;
      const labels = podTemplate(bouncer)!.metadata?.labels;
      expect([...new Set(egressPorts(bouncer))].sort()).toEqual([53, 5432]);
      const from = applying(labels, 'Ingress').flatMap((p) => p.spec.ingress ?? []);
      expect(from.flatMap((r) => (r.from ?? [{}]).map((p) => p.podSelector?.matchLabels?.['app.kubernetes.io/name']))).toEqual(['umbra']);
      expect(from.flatMap((r) => (r.ports ?? []).map((p) => p.port))).toEqual([6432]);
      if (overlay === 'dev') {
        const pgIngress = policies.filter((p) => selects(p.spec.podSelector, { 'app.kubernetes.io/name': 'postgres' })).flatMap((p) => p.spec.ingress ?? []);
        expect(pgIngress.some((r) => (r.from ?? []).some((peer) => selects(peer.podSelector, labels)))).toBe(true);
      }
    });

    it('Umbra pods: egress only to DNS, PgBouncer, Redis and S3 (and Postgres for the migration)', () => {
      const allowed = overlay === 'dev' ? [53, 5432, 6379, 9000] : [53, 443, 5432, 6379];
      for (const w of umbraWorkloads) {
        const rules = applying(podTemplate(w)!.metadata?.labels, 'Egress').flatMap((p) => p.spec.egress ?? []).filter((r) => !isWitnessPush(w, r) && !isPoolerEgress(r));
        expect(rules.length).toBeGreaterThan(0);
        for (const r of rules) {
          expect(r.ports?.length ?? 0).toBeGreaterThan(0);
          for (const p of r.ports ?? []) expect(allowed).toContain(p.port);
          for (const peer of r.to ?? []) if (peer.ipBlock) expect(peer.ipBlock.except ?? []).toContain('169.254.169.254/32');
        }
        const dns = rules.filter((r) => r.ports?.some((p) => p.port === 53));
        expect(dns.flatMap((r) => (r.to ?? []).map(nsOf))).toEqual(['kube-system']);
      }
    });
  });

  it('every env var of an Umbra container is an ENV_SCHEMA key, and the config with its Secrets passes ENV_SCHEMA', () => {
    const configMaps = new Map(byKind(objects, 'ConfigMap').map((c) => [c.metadata.name, (c as unknown as { data: Record<string, string> }).data]));
    const secrets = new Map([...byKind(objects, 'Secret'), ...(overlay === 'prod' ? secretTemplate : [])].map((s) => [s.metadata.name, (s as unknown as { stringData: Record<string, string> }).stringData]));
    const umbraContainers = workloads.flatMap((w) => containersOf(w).filter(isUmbra).map((c) => ({ w, c })));
    expect(umbraContainers.length).toBeGreaterThan(SERVICES.length - 1);
    for (const { w, c } of umbraContainers) {
      const env: Record<string, string> = {};
      for (const from of c.envFrom ?? []) {
        const source = from.configMapRef ? configMaps.get(from.configMapRef.name) : from.secretRef ? secrets.get(from.secretRef.name) : undefined;
        expect(`${w.metadata.name} envFrom ${JSON.stringify(from)} found=${source !== undefined}`).toMatch(/found=true$/);
        Object.assign(env, source);
      }
      for (const e of c.env ?? []) env[e.name] = e.value ?? 'from-field';
      for (const key of Object.keys(env)) expect(`${w.metadata.name}: ${key} in ENV_SCHEMA=${ENV_KEYS.has(key)}`).toMatch(/=true$/);
      if (env.INSTANCE_ID === 'from-field') env.INSTANCE_ID = `${w.metadata.name}-7d9c6b5f4-x2x9q`;
      const parsed = ENV_SCHEMA.safeParse(env);
      expect(parsed.success ? 'valid' : `${w.metadata.name}: ${JSON.stringify(parsed.error.issues)}`).toBe('valid');
    }
    // Only media-upload and expiry-worker hold the S3 credentials.
    const s3Holders = umbraContainers.filter(({ c }) => c.envFrom?.some((f) => f.secretRef?.name === 'umbra-s3-credentials')).map(({ w }) => w.metadata.name);
    expect(s3Holders.sort()).toEqual(['expiry-worker', 'media-upload']);
  });

  it('the migration Job runs the migration runner of the same image', () => {
    const job = byKind(objects, 'Job').find((j) => j.metadata.name === 'umbra-migrate')!;
    const c = containersOf(job)[0]!;
    expect(c.args).toEqual(['node', 'dist/scripts/migrate.js']);
    expect(isUmbra(c)).toBe(true);
    expect((job.spec as { template: { spec: { restartPolicy: string } } }).template.spec.restartPolicy).toBe('Never');
  });
});

describe('deploy/s3/cors.json (the bucket CORS rule for browsers, docs/operations.md)', () => {
  const rule = (JSON.parse(readFileSync(repoPath('deploy', 's3', 'cors.json'), 'utf8')) as { CORSRules: Record<string, unknown>[] }).CORSRules;

  it("allows the production overlay's PUBLIC_ORIGIN the methods, headers and exposed ETag the embedded S3 answers any origin with", () => {
    const config = byKind(rendered.prod, 'ConfigMap').find((c) => c.metadata.name === 'umbra-config') as unknown as { data: Record<string, string> };
    const tags = (tag: string) => [...BROWSER_CORS.matchAll(new RegExp(`<${tag}>([^<]+)</${tag}>`, 'g'))].map((m) => m[1]);
    expect(rule).toEqual([
      {
        AllowedOrigins: [config.data.PUBLIC_ORIGIN],
        AllowedMethods: tags('AllowedMethod'),
        AllowedHeaders: tags('AllowedHeader'),
        ExposeHeaders: tags('ExposeHeader'),
        MaxAgeSeconds: Number(tags('MaxAgeSeconds')[0]),
      },
    ]);
    expect(rule[0]!.ExposeHeaders).toEqual(['ETag']);
  });
});

describe('k8s secrets', () => {
  it('production renders no Secret: credentials are created from the template or a secret manager, never overwritten by apply', () => {
    expect(byKind(rendered.prod, 'Secret')).toEqual([]);
  });

  it('the Secret template holds placeholders only, ENV_SCHEMA keys only, and is valid', () => {
    expect(secretTemplate.map((s) => s.metadata.name).sort()).toEqual(['umbra-kt-log', 'umbra-migrate', 'umbra-pgbouncer', 'umbra-s3-credentials', 'umbra-secrets', 'umbra-turn', 'umbra-witness']);
    for (const s of secretTemplate) {
      validateObject(s);
      const data = (s as unknown as { stringData: Record<string, string> }).stringData;
      for (const [k, v] of Object.entries(data)) {
        // PgBouncer's Secret is mounted as its config files, not environment variables.
        if (s.metadata.name === 'umbra-pgbouncer') expect(['databases.ini', 'userlist.txt']).toContain(k);
        else expect(ENV_KEYS.has(k)).toBe(true);
        expect(`${k}=${v}`).toMatch(/CHANGE_ME/);
      }
    }
  });

  it('no kustomization references the Secret template', () => {
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name === 'kustomization.yaml' ? [path.join(dir, e.name)] : []));
    for (const f of walk(repoPath('k8s'))) {
      const k = parse(readFileSync(f, 'utf8')) as { resources?: string[]; patches?: { path?: string }[] };
      for (const entry of [...(k.resources ?? []), ...(k.patches ?? []).map((p) => p.path ?? '')]) expect(entry).not.toMatch(/secret\.template/);
    }
  });

  it('key-directory of the dev overlay loads its production config: a log key that is not the source default, witnesses, quorum', () => {
    const objects = rendered.dev;
    const kd = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'key-directory')!;
    const sources = new Map(objects.filter((o) => o.kind === 'ConfigMap' || o.kind === 'Secret').map((o) => [o.metadata.name, (o as unknown as { data?: Record<string, string>; stringData?: Record<string, string> })]));
    const env: Record<string, string> = {};
    for (const from of containersOf(kd)[0]!.envFrom ?? []) {
      const src = sources.get((from.configMapRef ?? from.secretRef)!.name)!;
      Object.assign(env, src.data ?? src.stringData);
    }
    expect(env.NODE_ENV).toBe('production');
    const config = loadConfig('key-directory', env);
    expect(config.ktWitnesses.map((w) => w.url)).toEqual(['http://witness:3000']);
  });

  it('dev Secrets are visibly throwaway values', () => {
    for (const s of byKind(rendered.dev, 'Secret')) {
      for (const [k, v] of Object.entries((s as unknown as { stringData: Record<string, string> }).stringData)) {
        if (/PASSWORD|SECRET/.test(k)) expect(v).toMatch(/^dev-only-/);
        if (k.endsWith('_URL')) expect(v).toMatch(/^(redis:\/\/redis:6379|postgres:\/\/umbra:dev-only-[^@]+@(postgres:5432|pgbouncer:6432)\/umbra)$/);
        if (k === 'userlist.txt') expect(v).toMatch(/^"umbra" "dev-only-[^"]+"\n$/);
      }
    }
  });
});
