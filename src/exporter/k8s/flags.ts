// Flags of the k8s collector that belong to the Kubernetes clients (spec exporter.md §2.2), and the kubelet
// sockets open clients use (here, not in podresources.ts, so that start-up can ask without loading gRPC).

import type { FlagSpec, ParsedFlags } from '../../common/flags.js';

export const DEFAULT_PODRESOURCES_SOCKET = '/var/lib/kubelet/pod-resources/kubelet.sock';

export const K8S_FLAGS: readonly FlagSpec[] = [
  {
    name: 'collector.k8s.kubeconfig.file',
    help: 'Path to KubeConfig file. Empty means in-cluster configuration.',
    type: 'string',
    default: '',
    aliases: ['collector.k8s.kube-config-file'],
  },
  {
    name: 'collector.k8s.kubelet-podresources-socket.file',
    help: 'Path to kubelet pod resources socket file.',
    type: 'string',
    default: DEFAULT_PODRESOURCES_SOCKET,
  },
  // Deprecated name kept as its own hidden flag so that it only applies when given (D-EXP-4).
  {
    name: 'collector.k8s.kubelet-socket-file',
    help: 'Deprecated: use --collector.k8s.kubelet-podresources-socket.file.',
    type: 'string',
    default: '',
    hidden: true,
  },
];

/** The new socket flag wins; the deprecated one is used only when given explicitly (D-EXP-4). */
export function podResourcesSocket(flags: ParsedFlags): string {
  if (
    !flags.isSet('collector.k8s.kubelet-podresources-socket.file') &&
    flags.isSet('collector.k8s.kubelet-socket-file')
  )
    return flags.string('collector.k8s.kubelet-socket-file');
  return flags.string('collector.k8s.kubelet-podresources-socket.file');
}

// Sockets some open client will connect to, with their client count: start-up reads this to know whether
// the run-as user needs access to the kubelet socket (only collectors with GPUs create a client, §6).
const openSockets = new Map<string, number>();

/** Absolute paths of the kubelet sockets that open clients use. */
export function podResourcesSocketsInUse(): ReadonlySet<string> {
  return new Set(openSockets.keys());
}

/** A client of the socket at `abs` opened. */
export function socketOpened(abs: string): void {
  openSockets.set(abs, (openSockets.get(abs) ?? 0) + 1);
}

/** A client of the socket at `abs` closed. */
export function socketClosed(abs: string): void {
  const n = (openSockets.get(abs) ?? 1) - 1;
  if (n > 0) openSockets.set(abs, n);
  else openSockets.delete(abs);
}
