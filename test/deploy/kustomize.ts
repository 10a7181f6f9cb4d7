import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parse } from 'yaml';

/**
 * A small kustomize for the subset k8s/ uses, so the deploy tests render the overlays without a
 * kustomize binary: `resources` (files and directories), `namespace`, `labels` (metadata only),
 * `images`, and `patches` (strategic merge for maps and name-keyed lists; JSON 6902 add, replace,
 * remove). Anything else in a kustomization.yaml is an error, which keeps k8s/ inside this subset.
 * When `kubectl` is on the PATH the tests also compare this rendering with `kubectl kustomize`.
 */

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface PatchTarget {
  kind?: string;
  name?: string;
  group?: string;
  version?: string;
}

interface Kustomization {
  apiVersion?: string;
  kind?: string;
  resources?: string[];
  namespace?: string;
  labels?: { pairs: Record<string, string>; includeSelectors?: boolean; includeTemplates?: boolean }[];
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[];
  patches?: { path?: string; patch?: string; target?: PatchTarget }[];
}

const SUPPORTED = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'labels', 'images', 'patches']);
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass', 'IngressClass', 'PriorityClass', 'CustomResourceDefinition']);

export const objectId = (o: K8sObject): string => `${o.kind}/${o.metadata.namespace ?? '-'}/${o.metadata.name}`;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every YAML document of a file that is not empty. */
export function readYamlDocuments(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { merge: true });
  return docs
    .map((d) => {
      if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      return d.toJS({ maxAliasCount: 100 }) as unknown;
    })
    .filter((d) => d !== null && d !== undefined);
}

function asK8sObject(doc: unknown, file: string): K8sObject {
  if (!isObject(doc) || typeof doc.apiVersion !== 'string' || typeof doc.kind !== 'string' || !isObject(doc.metadata) || typeof doc.metadata.name !== 'string') {
    throw new Error(`${file}: every document needs apiVersion, kind and metadata.name`);
  }
  return doc as unknown as K8sObject;
}

/** Strategic merge for the cases k8s/ uses: maps merge deeply (null deletes), lists of named maps merge by name, other lists are replaced. */
export function strategicMerge(base: Json, patch: Json): Json {
  if (isObject(patch) && '$patch' in patch) throw new Error('kustomize subset: $patch directives are not supported');
  if (isObject(base) && isObject(patch)) {
    const out: JsonObject = { ...base };
    for (const [key, value] of Object.entries(patch)) {
      if (key.startsWith('$')) throw new Error(`kustomize subset: directive ${key} is not supported`);
      if (value === null) delete out[key];
      else out[key] = key in out ? strategicMerge(out[key]!, value) : value;
    }
    return out;
  }
  const named = (l: Json[]) => l.length > 0 && l.every((i) => isObject(i) && typeof i.name === 'string');
  if (Array.isArray(base) && Array.isArray(patch) && named(base) && named(patch)) {
    const out = base.map((item) => {
      const p = patch.find((q) => (q as JsonObject).name === (item as JsonObject).name);
      return p ? strategicMerge(item, p) : item;
    });
    for (const p of patch) if (!base.some((item) => (item as JsonObject).name === (p as JsonObject).name)) out.push(p);
    return out;
  }
  return patch;
}

