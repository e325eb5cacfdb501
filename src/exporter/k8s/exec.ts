// Runs SMI tools inside the GPU operator pod of this node through the Kubernetes `exec` API when they are
// not installed on the host (spec exporter.md §9.4). The exec stream is a WebSocket speaking the
// `v4.channel.k8s.io` protocol: each binary message starts with a channel byte (1 stdout, 2 stderr,
// 3 the final v1.Status).

import { WebSocket } from 'undici';
import { CommandError, type CommandRunner } from '../gpu/command.js';
import type { GpuVendor } from '../gpu/types.js';
import type { PodInfo, PodLister } from './pods.js';

/** Where the SMI tools live in each vendor's operator deployment. */
export const SMI_POD: Readonly<Record<GpuVendor, { labelSelector: string; container: string }>> = {
  nvidia: { labelSelector: 'app=gpu-feature-discovery', container: 'gpu-feature-discovery' },
  amd: { labelSelector: 'app.kubernetes.io/name=metrics-exporter', container: 'metrics-exporter-container' },
};

const MAX_OUTPUT = 64 * 1024 * 1024;

interface ExecStatus {
  status?: string;
  message?: string;
}

/** Executes `command` in a container and resolves with its stdout; rejects with a CommandError. */
export function execInPod(
  lister: PodLister,
  pod: Pick<PodInfo, 'namespace' | 'name'>,
  container: string,
  command: readonly string[],
  timeoutMs: number,
): Promise<string> {
  const { server, http } = lister.connection;
  const url = new URL(
    `${server}/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}/exec`,
  );
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  for (const c of command) url.searchParams.append('command', c);
  url.searchParams.set('container', container);
  url.searchParams.set('stdout', 'true');
  url.searchParams.set('stderr', 'true');
  const what = `'${command.join(' ')}' in pod ${pod.namespace}/${pod.name}`;
  return new Promise((resolve, reject) => {
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    let status = '';
    let size = 0;
    let settled = false;
    const finish = (e?: CommandError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close();
      if (e) reject(e);
      else resolve(Buffer.concat(out).toString('utf8'));
    };
    const ws = new WebSocket(url, {
      protocols: ['v4.channel.k8s.io'],
      dispatcher: http.dispatcher,
      headers: http.headers(),
    });
    ws.binaryType = 'arraybuffer';
    const timer = setTimeout(
      () => finish(new CommandError(`exec of ${what} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    ws.addEventListener('message', (ev) => {
      const data = new Uint8Array(ev.data as ArrayBuffer);
      if (data.length === 0) return;
      const chunk = data.subarray(1);
      size += chunk.length;
      if (size > MAX_OUTPUT)
        return finish(new CommandError(`exec of ${what} printed more than ${MAX_OUTPUT} bytes`));
      if (data[0] === 1) out.push(chunk);
      else if (data[0] === 2) err.push(chunk);
      else if (data[0] === 3) status += Buffer.from(chunk).toString('utf8');
    });
    ws.addEventListener('error', (ev) => {
      const cause =
        (ev as { error?: Error; message?: string }).error?.message ?? (ev as { message?: string }).message;
      finish(new CommandError(`exec of ${what} failed: ${cause || 'WebSocket error'}`));
    });
    ws.addEventListener('close', () => {
      if (status === '') return finish(); // no status: the stream ended normally
      let s: ExecStatus;
      try {
        s = JSON.parse(status) as ExecStatus;
      } catch {
        return finish(
          new CommandError(`exec of ${what} returned an invalid status: ${status.slice(0, 200)}`),
        );
      }
      if (s.status === 'Success') return finish();
      const why = s.message || Buffer.concat(err).toString('utf8').trim().split('\n')[0] || 'unknown error';
      finish(new CommandError(`exec of ${what} failed: ${why}`));
    });
  });
}

/**
 * A CommandRunner executing the SMI tool (by its bare name) in the vendor's operator pod on `nodeName`.
 * The pod is looked up on every run: operator pods are replaced on upgrades.
 */
export function podExecRunner(
  lister: PodLister,
  vendor: GpuVendor,
  nodeName: string | undefined,
): CommandRunner {
  const { labelSelector, container } = SMI_POD[vendor];
  return async (file, args, timeoutMs) => {
    if (!nodeName)
      throw new CommandError(`NODE_NAME must be set to run ${file} in the ${labelSelector} pod of this node`);
    let pods: PodInfo[];
    try {
      pods = await lister.find(labelSelector, nodeName, AbortSignal.timeout(timeoutMs));
    } catch (e) {
      throw new CommandError(
        `cannot find the ${labelSelector} pod of node ${nodeName}: ${(e as Error).message}`,
      );
    }
    const pod = pods.find((p) => p.phase === 'Running');
    if (!pod) throw new CommandError(`no running pod with label ${labelSelector} on node ${nodeName}`);
    return execInPod(lister, pod, container, [file, ...args], timeoutMs);
  };
}
