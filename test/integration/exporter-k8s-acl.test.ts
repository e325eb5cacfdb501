// The real exporter started as root with the k8s collector on a (fake) GPU node drops to nobody and still
// reaches the root-only kubelet pod-resources socket through the ACLs it grants (spec exporter.md §6, §15);
// the ACLs are gone after a normal stop and after a SIGKILL. Needs root and the acl package; run
// `npm run build` first.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, type Started, startProgram } from '../helpers/process.js';
import { makePki, type TestPki } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';
import {
  type FakeApiServer,
  type FakeKubelet,
  startFakeApiServer,
  startFakeKubelet,
} from '../unit/exporter/k8s/fakes.js';

const TOKEN = 'acl-test-token';
const FIX = join(ROOT, 'test/fixtures');
const POD_TRAIN = '0f1e2d3c-aaaa-4bbb-8ccc-123456789abc'; // default/train-0: GPU-f4b0e6b2… in the kubelet fixture

let pki: TestPki;
let api: FakeApiServer;
let kubelet: FakeKubelet;
let tmp: string;
let kubeconfig: string;

before(async () => {
  assert.equal(process.getuid?.(), 0, 'this test starts the exporter as root');
  pki = makePki();
  api = await startFakeApiServer(pki, TOKEN);
  tmp = mkdtempSync(join(tmpdir(), 'ceems-k8s-acl-')); // 0700, like /var/lib/kubelet
  const sockDir = join(tmp, 'kubelet', 'pod-resources');
  mkdirSync(sockDir, { recursive: true, mode: 0o700 });
  kubelet = await startFakeKubelet(sockDir);
  kubeconfig = join(tmp, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
kind: Config
current-context: node
clusters:
- name: local
  cluster:
    server: ${api.url}
    certificate-authority-data: ${Buffer.from(pki.caPem).toString('base64')}
contexts:
- name: node
  context: {cluster: local, user: exporter}
users:
- name: exporter
  user: {token: ${TOKEN}}
`,
  );
});
after(async () => {
  await kubelet?.close();
  await api?.close();
  rmSync(tmp, { recursive: true, force: true });
  rmSync(pki.dir, { recursive: true, force: true });
});

/** The exporter once it has decided about its privileges (that happens after "Listening on"). */
async function startExporter(env: NodeJS.ProcessEnv = {}): Promise<Started> {
  const exp = await startProgram(
    'ceems_exporter',
    [
      '--web.listen-address=127.0.0.1:0',
      '--collector.disable-defaults',
      '--collector.k8s',
      `--collector.k8s.kubeconfig.file=${kubeconfig}`,
      `--collector.k8s.kubelet-podresources-socket.file=${kubelet.socket}`,
      '--security.run-as-user=nobody',
      `--path.cgroupfs=${join(FIX, 'cgroup/k8s-v2')}`,
      '--collector.cgroups.force-version=v2',
      `--path.procfs=${join(FIX, 'cgroup/proc')}`,
      `--path.sysfs=${join(FIX, 'gpu/sysfs/nvidia')}`,
      `--collector.gpu.nvidia-smi-path=${join(FIX, 'gpu/bin/nvidia-smi')}`,
    ],
    { env: { FAKE_SMI_FIXTURE: join(FIX, 'gpu/nvidia/a100x2-mig'), NODE_NAME: 'gpu-k8s01', ...env } },
  );
  try {
    await waitFor('the privilege decision', 5000, () => /msg="Dropped root privileges/.test(exp.stderr()));
  } catch (e) {
    await exp.stop('SIGKILL');
    throw new Error(`${(e as Error).message}:\n${exp.stderr()}`);
  }
  return exp;
}

const uid = (pid: number) => /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
const aclOf = (path: string) => execFileSync('getfacl', ['-p', path], { encoding: 'utf8' });
const nobodyEntries = () =>
  [kubelet.socket, join(tmp, 'kubelet', 'pod-resources'), join(tmp, 'kubelet'), tmp].filter((p) =>
    /^user:nobody:/m.test(aclOf(p)),
  );

async function assertServesGpuRowsAsNobody(exp: Started): Promise<void> {
  assert.equal(uid(exp.pid), '65534', exp.stderr());
  const text = await (await fetch(`${exp.url}/metrics`)).text();
  const rows = text
    .split('\n')
    .filter((l) => l.startsWith('ceems_compute_unit_gpu_index_flag{') && l.includes(POD_TRAIN));
  assert.ok(rows.length > 0, `no GPU rows for the pod:\n${text}\n${exp.stderr()}`);
  assert.ok(
    rows.every((r) => r.includes('gpuuuid="GPU-f4b0e6b2-8c7a-4d3e-9f1a-2b3c4d5e6f70"')),
    rows.join('\n'),
  );
  assert.doesNotMatch(exp.stderr(), /pod resources List .* failed/);
  assert.match(aclOf(kubelet.socket), /^user:nobody:rw-$/m);
  assert.match(aclOf(join(tmp, 'kubelet')), /^user:nobody:--x$/m);
}

describe('exporter as nobody reaches the kubelet socket through ACLs (k8s with GPUs)', () => {
  it('grants at start-up and removes the entries after a normal stop', async () => {
    const exp = await startExporter();
    try {
      await assertServesGpuRowsAsNobody(exp);
      const restorePid = Number(
        /msg="Run-as user has access to the kubelet pod-resources socket through ACLs" .*acl_entries_added=4 restore_pid=(\d+)/.exec(
          exp.stderr(),
        )?.[1],
      );
      // the restore process stays root and is out of the exporter's process group and session (no Ctrl-C)
      const stat = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      assert.equal(uid(restorePid), '0');
      assert.equal(stat(restorePid)[1], String(exp.pid), 'child of the exporter');
      assert.notEqual(stat(restorePid)[2], stat(exp.pid)[2]);
      assert.notEqual(stat(restorePid)[3], stat(exp.pid)[3]);
      assert.match(exp.stderr(), /msg="Dropped root privileges"/);
    } finally {
      assert.equal(await exp.stop(), 0);
    }
    // stop() waits for the restore, so no polling is needed here
    assert.deepEqual(nobodyEntries(), []);
    assert.doesNotMatch(aclOf(kubelet.socket), /^mask::/m, 'the socket has its minimal ACL again');
  });

  it('removes the entries after the exporter is killed with SIGKILL', async () => {
    const exp = await startExporter();
    try {
      await assertServesGpuRowsAsNobody(exp);
    } finally {
      await exp.stop('SIGKILL');
    }
    await waitFor('the ACL entries to be removed', 5000, () => nobodyEntries().length === 0);
  });

  it('runs as nobody keeping cap_dac_override instead, with a warning, when the acl tools are not installed', async () => {
    // PATH with only what the fake nvidia-smi script runs
    const bin = join(tmp, 'bin');
    mkdirSync(bin, { recursive: true });
    symlinkSync(execFileSync('sh', ['-c', 'command -v cat'], { encoding: 'utf8' }).trim(), join(bin, 'cat'));
    const exp = await startExporter({ PATH: bin });
    try {
      assert.equal(uid(exp.pid), '65534');
      assert.match(
        exp.stderr(),
        /level=WARN msg="Cannot grant the run-as user access to the kubelet pod-resources socket" .*err="getfacl not found; install the acl package"/,
      );
      assert.match(exp.stderr(), /msg="Dropped root privileges" .*capabilities=cap_dac_override /);
      const status = readFileSync(`/proc/${exp.pid}/status`, 'utf8');
      assert.match(status, /^CapEff:\s+0000000000000002$/m, 'cap_dac_override only');
      assert.deepEqual(nobodyEntries(), []);
      const text = await (await fetch(`${exp.url}/metrics`)).text();
      assert.match(text, new RegExp(`ceems_compute_unit_gpu_index_flag\\{.*uuid="${POD_TRAIN}"`));
    } finally {
      await exp.stop();
    }
  });
});
