/**
 * Kubernetes clients of the exporter (spec exporter.md §9.9): the API-server pod lister, the kubelet
 * Pod Resources gRPC client and the pod→GPU mapping cache.
 *
 * How the k8s collector uses this module:
 *
 * 1. Flags: list `K8S_FLAGS` in the k8s CollectorDefinition (`--collector.k8s.kubeconfig.file` with its
 *    hidden alias, `--collector.k8s.kubelet-podresources-socket.file`, hidden deprecated
 *    `--collector.k8s.kubelet-socket-file`; resolve the socket with `podResourcesSocket(flags)`, D-EXP-4).
 *    `--collector.k8s.psi-metrics` belongs to the collector itself.
 *
 * 2. At create time (Kubernetes API access is mandatory, §6):
 *      const kube = loadKubeConfig(ctx.flags.string('collector.k8s.kubeconfig.file'));   // throws KubeConfigError
 *      const lister = new PodLister(kube);
 *      const gpus = await createGpuInventory(ctx, 'k8s', {                                // from ../gpu/index.js
 *        remote: (vendor) => podExecRunner(lister, vendor, process.env.NODE_NAME) });      // §9.4: SMI in the operator pod
 *      const mapper = gpus && new PodGpuMapper({ gpus, pods: lister,
 *        podResources: new PodResourcesClient(podResourcesSocket(ctx.flags)),
 *        nodeName: process.env.NODE_NAME, logger: ctx.logger });
 *    `PodLister.close()` / `PodResourcesClient.close()` belong in the collector's stop().
 *    An open `PodResourcesClient` marks its socket as needed (`podResourcesSocketsInUse()`): when started as
 *    root, the exporter then grants the run-as user ACLs on the socket before dropping root (§6, §15).
 *
 * 3. Per scrape: `const byPod = await mapper.update(podUids, signal)` (pod UIDs discovered from cgroups)
 *    → Map<pod uid, GpuAssignment[]>; then `emitGpuRows(out, 'k8s', ctx.hostname, { uuid }, byPod.get(uid) ?? [])`.
 *    The mapping is recomputed only when the pod set changes or 15 min after the last refresh (D-EXP-6).
 */

export {
  inClusterConfig,
  type KubeConfig,
  KubeConfigError,
  kubeHttpClient,
  loadKubeConfig,
  loadKubeConfigFile,
  SERVICE_ACCOUNT_DIR,
} from '../../common/kubeconfig.js';
export { execInPod, podExecRunner, SMI_POD } from './exec.js';
export { DEFAULT_PODRESOURCES_SOCKET, K8S_FLAGS, podResourcesSocket } from './flags.js';
export { MAPPING_REFRESH_MS, PodGpuMapper, type PodGpuMapperOptions, podDeviceIds } from './mapping.js';
export {
  type ContainerDevices,
  type ContainerResources,
  type PodResources,
  PodResourcesClient,
  podResourcesDefinition,
  podResourcesSocketsInUse,
} from './podresources.js';
export { type PodInfo, PodLister } from './pods.js';
