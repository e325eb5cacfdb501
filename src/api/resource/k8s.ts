// Kubernetes resource manager (spec api-server.md §11.3): pods of all namespaces as units; users and
// projects from a namespace→users file, RoleBindings and the pod owners seen so far, stored as flat lists
// (D-API-3).
//
// Pods: every fetch LISTs the live pods (the informer's resync) and adds the pods a background WATCH saw
// since the previous fetch, so a pod deleted between two collections still gets its final window.

import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import YAML from 'yaml';
import { z } from 'zod';
import { validate } from '../../common/config.js';
import { createHttpClient, type HttpClient } from '../../common/httpclient.js';
import {
  type KubeConfig,
  KubeConfigError,
  kubeGetJson,
  kubeHttpClient,
  loadKubeConfig,
} from '../../common/kubeconfig.js';
import type { Logger } from '../../common/logger.js';
import type { ClusterConfig } from '../config.js';
import type { Project, Unit, User } from '../models.js';
import { formatDatetimezone } from '../timefmt.js';
import {
  emptyUnit,
  formatElapsed,
  type ManagerContext,
  type ResourceManager,
  type UsersProjects,
} from './types.js';

export const k8sExtraConfigSchema = z.strictObject({
  kubeconfig_file: z.string().default(''),
  ns_users_list_file: z.string().default('/var/run/ceems/users.yaml'),
  gpu_resource_names: z.array(z.string()).default(['nvidia.com/gpu', 'amd.com/gpu']),
  username_annotations: z.array(z.string()).default(['ceems.io/created-by']),
  project_annotations: z.array(z.string()).default([]),
  users_db_file: z.string().optional(),
});
export type K8sExtraConfig = z.infer<typeof k8sExtraConfigSchema>;

export interface K8sPod {
  metadata?: {
    uid?: string;
    name?: string;
    namespace?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  spec?: {
    resources?: { limits?: Record<string, string> };
    containers?: Array<{ resources?: { limits?: Record<string, string> } }>;
  };
  status?: {
    phase?: string;
    qosClass?: string;
    conditions?: Array<{ type?: string; status?: string; reason?: string; lastTransitionTime?: string }>;
  };
}

const SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** Kubernetes resource quantity (`500m`, `2`, `128Mi`, `1e3`) → number; NaN when malformed. */
export function parseQuantity(q: string | number | undefined): number {
  if (q === undefined) return Number.NaN;
  if (typeof q === 'number') return q;
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$/.exec(q.trim());
  return m ? Number(m[1]) * SUFFIX[m[2]!]! : Number.NaN;
}

const time = (v: string | undefined) => {
  const ms = v ? Date.parse(v) : Number.NaN;
  return Number.isNaN(ms) ? 0 : ms;
};

/**
 * Whether a creator annotation names no person: a service account (the original's rule: the value contains
 * `serviceaccount`) or another Kubernetes identity, `system:node:<n>`, `system:kube-controller-manager`…
 * [D-API-21], as the admission controller treats them (cli.md §4, D-CLI-5).
 */
function isServiceIdentity(owner: string): boolean {
  return owner.includes('serviceaccount') || owner.startsWith('system:');
}

/** Unit of one pod for the window `[start, end]` (ms). */
export function podToUnit(
  pod: K8sPod,
  cfg: Pick<K8sExtraConfig, 'gpu_resource_names' | 'username_annotations' | 'project_annotations'>,
  opts: { clusterId: string; timeZone: string; start: number; end: number },
): Unit {
  const md = pod.metadata ?? {};
  const u = emptyUnit(opts.clusterId, 'k8s', md.uid ?? '');
  const annotations = md.annotations ?? {};
  const project = cfg.project_annotations.map((a) => annotations[a]).find((v) => v) ?? md.namespace ?? '';
  const owner = cfg.username_annotations.map((a) => annotations[a]).find((v) => v);
  u.name = md.name ?? '';
  u.project = project;
  u.username = owner && !isServiceIdentity(owner) ? owner : `${project}:unknown`;

  const phase = pod.status?.phase ?? 'Unknown';
  const ready = pod.status?.conditions?.find((c) => c.type === 'PodReadyToStartContainers');
  const created = time(md.creationTimestamp);
  let started = 0;
  let ended = 0;
  let active = 0;
  let elapsed = 'N/A';
  const secs = (ms: number) => Math.max(0, Math.floor(ms / 1000));
  if (phase === 'Running') {
    started = time(ready?.lastTransitionTime);
    u.state = ready?.status === 'True' ? 'Running/Ready' : `Running/${ready?.reason ?? ''}`;
    active = started > 0 ? secs(opts.end - Math.max(opts.start, started)) : 0; // D-API-7
    elapsed = created > 0 ? formatElapsed(secs(opts.end - created)) : 'N/A';
  } else if (phase === 'Succeeded' || phase === 'Failed') {
    started = time(ready?.lastTransitionTime);
    ended = time(md.deletionTimestamp);
    u.state = phase;
    active = ended > opts.start && ended < opts.end ? secs(ended - opts.start) : 0;
    elapsed = ended > 0 && created > 0 ? formatElapsed(secs(ended - created)) : 'N/A';
  } else {
    u.state = phase;
  }
  const when = (ms: number): [string, number] =>
    ms > 0 ? [formatDatetimezone(ms, opts.timeZone), ms] : ['N/A', 0];
  [u.created_at, u.created_at_ts] = when(created);
  [u.started_at, u.started_at_ts] = when(started);
  [u.ended_at, u.ended_at_ts] = when(ended);
  u.elapsed = elapsed;

  const containers = pod.spec?.containers ?? [];
  const limit = (name: string) => {
    const podLevel = parseQuantity(pod.spec?.resources?.limits?.[name]);
    if (Number.isFinite(podLevel)) return podLevel;
    return containers.reduce((s, c) => {
      const v = parseQuantity(c.resources?.limits?.[name]);
      return Number.isFinite(v) ? s + v : s;
    }, 0);
  };
  const vcpus = Math.max(limit('cpu'), 0.001);
  const mem = Math.max(Math.trunc(limit('memory')), 1);
  const gpusByName: Record<string, number> = {};
  let gpus = 0;
  for (const name of cfg.gpu_resource_names) {
    const n = containers.reduce((s, c) => {
      const v = parseQuantity(c.resources?.limits?.[name]);
      return Number.isFinite(v) ? s + v : s;
    }, 0);
    if (n > 0) gpusByName[name] = n;
    gpus += n;
  }
  u.allocation = { vcpus, mem, ...gpusByName };
  u.total_time_seconds = {
    walltime: active,
    alloc_cputime: vcpus * active,
    alloc_cpumemtime: mem * active,
    alloc_gputime: gpus * active,
    alloc_gpumemtime: gpus * active,
  };
  u.tags = {
    qos: pod.status?.qosClass ?? '',
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    ...(md.labels && Object.keys(md.labels).length > 0 ? { labels: md.labels } : {}),
  };
  return u;
}

interface RoleBindingList {
  items?: Array<{ metadata?: { namespace?: string }; subjects?: Array<{ kind?: string; name?: string }> }>;
}

export class K8sManager implements ResourceManager {
  readonly manager = 'k8s';
  readonly clusterId: string;
  private readonly cfg: K8sExtraConfig;
  private readonly kube: KubeConfig;
  private readonly client: HttpClient;
  private readonly watchClient: HttpClient;
  private readonly logger: Logger;
  private readonly tz: string;
  /** Pods seen by the watch since the last fetch, by uid. */
  private touched = new Map<string, K8sPod>();
  /** Pod owner ↔ project pairs seen during the process lifetime. */
  private readonly owners = new Map<string, Set<string>>();
  private readonly stopWatch = new AbortController();
  private watching: Promise<void> | undefined;

