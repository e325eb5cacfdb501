// Lists the pods of this node from the Kubernetes API (spec exporter.md §9.9).

import type { HttpClient } from '../../common/httpclient.js';
import { type KubeConfig, kubeGetJson, kubeHttpClient } from '../../common/kubeconfig.js';

export interface PodInfo {
  namespace: string;
  name: string;
  uid: string;
  /** `status.phase` (`Running`, `Pending`, …); `""` when absent. */
  phase: string;
}

interface PodList {
  kind?: string;
  items?: { metadata?: { namespace?: string; name?: string; uid?: string }; status?: { phase?: string } }[];
}

export class PodLister {
  private readonly http: HttpClient;

  constructor(
    private readonly cfg: KubeConfig,
    private readonly timeoutMs = 10_000,
  ) {
    this.http = kubeHttpClient(cfg, timeoutMs);
  }

  /** `GET /api/v1/pods` of all namespaces, restricted to `nodeName` when given. */
  list(nodeName: string | undefined, signal?: AbortSignal): Promise<PodInfo[]> {
    return this.get(nodeName, undefined, signal);
  }

  /** Pods matching a label selector (e.g. `app=gpu-feature-discovery`), on `nodeName` when given. */
  find(labelSelector: string, nodeName: string | undefined, signal?: AbortSignal): Promise<PodInfo[]> {
    return this.get(nodeName, labelSelector, signal);
  }

  /** Base URL and HTTP client, shared with the exec client. */
  get connection(): { server: string; http: HttpClient } {
    return { server: this.cfg.server, http: this.http };
  }

  private async get(
    nodeName: string | undefined,
    labelSelector: string | undefined,
    signal?: AbortSignal,
  ): Promise<PodInfo[]> {
    const query = new URLSearchParams();
    if (labelSelector) query.set('labelSelector', labelSelector);
    if (nodeName) query.set('fieldSelector', `spec.nodeName=${nodeName}`);
    const path = `/api/v1/pods${query.size > 0 ? `?${query}` : ''}`;
    const list = await kubeGetJson<PodList>(this.http, this.cfg.server, path, {
      timeoutMs: this.timeoutMs,
      maxBytes: 256 * 1024 * 1024,
      signal,
    });
    if (!Array.isArray(list.items)) throw new Error('Kubernetes API /api/v1/pods returned no PodList items');
    return list.items.flatMap((p) => {
      const m = p.metadata;
      return m?.name && m.namespace !== undefined && m.uid
        ? [{ namespace: m.namespace, name: m.name, uid: m.uid, phase: p.status?.phase ?? '' }]
        : [];
    });
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
