import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KubeConfig } from '../../../../src/common/kubeconfig.js';
import { PodResourcesClient } from '../../../../src/exporter/k8s/podresources.js';
import { PodLister } from '../../../../src/exporter/k8s/pods.js';
import { makePki, type TestPki } from '../../../helpers/tls.js';
import {
  type FakeApiServer,
  type FakeKubelet,
  podResourcesFixture,
  startFakeApiServer,
  startFakeKubelet,
} from './fakes.js';

const TOKEN = 'exporter-token-4f3a';
let pki: TestPki;
let api: FakeApiServer;
const listers: PodLister[] = [];
const lister = (cfg: Partial<KubeConfig['client']>, timeoutMs?: number) => {
  const l = new PodLister(
    { server: api.url, client: { tls_config: { ca_file: pki.caCert }, ...cfg } },
    timeoutMs,
  );
  listers.push(l);
  return l;
};

before(async () => {
  pki = makePki();
  api = await startFakeApiServer(pki, TOKEN);
});
after(async () => {
  await Promise.all(listers.map((l) => l.close()));
  await api.close();
  rmSync(pki.dir, { recursive: true });
});

describe('Kubernetes API pod lister', () => {
  it('lists the pods of this node with the field selector (bearer token over TLS)', async () => {
    const pods = await lister({ bearer_token: TOKEN }).list('gpu-k8s01');
    assert.deepEqual(api.requests.at(-1), '?fieldSelector=spec.nodeName%3Dgpu-k8s01');
    assert.deepEqual(
      pods.map((p) => `${p.namespace}/${p.name} ${p.uid}`),
      [
        'default/train-0 0f1e2d3c-aaaa-4bbb-8ccc-123456789abc',
        'ml/infer-7c9d8-xk2lp 5b6c7d8e-1111-4222-8333-abcdefabcdef',
        'kube-system/coredns-76f75df574-8vq2n c1d2e3f4-5555-4666-8777-0123456789ab',
        'other-ns/train-0 d4c3b2a1-9999-4888-8777-fedcba987654',
        'gpu-operator/gpu-feature-discovery-7xk2p 17e2c3d4-6666-4777-8888-99aabbccddee',
      ],
    );
    assert.ok(pods.every((p) => p.phase === 'Running'));
  });

  it('lists all pods without NODE_NAME, authenticating with a client certificate', async () => {
    const pods = await lister({
      tls_config: { ca_file: pki.caCert, cert_file: pki.clientCert, key_file: pki.clientKey },
    }).list(undefined);
    assert.equal(api.requests.at(-1), '');
    assert.equal(pods.length, 8);
  });

  it('reports 401 with the API status message', async () => {
    await assert.rejects(lister({ bearer_token: 'wrong' }).list('gpu-k8s01'), {
      message: 'Kubernetes API /api/v1/pods returned HTTP 401: Unauthorized',
    });
  });

  it('rejects unreadable CA or client certificate files when the client is built', () => {
    assert.throws(
      () => new PodLister({ server: api.url, client: { tls_config: { ca_file: '/nonexistent/ca.crt' } } }),
      {
        name: 'KubeConfigError',
        message:
          "invalid Kubernetes client configuration: cannot read tls_config.ca_file '/nonexistent/ca.crt': ENOENT",
      },
    );
  });

  it('fails on an untrusted server certificate', async () => {
    const l = new PodLister({ server: api.url, client: { bearer_token: TOKEN } });
    listers.push(l);
    await assert.rejects(l.list('gpu-k8s01'), /self-signed|unable to verify|certificate/i);
  });
});

describe('kubelet pod resources client', () => {
  let dir: string;
  let kubelet: FakeKubelet;
  let client: PodResourcesClient;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ceems-kubelet-'));
    kubelet = await startFakeKubelet(dir);
    client = new PodResourcesClient(kubelet.socket);
  });
  after(async () => {
    client.close();
    await kubelet.close();
    rmSync(dir, { recursive: true });
  });

  it('decodes the List response: pods, containers, devices (replica and MIG ids as given)', async () => {
    kubelet.response = podResourcesFixture();
    const pods = await client.list();
    assert.deepEqual(
      pods.map((p) => [
        p.namespace,
        p.name,
        p.containers.map((c) => [c.name, c.devices.map((d) => [d.resourceName, d.deviceIds])]),
      ]),
      [
        [
          'default',
          'train-0',
          [
            [
              'trainer',
              [
                [
                  'nvidia.com/gpu',
                  [
                    'GPU-f4b0e6b2-8c7a-4d3e-9f1a-2b3c4d5e6f70::0',
                    'GPU-f4b0e6b2-8c7a-4d3e-9f1a-2b3c4d5e6f70::1',
                  ],
                ],
              ],
            ],
          ],
        ],
        [
          'ml',
          'infer-7c9d8-xk2lp',
          [
            ['server', [['nvidia.com/gpu', ['GPU-f4b0e6b2-8c7a-4d3e-9f1a-2b3c4d5e6f70::3']]]],
            ['sidecar', [['nvidia.com/mig-2g.20gb', ['MIG-5d7f9b1c-3e4a-5b6c-9d8e-0f1a2b3c4d02']]]],
          ],
        ],
        ['kube-system', 'coredns-76f75df574-8vq2n', [['coredns', []]]],
        [
          'other-ns',
          'train-0',
          [
            [
              'trainer',
              [
                ['nvidia.com/mig-1g.10gb', ['MIG-8e0a2c4d-6f7b-5c8d-ae9f-1a2b3c4d5e03']],
                ['rdma/hca_shared_devices_a', ['1']],
              ],
            ],
          ],
        ],
      ],
    );
  });

  it('an empty node gives an empty list', async () => {
    kubelet.response = {};
    assert.deepEqual(await client.list(), []);
  });

  it('times out when the kubelet does not answer', async () => {
    kubelet.response = 'hang';
    await assert.rejects(
      client.list(200),
      /kubelet pod resources List on '.*kubelet.sock' failed: Deadline exceeded/,
    );
  });

  it('reports kubelet errors and a missing socket', async () => {
    kubelet.response = new Error('kubelet is restarting');
    await assert.rejects(client.list(), /failed: kubelet is restarting/);
    const missing = new PodResourcesClient(join(dir, 'none.sock'));
    try {
      await assert.rejects(missing.list(300), /kubelet pod resources List on '.*none.sock' failed: /);
    } finally {
      missing.close();
    }
  });
});