  private constructor(cluster: ClusterConfig, ctx: ManagerContext) {
    this.clusterId = cluster.id;
    this.cfg = validate(
      k8sExtraConfigSchema,
      cluster.extra_config ?? {},
      `cluster '${cluster.id}' extra_config`,
    );
    try {
      this.kube = loadKubeConfig(this.cfg.kubeconfig_file);
    } catch (e) {
      if (e instanceof KubeConfigError && this.cfg.kubeconfig_file === '')
        throw new KubeConfigError(
          `cluster '${cluster.id}': extra_config.kubeconfig_file is not set and the server does not run in a Kubernetes cluster (${e.message})`,
        );
      throw e;
    }
    this.client = kubeHttpClient(this.kube, 60_000);
    this.watchClient = createHttpClient(this.kube.client);
    this.logger = ctx.logger;
    this.tz = ctx.timeZone;
  }

  static async create(cluster: ClusterConfig, ctx: ManagerContext): Promise<K8sManager> {
    const m = new K8sManager(cluster, ctx);
    const rv = await m.listPods().then(
      (l) => l.resourceVersion,
      (e) => {
        ctx.logger.error({ cluster_id: cluster.id, err: (e as Error).message }, 'Cannot list pods');
        return undefined;
      },
    );
    m.watching = m.watchLoop(rv);
    return m;
  }

  private getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
    return kubeGetJson<T>(this.client, this.kube.server, path, { timeoutMs: 60_000, signal });
  }

  private async listPods(signal?: AbortSignal): Promise<{ items: K8sPod[]; resourceVersion?: string }> {
    const list = await this.getJson<{ items?: K8sPod[]; metadata?: { resourceVersion?: string } }>(
      '/api/v1/pods',
      signal,
    );
    if (!Array.isArray(list.items)) throw new Error('Kubernetes API /api/v1/pods returned no PodList items');
    return { items: list.items, resourceVersion: list.metadata?.resourceVersion };
  }

