import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { encode } from '../../../../src/common/exposition.js';
import { parseFlags } from '../../../../src/common/flags.js';
import { createLogger } from '../../../../src/common/logger.js';
import { FamilySet } from '../../../../src/exporter/collector.js';
import { k8s } from '../../../../src/exporter/collectors/k8s.js';
import type { GpuDevice } from '../../../../src/exporter/gpu/index.js';
import { PodGpuMapper, podResourcesSocket } from '../../../../src/exporter/k8s/index.js';
import { allFlags } from '../../../../src/exporter/main.js';
import { K8sCollector } from '../../../../src/exporter/units/k8s.js';

const FIX = resolve(import.meta.dirname, '../../../fixtures/cgroup');
// every flag of the binary: a sub-collector added later reads its own flags in these collectors too
const FLAGS = allFlags();
const POD_A = '0f1e2d3c-aaaa-4bbb-8ccc-123456789abc';
const POD_G = '7d6c5b4a-1111-4222-8333-444455556666';
const POD_B = '99aa88bb-77cc-466d-955e-44ff33ee22dd';
const STATIC = '6b5c0e8d3e7f4a2b9c1d0e4f5a6b7c8d';

const tmp = mkdtempSync(join(tmpdir(), 'k8s-collector-'));
const KUBECONFIG = join(tmp, 'kubeconfig');
writeFileSync(
  KUBECONFIG,
  `apiVersion: v1
kind: Config
current-context: node
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
contexts:
- name: node
  context: {cluster: local, user: exporter}
users:
- name: exporter
  user: {token: abc}
`,
);
after(() => rmSync(tmp, { recursive: true, force: true }));

function ctx(tree: string, version: 'v1' | 'v2', args: string[] = [], warnings: string[] = []) {
  const logger = createLogger({ level: 'silent' });
  logger.warn = ((msg: string) => {
    warnings.push(msg);
  }) as typeof logger.warn;
  const { flags } = parseFlags(FLAGS, [`--collector.cgroups.force-version=${version}`, ...args]);
  return {
    hostname: 'worker-1',
    procfs: join(FIX, 'proc'),
    sysfs: join(FIX, 'proc'), // no bus/pci/devices: no GPU
    cgroupfs: join(FIX, tree),
    flags,
    logger,
  };
}

async function scrape(c: K8sCollector): Promise<string> {
  const out = new FamilySet();
  await c.update(out, new AbortController().signal);
  return encode(out.families.values());
}

const samples = (text: string, needle: string) =>
  text.split('\n').filter((l) => !l.startsWith('#') && l.includes(needle));
const L = (uuid: string, extra = '') =>
  `{cgrouphostname="",${extra}hostname="worker-1",manager="k8s",uuid="${uuid}"}`;

