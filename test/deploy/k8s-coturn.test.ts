import { TURN_DENIED_PEER_RANGES, TURN_HARDENING } from '../../scripts/lib/embedded-turn';
import { ENV_SCHEMA } from '@umbra/server';
import { readYamlDocuments, renderKustomization, type K8sObject } from './kustomize';
import { podTemplate, repoPath, type Container } from './support';

/**
 * The TURN relay on Kubernetes (issue 14): coturn with the hardening every shipped config has,
 * reachable through a UDP LoadBalancer on 3478 and its relay range, sharing TURN_SECRET with the
 * gateways. Parsed from the YAML (no cluster, no kustomize binary).
 */

type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } } };
type Port = { name?: string; containerPort?: number; port?: number; targetPort?: number | string; protocol?: string; endPort?: number };

const secretTemplate = readYamlDocuments(repoPath('k8s', 'base', 'secret.template.yaml')) as K8sObject[];

describe.each(['dev', 'prod'] as const)('coturn in the k8s overlay %s', (overlay) => {
  const objects = renderKustomization(repoPath('k8s', 'overlays', overlay));
  const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
  const data = (name: string) => (find('ConfigMap', name) as unknown as { data: Record<string, string> } | undefined)?.data ?? {};
  const secrets = new Map([...objects.filter((o) => o.kind === 'Secret'), ...(overlay === 'prod' ? secretTemplate : [])].map((s) => [s.metadata.name, (s as unknown as { stringData: Record<string, string> }).stringData]));
  const coturn = find('Deployment', 'coturn')!;
  const container = podTemplate(coturn)!.spec.containers[0] as Omit<Container, 'env' | 'ports'> & { env?: EnvVar[]; args?: string[]; ports?: Port[] };
  const conf = data('coturn-config')['turnserver.conf'] ?? '';
  const lines = conf.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const setting = (key: string) => lines.find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
  const relay = { min: Number(setting('min-port')), max: Number(setting('max-port')) };

  it('coturn reads its config file with the shipped hardening, every denied peer range, and no loopback allowance', () => {
    expect(container.image).toMatch(/^coturn\/coturn:\d+\.\d+\.\d+/);
    expect(container.args?.slice(0, 2)).toEqual(['-c', '/etc/coturn/turnserver.conf']);
    for (const flag of TURN_HARDENING) expect(lines).toContain(flag);
    for (const range of TURN_DENIED_PEER_RANGES) expect(lines).toContain(`denied-peer-ip=${range}`);
    expect(conf).not.toMatch(/allow-loopback-peers|allowed-peer-ip|^\s*cli-password/m);
    expect(conf).not.toMatch(/static-auth-secret/);
    expect(setting('listening-port')).toBe('3478');
    expect(relay.max).toBeGreaterThan(relay.min);
  });

  it('coturn and the gateways share TURN_SECRET from the umbra-turn Secret; the gateways get TURN_URLS, and their config passes', () => {
    const secretEnv = container.env?.find((e) => e.name === 'TURN_SECRET');
    expect(secretEnv?.valueFrom?.secretKeyRef).toEqual({ name: 'umbra-turn', key: 'TURN_SECRET' });
    expect(container.args).toContain('--static-auth-secret=$(TURN_SECRET)');
    const gateway = podTemplate(find('Deployment', 'gateway')!)!.spec.containers[0]!;
    expect(gateway.envFrom).toEqual(expect.arrayContaining([{ secretRef: { name: 'umbra-turn' } }, { configMapRef: { name: 'umbra-turn' } }]));
    const turnSecret = secrets.get('umbra-turn')!;
    expect(Object.keys(turnSecret)).toEqual(['TURN_SECRET']);
    const urls = data('umbra-turn').TURN_URLS!;
    expect(urls.split(',').every((u) => /^turns?:[^:]+:3478\?transport=(udp|tcp)$/.test(u))).toBe(true);
    const parsed = ENV_SCHEMA.pick({ TURN_SECRET: true, TURN_URLS: true }).safeParse({ TURN_SECRET: turnSecret.TURN_SECRET, TURN_URLS: urls });
    expect(parsed.success).toBe(true);
    // Only the gateways (and coturn) see the TURN secret.
    const holders = objects
      .filter((o) => podTemplate(o))
      .filter((o) => podTemplate(o)!.spec.containers.some((c) => (c.envFrom ?? []).some((f) => f.secretRef?.name === 'umbra-turn') || ((c as { env?: EnvVar[] }).env ?? []).some((e) => e.valueFrom?.secretKeyRef?.name === 'umbra-turn')))
      .map((o) => o.metadata.name);
    expect(holders.sort()).toEqual(['coturn', 'gateway']);
  });

  it('a LoadBalancer Service carries UDP and TCP 3478 and every relay port of the config, each declared by the container', () => {
    const svc = find('Service', 'coturn')!.spec as { type: string; externalTrafficPolicy?: string; ports: Port[] };
    expect(svc.type).toBe('LoadBalancer');
    expect(svc.externalTrafficPolicy).toBe('Local');
    const key = (p: Port) => `${p.protocol ?? 'TCP'}/${p.port ?? p.containerPort}`;
    const expected = ['UDP/3478', 'TCP/3478', ...Array.from({ length: relay.max - relay.min + 1 }, (_, i) => `UDP/${relay.min + i}`)];
    expect(svc.ports.map(key).sort()).toEqual([...expected].sort());
    expect((container.ports ?? []).map(key).sort()).toEqual([...expected].sort());
    expect(podTemplate(coturn)!.spec.hostNetwork ?? false).toBe(false);
  });

  it('its NetworkPolicy lets clients reach 3478 and the relay range, and relays only to public addresses', () => {
    type Policy = { spec: { podSelector: { matchLabels?: Record<string, string> }; policyTypes: string[]; ingress?: { ports?: Port[] }[]; egress?: { to?: { ipBlock?: { cidr: string; except?: string[] } }[]; ports?: Port[] }[] } };
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy').map((o) => o as unknown as Policy).filter((p) => p.spec.podSelector.matchLabels?.['app.kubernetes.io/name'] === 'coturn');
    expect(policies).toHaveLength(1);
    const p = policies[0]!.spec;
    expect(p.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
    const ports = (p.ingress ?? []).flatMap((r) => r.ports ?? []).map((q) => `${q.protocol}/${q.port}${q.endPort ? `-${q.endPort}` : ''}`);
    expect(ports.sort()).toEqual(['TCP/3478', 'UDP/3478', `UDP/${relay.min}-${relay.max}`].sort());
    const blocks = (p.egress ?? []).flatMap((r) => r.to ?? []).map((t) => t.ipBlock!);
    expect(blocks).toHaveLength(1);
    for (const cidr of ['10.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10']) expect(blocks[0]!.except).toContain(cidr);
  });
});
