import { spawnSync } from 'node:child_process';
import { parse, parseAllDocuments } from 'yaml';
import { ENV_SCHEMA, parseClusterNodes } from '@umbra/server';
import { objectId, renderKustomization, type K8sObject } from './kustomize';
import { hasBinary, podTemplate, readRepoFile, repoPath, selects, toolMissing, UMBRA_IMAGE, validateObject, type LabelSelector } from './support';

interface Service {
  image?: string;
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[] };
  restart?: string;
  volumes?: string[];
}
interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const base = parse(readRepoFile('docker-compose.yml'), { merge: true }) as ComposeFile;
const overlay = parse(readRepoFile('deploy', 'compose.redis-cluster.yml'), { merge: true }) as ComposeFile;
const nodes = Object.entries(overlay.services).filter(([name]) => /^redis-node-\d$/.test(name));
const init = overlay.services['redis-cluster-init']!;
/** Long-running Umbra services of docker-compose.yml (the migration does not use Redis). */
const umbra = Object.entries(base.services).filter(([name, s]) => s.image?.startsWith(`${UMBRA_IMAGE}:`) && name !== 'migrate');

describe('deploy/compose.redis-cluster.yml (Redis Cluster for compose)', () => {
  it('six Redis 7 nodes, cluster-enabled, each announcing its service name, password-protected for clients and replication, noeviction, data on its own volume', () => {
    expect(nodes.map(([n]) => n)).toEqual(['redis-node-1', 'redis-node-2', 'redis-node-3', 'redis-node-4', 'redis-node-5', 'redis-node-6']);
    for (const [name, s] of nodes) {
      expect(s.image).toBe(base.services.redis!.image);
      const argv = [...(s.entrypoint ?? []), ...(s.command ?? [])];
      const flag = (f: string) => argv[argv.indexOf(f) + 1];
      expect(argv.slice(0, 2)).toEqual(['docker-entrypoint.sh', 'redis-server']);
      expect({ name, enabled: flag('--cluster-enabled'), announce: flag('--cluster-announce-hostname'), endpoint: flag('--cluster-preferred-endpoint-type'), eviction: flag('--maxmemory-policy') }).toEqual({
        name, enabled: 'yes', announce: name, endpoint: 'hostname', eviction: 'noeviction',
      });
      expect(flag('--requirepass')).toMatch(/^\$\{REDIS_PASSWORD:\?/);
      expect(flag('--masterauth')).toBe(flag('--requirepass'));
      expect(flag('--cluster-config-file')).toBe('/data/nodes.conf');
      expect(s.volumes).toEqual([`${name}-data:/data`]);
      expect(s.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    }
    expect(Object.keys(overlay.volumes ?? {}).sort()).toEqual(nodes.map(([n]) => `${n}-data`).sort());
  });

  it('a one-shot job joins all six (one replica per master) once every node is healthy', () => {
    const script = (init.command ?? []).join(' ');
    expect(script).toContain(`redis-cli --cluster create ${nodes.map(([n]) => `${n}:6379`).join(' ')} --cluster-replicas 1 --cluster-yes`);
    expect(script).toMatch(/cluster_state:ok \|\|/);
    expect(init.restart).toBe('no');
    expect(Object.keys(init.depends_on ?? {}).sort()).toEqual(nodes.map(([n]) => n).sort());
    for (const d of Object.values(init.depends_on ?? {})) expect(d.condition).toBe('service_healthy');
  });

  it('every long-running Umbra service gets REDIS_CLUSTER_NODES (all six) and waits for the job', () => {
    expect(umbra.length).toBeGreaterThan(5);
    for (const [name] of umbra) {
      const s = overlay.services[name];
      expect(`${name}: ${s?.depends_on?.['redis-cluster-init']?.condition}`).toBe(`${name}: service_completed_successfully`);
      const value = s?.environment?.REDIS_CLUSTER_NODES ?? '';
      expect(parseClusterNodes(value).map((n) => `${n.host}:${n.port}`)).toEqual(nodes.map(([n]) => `${n}:6379`));
      expect(ENV_SCHEMA.shape.REDIS_CLUSTER_NODES.safeParse(value).success).toBe(true);
    }
    expect(Object.keys(overlay.services).filter((n) => !n.startsWith('redis-')).sort()).toEqual(umbra.map(([n]) => n).sort());
  });

  it('`docker compose config` accepts docker-compose.yml with it', () => {
    const tools: [string, string[]][] = [];
    if (hasBinary('docker-compose', ['version'])) tools.push(['docker-compose', []]);
    if (hasBinary('docker', ['compose', 'version'])) tools.push(['docker', ['compose']]);
    if (tools.length === 0 && toolMissing('docker-compose', 'docker-compose')) return;
    for (const [cmd, pre] of tools) {
      const r = spawnSync(cmd, [...pre, '--env-file', '.env.example', '-f', 'docker-compose.yml', '-f', 'deploy/compose.redis-cluster.yml', 'config'], { encoding: 'utf8', cwd: repoPath() });
      expect(`${cmd}: exit ${r.status} ${r.stderr}`).toBe(`${cmd}: exit 0 `);
      const merged = parse(r.stdout) as ComposeFile;
      expect(merged.services['gateway-1']?.environment?.REDIS_URL).toBeDefined();
      expect(merged.services['gateway-1']?.environment?.REDIS_CLUSTER_NODES).toBe(overlay.services['gateway-1']!.environment!.REDIS_CLUSTER_NODES);
      expect(merged.services['redis-node-1']?.command).toEqual(['--cluster-announce-hostname', 'redis-node-1']);
    }
  });
});

describe('k8s/overlays/dev-redis-cluster (the dev overlay on an in-cluster Redis Cluster)', () => {
  type Rule = { from?: { podSelector?: LabelSelector }[]; to?: { podSelector?: LabelSelector }[]; ports?: { port?: number }[] };
  type Policy = { spec: { podSelector: LabelSelector; policyTypes?: string[]; ingress?: Rule[]; egress?: Rule[] } };
  const dir = repoPath('k8s', 'overlays', 'dev-redis-cluster');
  const objects = renderKustomization(dir);
  const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name)!;
  const sts = find('StatefulSet', 'redis-cluster') as K8sObject & { spec: { replicas: number; serviceName: string } };
  const job = find('Job', 'redis-cluster-init');
  const nodeNames = Array.from({ length: sts.spec.replicas }, (_, i) => `${sts.metadata.name}-${i}.${sts.spec.serviceName}:6379`);
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy') as unknown as (K8sObject & Policy)[];
  /** Ports a rule of `type` lets `labels` pods use towards / from `peer` pods. */
  const ports = (labels: Record<string, string>, type: 'Ingress' | 'Egress', peer: Record<string, string>) =>
    policies
      .filter((p) => (p.spec.policyTypes ?? ['Ingress']).includes(type) && selects(p.spec.podSelector, labels))
      .flatMap((p) => (type === 'Ingress' ? p.spec.ingress : p.spec.egress) ?? [])
      .filter((r) => ((type === 'Ingress' ? r.from : r.to) ?? []).some((x) => x.podSelector && selects(x.podSelector, peer)))
      .flatMap((r) => (r.ports ?? []).map((x) => Number(x.port)))
      .sort((a, b) => a - b);

  it('renders the dev overlay plus the cluster into one namespace; valid objects; same as `kubectl kustomize`', () => {
    expect(objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'gateway')).toBeDefined();
    for (const o of objects) if (o.kind !== 'Namespace') expect(`${objectId(o)}`).toMatch(/\/umbra-dev\//);
    for (const o of objects) validateObject(o);
    const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
    if (r.error) {
      console.warn('skipped the kubectl kustomize cross-check: no kubectl on the PATH');
      return;
    }
    expect(r.status).toBe(0);
    const index = (list: K8sObject[]) => Object.fromEntries(list.map((o) => [objectId(o), o]));
    expect(index(objects)).toEqual(index(parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject)));
  });

  it('six pods announcing their stable DNS names, cluster state and AOF on a volume each, noeviction, hardened like the dev Redis', () => {
    expect(sts.spec.replicas).toBe(6);
    const svc = find('Service', sts.spec.serviceName) as K8sObject & { spec: { clusterIP: string; publishNotReadyAddresses: boolean; ports: { port: number }[] } };
    expect({ clusterIP: svc.spec.clusterIP, notReady: svc.spec.publishNotReadyAddresses, ports: svc.spec.ports.map((p) => p.port) }).toEqual({ clusterIP: 'None', notReady: true, ports: [6379, 16379] });
    const c = podTemplate(sts)!.spec.containers[0]!;
    const flag = (f: string) => c.args![c.args!.indexOf(f) + 1];
    expect({ enabled: flag('--cluster-enabled'), announce: flag('--cluster-announce-hostname'), endpoint: flag('--cluster-preferred-endpoint-type'), eviction: flag('--maxmemory-policy'), conf: flag('--cluster-config-file') }).toEqual({
      enabled: 'yes', announce: `$(POD_NAME).${sts.spec.serviceName}`, endpoint: 'hostname', eviction: 'noeviction', conf: '/data/nodes.conf',
    });
    expect(c.env).toEqual([{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]);
    expect((sts.spec as unknown as { volumeClaimTemplates: { metadata: { name: string } }[] }).volumeClaimTemplates.map((v) => v.metadata.name)).toEqual(['data']);
    const dev = objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'redis')!;
    expect(c.image).toBe(podTemplate(dev)!.spec.containers[0]!.image);
    for (const w of [sts, job]) {
      const t = podTemplate(w)!;
      expect(t.spec.securityContext?.runAsNonRoot).toBe(true);
      for (const x of t.spec.containers) {
        expect(x.securityContext).toEqual({ runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
        expect(Object.keys(x.resources?.requests ?? {}).sort()).toEqual(['cpu', 'memory']);
        expect(Object.keys(x.resources?.limits ?? {}).sort()).toEqual(['cpu', 'memory']);
      }
    }
    expect(Boolean(c.livenessProbe) && Boolean(c.readinessProbe)).toBe(true);
  });

  it('every service gets REDIS_CLUSTER_NODES naming the six pods, which the Job joins once', () => {
    const config = find('ConfigMap', 'umbra-config') as K8sObject & { data: Record<string, string> };
    expect(parseClusterNodes(config.data.REDIS_CLUSTER_NODES!).map((n) => `${n.host}:${n.port}`)).toEqual(nodeNames);
    expect(ENV_SCHEMA.shape.REDIS_CLUSTER_NODES.safeParse(config.data.REDIS_CLUSTER_NODES).success).toBe(true);
    const script = (podTemplate(job)!.spec.containers[0]!.command ?? []).join(' ');
    expect(script).toContain(`redis-cli --cluster create ${nodeNames.join(' ')} --cluster-replicas 1 --cluster-yes`);
    expect(script).toMatch(/cluster_state:ok \|\|/);
  });

  it('NetworkPolicies: the nodes reach each other on 6379 and the bus port; Umbra pods and the Job reach them on 6379 only', () => {
    const node = podTemplate(sts)!.metadata!.labels!;
    const init = podTemplate(job)!.metadata!.labels!;
    const umbra = podTemplate(find('Deployment', 'gateway'))!.metadata!.labels!;
    expect(ports(node, 'Ingress', node)).toEqual([6379, 16379]);
    expect(ports(node, 'Egress', node)).toEqual([6379, 16379]);
    expect(ports(node, 'Ingress', umbra)).toEqual([6379]);
    expect(ports(node, 'Ingress', init)).toEqual([6379]);
    expect(ports(umbra, 'Egress', node)).toEqual([6379]);
    expect(ports(init, 'Egress', node)).toEqual([6379]);
  });
});
