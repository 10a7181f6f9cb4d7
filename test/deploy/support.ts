import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import type { K8sObject } from './kustomize';

/** jest runs from the repository root (ESM mode: no __dirname). */
export const ROOT = process.cwd();
export const repoPath = (...parts: string[]): string => path.join(ROOT, ...parts);
export const readRepoFile = (...parts: string[]): string => readFileSync(repoPath(...parts), 'utf8');

/** The image every Umbra container runs (one image, the entry chosen by the command). */
export const UMBRA_IMAGE = 'ghcr.io/umbra-chat/umbra';
export const SERVICES = ['gateway', 'key-directory', 'message-relay', 'media-upload', 'expiry-worker', 'witness'] as const;

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: never) => Validatable;

/** The kubernetes-models class per apiVersion/kind used in k8s/; anything else fails the tests. */
export const MODELS: Record<string, ModelClass> = {
  'v1/Namespace': Namespace as unknown as ModelClass,
  'v1/ConfigMap': ConfigMap as unknown as ModelClass,
  'v1/Secret': Secret as unknown as ModelClass,
  'v1/Service': Service as unknown as ModelClass,
  'v1/ServiceAccount': ServiceAccount as unknown as ModelClass,
  'apps/v1/Deployment': Deployment as unknown as ModelClass,
  'apps/v1/StatefulSet': StatefulSet as unknown as ModelClass,
  'batch/v1/Job': Job as unknown as ModelClass,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler as unknown as ModelClass,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget as unknown as ModelClass,
  'networking.k8s.io/v1/Ingress': Ingress as unknown as ModelClass,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy as unknown as ModelClass,
};

/** Throws with the object's id when kubernetes-models rejects it or does not know its kind. */
export function validateObject(o: K8sObject): void {
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!Model) throw new Error(`${o.apiVersion}/${o.kind} ${o.metadata.name}: unknown kind (add it to MODELS in test/deploy/support.ts if it is intended)`);
  try {
    new Model(o as never).validate();
  } catch (err) {
    throw new Error(`${o.kind}/${o.metadata.name} is invalid: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

/** Kubernetes label-selector semantics (an empty selector selects everything). */
export function selects(selector: LabelSelector | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return false;
  const l = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in l;
    if (e.operator === 'In' && !(has && (e.values ?? []).includes(l[e.key]!))) return false;
    if (e.operator === 'NotIn' && has && (e.values ?? []).includes(l[e.key]!)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  livenessProbe?: unknown;
  readinessProbe?: unknown;
  startupProbe?: unknown;
  lifecycle?: { preStop?: { exec?: { command?: string[] }; sleep?: { seconds: number } } };
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    privileged?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type: string };
  };
  ports?: { name?: string; containerPort: number }[];
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  terminationGracePeriodSeconds?: number;
  topologySpreadConstraints?: { topologyKey: string; labelSelector?: LabelSelector }[];
  hostNetwork?: boolean;
  hostPID?: boolean;
}

export interface PodTemplate {
  metadata?: { labels?: Record<string, string> };
  spec: PodSpec;
}

/** The pod template of a workload (Deployment, StatefulSet, Job), or undefined. */
export function podTemplate(o: K8sObject): PodTemplate | undefined {
  if (!['Deployment', 'StatefulSet', 'Job', 'DaemonSet'].includes(o.kind)) return undefined;
  return (o.spec as { template: PodTemplate }).template;
}

/** `cmd --version`-style probe: is a binary on the PATH? */
export function hasBinary(cmd: string, args: string[] = ['--version']): boolean {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

/**
 * A check that needs a tool this machine may lack: skipped with a warning on a developer's machine,
 * a failure in CI (`CI` set), where .ci/run installs every tool, so a missing one is never a pass.
 */
export function toolMissing(tool: string, debianPackage: string): boolean {
  const message = `${tool} is not installed (Debian package ${debianPackage})`;
  if (process.env.CI) throw new Error(`${message}; .ci/run installs it`);
  console.warn(`skipped: ${message}`);
  return true;
}

/** Where nginx.conf (compose and k8s) includes the web client's CSP from; the web image renders it there at start. */
export const WEB_CSP_INCLUDE = '/tmp/umbra-web-csp.conf';

/** deploy/nginx/umbra-web-csp.conf.template as the nginx image's entrypoint renders it: envsubst of the WEB_* variables that are set. */
export function renderWebCsp(env: Record<string, string | undefined>): string {
  return readRepoFile('deploy', 'nginx', 'umbra-web-csp.conf.template').replace(/\$\{(WEB_[A-Z0-9_]*)\}|\$(WEB_[A-Z0-9_]*)/g, (all, braced?: string, bare?: string) => env[(braced ?? bare)!] ?? all);
}

/** The Content-Security-Policy a rendered include sends. */
export function cspOf(rendered: string): string {
  return /^add_header Content-Security-Policy "([^"]+)" always;$/m.exec(rendered)?.[1] ?? '';
}

/** `conf` reading its CSP from `dir`, where the template is rendered with WEB_CONNECT_SRC = `connectSrc` (as the container does in /tmp). */
export function withRenderedCsp(conf: string, dir: string, connectSrc: string): string {
  const include = path.join(dir, 'umbra-web-csp.conf');
  writeFileSync(include, renderWebCsp({ WEB_CONNECT_SRC: connectSrc }));
  if (!conf.includes(`include ${WEB_CSP_INCLUDE};`)) throw new Error(`the nginx.conf does not include ${WEB_CSP_INCLUDE}`);
  return conf.replace(`include ${WEB_CSP_INCLUDE};`, `include ${include};`);
}