function decodePointer(pointer: string): string[] {
  if (!pointer.startsWith('/')) throw new Error(`JSON pointer must start with /: ${pointer}`);
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** RFC 6902 add, replace and remove. */
export function jsonPatch(doc: Json, ops: { op: string; path: string; value?: Json }[]): Json {
  const root = structuredClone(doc);
  for (const op of ops) {
    const parts = decodePointer(op.path);
    const last = parts.pop()!;
    let parent: Json = root;
    for (const p of parts) {
      const next: Json | undefined = Array.isArray(parent) ? parent[Number(p)] : isObject(parent) ? parent[p] : undefined;
      if (next === undefined) throw new Error(`json patch: ${op.path} does not exist`);
      parent = next;
    }
    if (op.op !== 'add' && op.op !== 'replace' && op.op !== 'remove') throw new Error(`kustomize subset: json patch op ${op.op} is not supported`);
    if (Array.isArray(parent)) {
      const index = last === '-' ? parent.length : Number(last);
      if (!Number.isInteger(index) || index < 0 || index > parent.length) throw new Error(`json patch: bad index in ${op.path}`);
      if (op.op === 'add') parent.splice(index, 0, op.value ?? null);
      else if (index >= parent.length) throw new Error(`json patch: ${op.path} does not exist`);
      else if (op.op === 'replace') parent[index] = op.value ?? null;
      else parent.splice(index, 1);
    } else if (isObject(parent)) {
      if (op.op !== 'add' && !(last in parent)) throw new Error(`json patch: ${op.path} does not exist`);
      if (op.op === 'remove') delete parent[last];
      else parent[last] = op.value ?? null;
    } else {
      throw new Error(`json patch: parent of ${op.path} is not a container`);
    }
  }
  return root;
}

function matches(o: K8sObject, t: PatchTarget): boolean {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  return (t.kind === undefined || t.kind === o.kind)
    && (t.name === undefined || t.name === o.metadata.name)
    && (t.group === undefined || t.group === group)
    && (t.version === undefined || t.version === version);
}

function podSpecs(o: JsonObject): JsonObject[] {
  const spec = o.spec;
  if (!isObject(spec)) return [];
  if (o.kind === 'Pod') return [spec];
  const template = isObject(spec.jobTemplate) && isObject(spec.jobTemplate.spec) ? spec.jobTemplate.spec.template : spec.template;
  return isObject(template) && isObject(template.spec) ? [template.spec] : [];
}

function setImages(o: K8sObject, images: NonNullable<Kustomization['images']>): void {
  for (const spec of podSpecs(o as unknown as JsonObject)) {
    for (const list of [spec.containers, spec.initContainers]) {
      if (!Array.isArray(list)) continue;
      for (const c of list) {
        if (!isObject(c) || typeof c.image !== 'string') continue;
        const image = c.image;
        const rule = images.find((r) => image === r.name || image.startsWith(`${r.name}:`) || image.startsWith(`${r.name}@`));
        if (!rule) continue;
        const [, tag] = image.slice(rule.name.length).match(/^:([^@]+)/) ?? [];
        const name = rule.newName ?? rule.name;
        c.image = rule.digest ? `${name}@${rule.digest}` : rule.newTag ? `${name}:${rule.newTag}` : tag ? `${name}:${tag}` : name;
      }
    }
  }
}

/** Renders a kustomization directory like `kubectl kustomize DIR` (within the subset above). */
export function renderKustomization(dir: string): K8sObject[] {
  const file = path.join(dir, 'kustomization.yaml');
  if (!existsSync(file)) throw new Error(`${dir}: no kustomization.yaml`);
  const k = parse(readFileSync(file, 'utf8')) as Kustomization;
  for (const key of Object.keys(k)) if (!SUPPORTED.has(key)) throw new Error(`${file}: "${key}" is outside the kustomize subset test/deploy/kustomize.ts renders`);

  let objects: K8sObject[] = [];
  for (const entry of k.resources ?? []) {
    const p = path.resolve(dir, entry);
    if (!existsSync(p)) throw new Error(`${file}: resource ${entry} does not exist`);
    if (statSync(p).isDirectory()) objects.push(...renderKustomization(p));
    else objects.push(...readYamlDocuments(p).map((d) => asK8sObject(d, p)));
  }

  for (const patch of k.patches ?? []) {
    const where = patch.path ? path.resolve(dir, patch.path) : `${file} (inline patch)`;
    const docs = patch.path ? readYamlDocuments(where) : [parse(patch.patch ?? '') as unknown];
    for (const doc of docs) {
      if (Array.isArray(doc)) {
        if (!patch.target) throw new Error(`${where}: a JSON 6902 patch needs a target`);
        const hits = objects.filter((o) => matches(o, patch.target!));
        if (hits.length === 0) throw new Error(`${where}: the target matches nothing`);
        objects = objects.map((o) => (hits.includes(o) ? (jsonPatch(o as unknown as Json, doc as { op: string; path: string }[]) as unknown as K8sObject) : o));
      } else {
        const p = asK8sObject(doc, where);
        const target: PatchTarget = patch.target ?? { kind: p.kind, name: p.metadata.name };
        const hits = objects.filter((o) => matches(o, target));
        if (hits.length === 0) throw new Error(`${where}: patch for ${p.kind}/${p.metadata.name} matches nothing`);
        const { apiVersion: _a, kind: _k, ...body } = p;
        const meta = { ...(body.metadata as JsonObject) };
        delete meta.name;
        const patchBody = { ...body, metadata: meta } as unknown as Json;
        objects = objects.map((o) => (hits.includes(o) ? (strategicMerge(o as unknown as Json, patchBody) as unknown as K8sObject) : o));
      }
    }
  }

  if (k.namespace) {
    for (const o of objects) {
      if (o.kind === 'Namespace') o.metadata.name = k.namespace;
      else if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
    }
  }
  for (const l of k.labels ?? []) {
    if (l.includeSelectors || l.includeTemplates) throw new Error(`${file}: labels with includeSelectors/includeTemplates are outside the subset`);
    for (const o of objects) o.metadata.labels = { ...(o.metadata.labels ?? {}), ...l.pairs };
  }
  if (k.images) for (const o of objects) setImages(o, k.images);

  const seen = new Set<string>();
  for (const o of objects) {
    const id = objectId(o);
    if (seen.has(id)) throw new Error(`${dir}: ${id} is defined twice`);
    seen.add(id);
  }
  return objects;
}