describe('k8s collector', () => {
  it('cgroup v2, systemd driver: guaranteed/burstable/besteffort pods, CPUs from cpu.weight', async () => {
    const c = new K8sCollector(ctx('k8s-v2', 'v2', ['--collector.k8s.psi-metrics']));
    const text = await scrape(c);
    assert.deepEqual(samples(text, 'ceems_compute_unit_cpus'), [
      `ceems_compute_unit_cpus${L(POD_A)} 1.998`,
      `ceems_compute_unit_cpus${L(POD_G)} 3.995`,
      `ceems_compute_unit_cpus${L(POD_B)} 0.001`,
    ]);
    assert.deepEqual(samples(text, `uuid="${POD_A}"`), [
      `ceems_compute_unit_blkio_read_total_bytes${L(POD_A, 'device="sda",')} 4096`,
      `ceems_compute_unit_blkio_read_total_requests${L(POD_A, 'device="sda",')} 1`,
      `ceems_compute_unit_cpu_psi_seconds${L(POD_A)} 0.3`,
      `ceems_compute_unit_cpu_system_seconds_total${L(POD_A)} 2.5`,
      `ceems_compute_unit_cpu_user_seconds_total${L(POD_A)} 7.5`,
      `ceems_compute_unit_cpus${L(POD_A)} 1.998`,
      `ceems_compute_unit_memory_cache_bytes${L(POD_A)} 6e+07`,
      `ceems_compute_unit_memory_fail_count${L(POD_A)} 1`,
      `ceems_compute_unit_memory_psi_seconds${L(POD_A)} 0`,
      `ceems_compute_unit_memory_rss_bytes${L(POD_A)} 2e+08`,
      `ceems_compute_unit_memory_total_bytes${L(POD_A)} 5.36870912e+08`,
      `ceems_compute_unit_memory_used_bytes${L(POD_A)} 2.68435456e+08`,
      `ceems_compute_unit_memsw_fail_count${L(POD_A)} 0`,
      `ceems_compute_unit_memsw_total_bytes${L(POD_A)} 0`,
      `ceems_compute_unit_memsw_used_bytes${L(POD_A)} 0`,
    ]);
    assert.deepEqual(samples(text, 'ceems_compute_units'), [
      'ceems_compute_units{hostname="worker-1",manager="k8s"} 3',
    ]);
    // QoS-class slices are not pods [D-EXP-19]; containers are children with the processes
    const units = c.cgroups.discover();
    assert.equal(units.length, 3);
    assert.deepEqual(units.find((u) => u.id === POD_G)!.pids, [6602]);
    assert.equal(units.find((u) => u.id === POD_G)!.children.length, 2);
  });

  it('cgroup v1, cgroupfs driver: pod<uid> and static pods, CPUs from cpu.shares', async () => {
    const text = await scrape(new K8sCollector(ctx('k8s-v1', 'v1')));
    assert.deepEqual(samples(text, 'ceems_compute_unit_cpus'), [
      `ceems_compute_unit_cpus${L(POD_A)} 0.5`,
      `ceems_compute_unit_cpus${L(STATIC)} 0.099`,
    ]);
    assert.deepEqual(samples(text, 'blkio'), [
      `ceems_compute_unit_blkio_write_total_bytes${L(POD_A, 'device="sda",')} 16384`,
      `ceems_compute_unit_blkio_write_total_bytes${L(STATIC, 'device="sda",')} 16384`,
      `ceems_compute_unit_blkio_write_total_requests${L(POD_A, 'device="sda",')} 4`,
      `ceems_compute_unit_blkio_write_total_requests${L(STATIC, 'device="sda",')} 4`,
    ]);
    assert.deepEqual(samples(text, `memsw_total_bytes${L(STATIC)}`), [
      `ceems_compute_unit_memsw_total_bytes${L(STATIC)} 9.223372036854772e+18`,
    ]);
  });

  it('maps pods to GPUs from pod resources joined by namespace and name [D-EXP-5]', async () => {
    const device: GpuDevice = {
      vendor: 'nvidia',
      minor: 0,
      index: '0',
      name: 'NVIDIA H100 80GB HBM3',
      uuid: 'GPU-5f0e3c1a-8b7d-4e2f-9a6c-0d1b2c3e4f5a',
      busId: '0000:18:00.0',
      smCount: 132,
      partitioned: false,
      vgpuEnabled: false,
      instances: [],
      deviceIds: ['gpu-5f0e3c1a-8b7d-4e2f-9a6c-0d1b2c3e4f5a'],
      mdevUuids: [],
    };
    const pod = (namespace: string, name: string, uid: string) => ({
      namespace,
      name,
      uid,
      phase: 'Running',
    });
    const c = new K8sCollector(ctx('k8s-v2', 'v2'));
    let closed = 0;
    c.useGpus(
      new PodGpuMapper({
        gpus: { devices: () => [device] },
        pods: {
          list: async () => [
            pod('ml', 'trainer', POD_A),
            pod('other', 'trainer', POD_G),
            pod('ml', 'infer', POD_B),
          ],
        },
        podResources: {
          list: async () => [
            {
              namespace: 'ml',
              name: 'trainer',
              containers: [
                {
                  name: 'main',
                  devices: [
                    {
                      resourceName: 'nvidia.com/gpu',
                      deviceIds: [
                        'GPU-5f0e3c1a-8b7d-4e2f-9a6c-0d1b2c3e4f5a::0',
                        'GPU-5f0e3c1a-8b7d-4e2f-9a6c-0d1b2c3e4f5a::1',
                        'GPU-5f0e3c1a-8b7d-4e2f-9a6c-0d1b2c3e4f5a::2',
                      ],
                    },
                  ],
                },
              ],
            },
            {
              namespace: 'ml',
              name: 'infer',
              containers: [
                {
                  name: 'main',
                  devices: [
                    {
                      resourceName: 'nvidia.com/gpu',
                      deviceIds: ['GPU-5f0e3c1a-8b7d-4e2f-9a6c-0d1b2c3e4f5a::3'],
                    },
                  ],
                },
              ],
            },
          ],
        },
        logger: createLogger({ level: 'silent' }),
      }),
      () => closed++,
    );
    const text = await scrape(c);
    const row = (uuid: string) =>
      `{cgrouphostname="",gpuiid="",gpuuuid="GPU-5f0e3c1a-8b7d-4e2f-9a6c-0d1b2c3e4f5a",hindex="worker-1/gpu-0",hostname="worker-1",index="0",manager="k8s",uuid="${uuid}"}`;
    assert.deepEqual(samples(text, 'gpu_'), [
      `ceems_compute_unit_gpu_index_flag${row(POD_A)} 0.75`,
      `ceems_compute_unit_gpu_index_flag${row(POD_B)} 0.25`,
      `ceems_compute_unit_gpu_sm_count${row(POD_A)} 132`,
      `ceems_compute_unit_gpu_sm_count${row(POD_B)} 132`,
    ]);
    assert.ok(
      text.includes(
        '# HELP ceems_compute_unit_gpu_index_flag A value > 0 indicates the pod using current GPU\n',
      ),
    );
    await c.stop();
    assert.equal(closed, 1);
  });

  it('warns when both cgroup drivers are present', () => {
    const warnings: string[] = [];
    new K8sCollector(ctx('k8s-v1/cpu,cpuacct', 'v2', [], warnings));
    assert.deepEqual(warnings, []);
    const both = mkdtempSync(join(tmpdir(), 'k8s-both-'));
    try {
      for (const d of ['kubepods', 'kubepods.slice', 'system.slice/kubepods-burstable.slice'])
        mkdirSync(join(both, d), { recursive: true });
      new K8sCollector({ ...ctx('k8s-v2', 'v2', [], warnings), cgroupfs: both });
      assert.equal(warnings.length, 2);
      assert.match(warnings[0]!, /both kubepods .* and kubepods\.slice/);
      assert.match(warnings[1]!, /kubepods cgroups found under system\.slice/);
    } finally {
      rmSync(both, { recursive: true, force: true });
    }
  });

  it('needs Kubernetes API access: a missing kubeconfig fails start-up naming the file', async () => {
    await assert.rejects(
      Promise.resolve().then(() =>
        k8s.create(ctx('k8s-v2', 'v2', [`--collector.k8s.kubeconfig.file=${join(tmp, 'missing')}`])),
      ),
      /cannot read kubeconfig file '.*missing': ENOENT/,
    );
    const c = await k8s.create(ctx('k8s-v2', 'v2', [`--collector.k8s.kubeconfig.file=${KUBECONFIG}`]));
    assert.equal(samples(await scrape(c as K8sCollector), 'ceems_compute_units').length, 1);
  });

  it('the pod-resources socket flag wins over its deprecated alias [D-EXP-4]', () => {
    const sock = (args: string[]) => podResourcesSocket(parseFlags(FLAGS, args).flags);
    assert.equal(sock([]), '/var/lib/kubelet/pod-resources/kubelet.sock');
    assert.equal(sock(['--collector.k8s.kubelet-socket-file=/old.sock']), '/old.sock');
    assert.equal(
      sock([
        '--collector.k8s.kubelet-socket-file=/old.sock',
        '--collector.k8s.kubelet-podresources-socket.file=/new.sock',
      ]),
      '/new.sock',
    );
  });
});
