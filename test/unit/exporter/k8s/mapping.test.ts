import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { applyMigUuids, parseNvidiaSmiList, parseNvidiaSmiXml } from '../../../../src/exporter/gpu/nvidia.js';
import type { GpuAssignment } from '../../../../src/exporter/gpu/types.js';
import { loadXmlParser } from '../../../../src/exporter/gpu/xml.js';
import { PodGpuMapper } from '../../../../src/exporter/k8s/mapping.js';
import { PodResourcesClient } from '../../../../src/exporter/k8s/podresources.js';
import { PodLister } from '../../../../src/exporter/k8s/pods.js';
import { makePki, type TestPki } from '../../../helpers/tls.js';
import { readFixture } from '../gpu/fixtures.js';
import { recordingLogger } from '../gpu/helpers.js';
import {
  type FakeApiServer,
  type FakeKubelet,
  podResourcesFixture,
  startFakeApiServer,
  startFakeKubelet,
} from './fakes.js';

// the XML parsers need fast-xml-parser loaded (the collectors load it at create time)
await loadXmlParser();

const devices = parseNvidiaSmiXml(readFixture('nvidia/a100x2-mig.xml'));
applyMigUuids(devices, parseNvidiaSmiList(readFixture('nvidia/a100x2-mig-L.txt')));

const UID = {
  train: '0f1e2d3c-aaaa-4bbb-8ccc-123456789abc',
  infer: '5b6c7d8e-1111-4222-8333-abcdefabcdef',
  coredns: 'c1d2e3f4-5555-4666-8777-0123456789ab',
  otherTrain: 'd4c3b2a1-9999-4888-8777-fedcba987654',
};

let pki: TestPki;
let api: FakeApiServer;
let dir: string;
let kubelet: FakeKubelet;
let pods: PodLister;
let resources: PodResourcesClient;

before(async () => {
  pki = makePki();
  api = await startFakeApiServer(pki, 't0k');
  dir = mkdtempSync(join(tmpdir(), 'ceems-k8s-map-'));
  kubelet = await startFakeKubelet(dir);
  pods = new PodLister({
    server: api.url,
    client: { bearer_token: 't0k', tls_config: { ca_file: pki.caCert } },
  });
  resources = new PodResourcesClient(kubelet.socket);
});
after(async () => {
  resources.close();
  await pods.close();
  await kubelet.close();
  await api.close();
  rmSync(dir, { recursive: true });
  rmSync(pki.dir, { recursive: true });
});

const summary = (m: Map<string, GpuAssignment[]>) =>
  Object.fromEntries(
    [...m].map(([uid, a]) => [
      uid,
      a.map((x) => `${x.instance ? x.instance.index : x.device.index}=${x.value.toFixed(3)}`).join(' '),
    ]),
  );

describe('pod GPU mapping', () => {
  it('joins kubelet devices to pod UIDs by namespace and name (D-EXP-5), replicas split a GPU', async () => {
    kubelet.response = podResourcesFixture();
    const mapper = new PodGpuMapper({
      gpus: { devices: () => devices },
      pods,
      podResources: resources,
      nodeName: 'gpu-k8s01',
      logger: recordingLogger().logger,
    });
    const m = await mapper.update(Object.values(UID));
    assert.deepEqual(summary(m), {
      [UID.train]: '0=0.667',
      [UID.infer]: '0=0.333 2=1.000',
      [UID.otherTrain]: '3=1.000', // same pod name as default/train-0, its own MIG instance
    });
    assert.equal(api.requests.at(-1), '?fieldSelector=spec.nodeName%3Dgpu-k8s01');
  });

  it('refreshes when the pod set changes or 15 minutes after the last refresh (D-EXP-6)', async () => {
    let now = 1_000_000;
    kubelet.response = podResourcesFixture();
    const mapper = new PodGpuMapper({
      gpus: { devices: () => devices },
      pods,
      podResources: resources,
      logger: recordingLogger().logger,
      now: () => now,
    });
    const calls = kubelet.calls;
    const first = await mapper.update([UID.train, UID.infer]);
    assert.equal(kubelet.calls, calls + 1);
    now += 60_000;
    assert.equal(await mapper.update([UID.infer, UID.train]), first); // same set, any order
    assert.equal(kubelet.calls, calls + 1);
    await mapper.update([UID.train]); // pod set changed
    assert.equal(kubelet.calls, calls + 2);
    now += 15 * 60_000;
    await mapper.update([UID.train]); // 15 min after the last refresh
    assert.equal(kubelet.calls, calls + 3);
    now += 60_000;
    await mapper.update([UID.train]); // the refresh time was updated: no new call
    assert.equal(kubelet.calls, calls + 3);
  });

  it('keeps the previous mapping when the kubelet fails, logs it and retries on the next update', async () => {
    kubelet.response = podResourcesFixture();
    const rec = recordingLogger();
    const mapper = new PodGpuMapper({
      gpus: { devices: () => devices },
      pods,
      podResources: resources,
      logger: rec.logger,
    });
    const good = await mapper.update([UID.train]);
    kubelet.response = new Error('kubelet is restarting');
    assert.equal(await mapper.update([UID.train, UID.infer]), good);
    const last = rec.lines.at(-1)!;
    assert.equal(last.msg, 'cannot update pod GPU mapping; using the previous one');
    assert.match(String(last.err), /kubelet is restarting/);
    kubelet.response = podResourcesFixture();
    assert.notEqual(await mapper.update([UID.train, UID.infer]), good);
  });
});
