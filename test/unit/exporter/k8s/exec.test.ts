import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, afterEach, before, describe, it } from 'node:test';
import { createGpuInventory } from '../../../../src/exporter/gpu/inventory.js';
import { execInPod, podExecRunner } from '../../../../src/exporter/k8s/exec.js';
import { PodLister } from '../../../../src/exporter/k8s/pods.js';
import { makePki, type TestPki } from '../../../helpers/tls.js';
import { fixture, readFixture } from '../gpu/fixtures.js';
import { gpuContext, recordingLogger } from '../gpu/helpers.js';
import { type FakeApiServer, startFakeApiServer } from './fakes.js';

const TOKEN = 'exec-token';
const GFD = { namespace: 'gpu-operator', name: 'gpu-feature-discovery-7xk2p' };
let pki: TestPki;
let api: FakeApiServer;
let lister: PodLister;
let badLister: PodLister;

before(async () => {
  pki = makePki();
  api = await startFakeApiServer(pki, TOKEN);
  lister = new PodLister({
    server: api.url,
    client: { bearer_token: TOKEN, tls_config: { ca_file: pki.caCert } },
  });
  badLister = new PodLister({
    server: api.url,
    client: { bearer_token: 'nope', tls_config: { ca_file: pki.caCert } },
  });
});
after(async () => {
  await lister.close();
  await badLister.close();
  await api.close();
  rmSync(pki.dir, { recursive: true });
});
afterEach(() => {
  delete process.env.FAKE_SMI_FIXTURE;
  delete process.env.FAKE_SMI_MODE;
});

describe('SMI through the Kubernetes exec API (§9.4)', () => {
  it('runs the tool in the gpu-feature-discovery pod of this node and returns its stdout', async () => {
    process.env.FAKE_SMI_FIXTURE = fixture('nvidia/h100x4');
    const run = podExecRunner(lister, 'nvidia', 'gpu-k8s01');
    assert.equal(
      await run('nvidia-smi', ['--query', '--xml-format'], 5000),
      readFixture('nvidia/h100x4.xml'),
    );
    assert.deepEqual(api.execs.at(-1), [
      'gpu-operator/gpu-feature-discovery-7xk2p',
      'gpu-feature-discovery',
      'nvidia-smi',
      '--query',
      '--xml-format',
    ]);
    assert.match(
      api.requests.at(-1)!,
      /labelSelector=app%3Dgpu-feature-discovery&fieldSelector=spec.nodeName%3Dgpu-k8s01/,
    );
  });

  it('reports a non-zero exit, a missing executable and a hanging command', async () => {
    process.env.FAKE_SMI_FIXTURE = fixture('nvidia/h100x4');
    process.env.FAKE_SMI_MODE = 'fail';
    await assert.rejects(execInPod(lister, GFD, 'gpu-feature-discovery', ['nvidia-smi', '-L'], 5000), {
      name: 'CommandError',
      message:
        "exec of 'nvidia-smi -L' in pod gpu-operator/gpu-feature-discovery-7xk2p failed: command terminated with non-zero exit code: error executing command [nvidia-smi -L], exit code 9",
    });
    await assert.rejects(
      execInPod(lister, GFD, 'gpu-feature-discovery', ['dcgmi', 'discovery', '-l'], 5000),
      /failed: OCI runtime exec failed: .*exec: "dcgmi": executable file not found in \$PATH/,
    );
    process.env.FAKE_SMI_MODE = 'hang';
    await assert.rejects(
      execInPod(lister, GFD, 'gpu-feature-discovery', ['nvidia-smi', '-L'], 300),
      /exec of 'nvidia-smi -L' in pod gpu-operator\/gpu-feature-discovery-7xk2p timed out after 300 ms/,
    );
  });

  it('fails clearly when unauthorised, without a running operator pod or without NODE_NAME', async () => {
    await assert.rejects(
      execInPod(badLister, GFD, 'gpu-feature-discovery', ['nvidia-smi', '-L'], 5000),
      /^CommandError: exec of 'nvidia-smi -L' in pod gpu-operator\/gpu-feature-discovery-7xk2p failed: /,
    );
    await assert.rejects(
      podExecRunner(badLister, 'nvidia', 'gpu-k8s01')('nvidia-smi', ['-L'], 5000),
      /cannot find the app=gpu-feature-discovery pod of node gpu-k8s01: .*HTTP 401: Unauthorized/,
    );
    await assert.rejects(
      podExecRunner(lister, 'amd', 'gpu-k8s03')('amd-smi', ['static'], 5000),
      /no running pod with label app.kubernetes.io\/name=metrics-exporter on node gpu-k8s03/,
    );
    await assert.rejects(
      podExecRunner(lister, 'nvidia', undefined)('nvidia-smi', ['-L'], 5000),
      /NODE_NAME must be set to run nvidia-smi/,
    );
  });

  it('the GPU inventory uses the pod when nvidia-smi is not installed on the host', async () => {
    process.env.FAKE_SMI_FIXTURE = fixture('nvidia/a100x2-mig');
    const oldPath = process.env.PATH;
    process.env.PATH = '/usr/bin:/bin'; // no nvidia-smi on this "host"
    try {
      const ctx = gpuContext([], 'sysfs/nvidia', recordingLogger().logger);
      const inv = await createGpuInventory(ctx, 'k8s', {
        remote: (v) => podExecRunner(lister, v, 'gpu-k8s02'),
      });
      assert.deepEqual(
        inv!.devices()[1]!.instances.map((i) => i.uuid),
        [
          'MIG-2c4e6a8b-0d1f-5a3b-8c7d-9e0f1a2b3c01',
          'MIG-5d7f9b1c-3e4a-5b6c-9d8e-0f1a2b3c4d02',
          'MIG-8e0a2c4d-6f7b-5c8d-ae9f-1a2b3c4d5e03',
        ],
      );
      assert.deepEqual(
        api.execs.slice(-2).map((e) => e.slice(0, 3).join(' ')),
        [
          'gpu-operator/gpu-feature-discovery-q9wmz gpu-feature-discovery nvidia-smi',
          'gpu-operator/gpu-feature-discovery-q9wmz gpu-feature-discovery nvidia-smi',
        ],
      );
    } finally {
      process.env.PATH = oldPath;
    }
  });
});
