// Lists the pods of this node from the Kubernetes API (spec exporter.md §9.9).

import { type HttpClient, httpFetch } from '../../common/httpclient.js';
import { type KubeConfig, kubeHttpClient } from './kubeconfig.js';

export interface PodInfo {
  namespace: string;
  name: string;
  uid: string;
}

interface PodList {
  kind?: string;
  items?: { metadata?: { namespace?: string; name?: string; uid?: string } }[];
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
  async list(nodeName: string | undefined, signal?: AbortSignal): Promise<PodInfo[]> {
    const url = new URL(`${this.cfg.server}/api/v1/pods`);
    if (nodeName) url.searchParams.set('fieldSelector', `spec.nodeName=${nodeName}`);
    const res = await httpFetch(this.http, url.toString(), {
      headers: { accept: 'application/json' },
      timeoutMs: this.timeoutMs,
      maxBytes: 256 * 1024 * 1024,
      signal,
    });
    if (res.status !== 200) {
      let msg = res.body.slice(0, 200);
      try {
        msg = (JSON.parse(res.body) as { message?: string }).message ?? msg;
      } catch {
        // not a Status object
      }
      throw new Error(`Kubernetes API ${url.pathname} returned HTTP ${res.status}: ${msg}`);
    }
    let list: PodList;
    try {
      list = JSON.parse(res.body) as PodList;
    } catch (e) {
      throw new Error(`Kubernetes API ${url.pathname} returned invalid JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(list.items))
      throw new Error(`Kubernetes API ${url.pathname} returned no PodList items`);
    return list.items.flatMap((p) => {
      const m = p.metadata;
      return m?.name && m.namespace !== undefined && m.uid
        ? [{ namespace: m.namespace, name: m.name, uid: m.uid }]
        : [];
    });
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