  /** Streams pod events into `touched`; on any end or error, re-lists and watches again after 1 s. */
  private async watchLoop(initialVersion: string | undefined): Promise<void> {
    let version = initialVersion;
    const signal = this.stopWatch.signal;
    while (!signal.aborted) {
      try {
        if (version === undefined) version = (await this.listPods(signal)).resourceVersion;
        const params = new URLSearchParams({
          watch: '1',
          allowWatchBookmarks: 'true',
          timeoutSeconds: '240',
        });
        if (version) params.set('resourceVersion', version);
        const res = await request(`${this.kube.server}/api/v1/pods?${params}`, {
          headers: { ...this.watchClient.headers(), accept: 'application/json' },
          dispatcher: this.watchClient.dispatcher,
          signal,
        });
        if (res.statusCode !== 200) {
          await res.body.text();
          throw new Error(`watch of /api/v1/pods returned HTTP ${res.statusCode}`);
        }
        let buffered = '';
        for await (const chunk of res.body) {
          buffered += (chunk as Buffer).toString('utf8');
          let nl = buffered.indexOf('\n');
          while (nl >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            nl = buffered.indexOf('\n');
            if (line === '') continue;
            const ev = JSON.parse(line) as { type?: string; object?: K8sPod & { code?: number } };
            if (ev.type === 'ERROR') {
              // 410 Gone: our version is too old; start over from a fresh LIST.
              version = undefined;
              throw new Error(`watch error ${ev.object?.code ?? ''}`);
            }
            const rv = (ev.object?.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
            if (rv) version = rv;
            const uid = ev.object?.metadata?.uid;
            if (uid && (ev.type === 'ADDED' || ev.type === 'MODIFIED' || ev.type === 'DELETED'))
              this.touched.set(uid, ev.object!);
          }
        }
      } catch (e) {
        if (signal.aborted) return;
        this.logger.warn(
          { cluster_id: this.clusterId, err: (e as Error).message },
          'Kubernetes pod watch interrupted',
        );
        version = undefined;
      }
      await sleep(1000, undefined, { signal }).catch(() => {});
    }
  }

  async fetchUnits(start: number, end: number, signal?: AbortSignal): Promise<Unit[]> {
    const { items } = await this.listPods(signal);
    const pods = this.touched;
    this.touched = new Map();
    for (const p of items) if (p.metadata?.uid) pods.set(p.metadata.uid, p);
    const units: Unit[] = [];
    for (const pod of pods.values()) {
      const u = podToUnit(pod, this.cfg, { clusterId: this.clusterId, timeZone: this.tz, start, end });
      units.push(u);
      if (!this.owners.has(u.project!)) this.owners.set(u.project!, new Set());
      this.owners.get(u.project!)!.add(u.username!);
    }
    return units;
  }

  /** Namespace → users from `ns_users_list_file` (`users: {<ns>: [<user>…]}`); missing file = none. */
  private readUsersFile(): Record<string, string[]> {
    let text: string;
    try {
      text = readFileSync(this.cfg.ns_users_list_file, 'utf8');
    } catch {
      return {};
    }
    try {
      const users = YAML.parse(text)?.users ?? {};
      const out: Record<string, string[]> = {};
      for (const [ns, list] of Object.entries(users as Record<string, unknown>))
        if (Array.isArray(list)) out[ns] = list.map(String);
      return out;
    } catch (e) {
      this.logger.warn(
        { cluster_id: this.clusterId, file: this.cfg.ns_users_list_file, err: (e as Error).message },
        'Cannot parse the namespace users file',
      );
      return {};
    }
  }

  async fetchUsersProjects(_now: number, signal?: AbortSignal): Promise<UsersProjects> {
    const members = new Map<string, Set<string>>();
    const add = (ns: string, user: string) => {
      if (!ns || !user) return;
      if (!members.has(ns)) members.set(ns, new Set());
      members.get(ns)!.add(user);
    };
    for (const [ns, users] of Object.entries(this.readUsersFile())) for (const u of users) add(ns, u);
    const rbs = await this.getJson<RoleBindingList>(
      '/apis/rbac.authorization.k8s.io/v1/rolebindings',
      signal,
    );
    for (const rb of rbs.items ?? [])
      for (const s of rb.subjects ?? [])
        if (s.kind === 'User') add(rb.metadata?.namespace ?? '', s.name ?? '');
    for (const [ns, users] of this.owners) for (const u of users) add(ns, u);
    const projects: Project[] = [...members.keys()].sort().map((name) => ({
      uid: '',
      cluster_id: this.clusterId,
      resource_manager: 'k8s',
      name,
      users: [...members.get(name)!].sort(),
      tags: [],
    }));
    const byUser = new Map<string, Set<string>>();
    for (const [ns, users] of members)
      for (const u of users) {
        if (!byUser.has(u)) byUser.set(u, new Set());
        byUser.get(u)!.add(ns);
      }
    const users: User[] = [...byUser.keys()].sort().map((name) => ({
      uid: '',
      cluster_id: this.clusterId,
      resource_manager: 'k8s',
      name,
      projects: [...byUser.get(name)!].sort(),
      tags: [],
    }));
    return { users, projects };
  }

  async close(): Promise<void> {
    this.stopWatch.abort();
    await this.watching;
    await Promise.all([this.client.close(), this.watchClient.close()]);
  }
}
