import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseFlags } from '../../../../src/common/flags.js';
import { inClusterConfig, loadKubeConfig, loadKubeConfigFile } from '../../../../src/common/kubeconfig.js';
import { K8S_FLAGS, podResourcesSocket } from '../../../../src/exporter/k8s/flags.js';

const dir = mkdtempSync(join(tmpdir(), 'ceems-kubeconfig-'));
after(() => rmSync(dir, { recursive: true }));
const write = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';

describe('kubeconfig', () => {
  it('resolves the current context: server, CA data, token', () => {
    const p = write(
      'token.yaml',
      `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: ${Buffer.from(CA_PEM).toString('base64')}
    server: https://10.0.0.1:6443/
  name: prod
- cluster:
    server: https://other:6443
  name: other
contexts:
- context:
    cluster: other
    user: nobody
  name: other
- context:
    cluster: prod
    user: exporter
    namespace: monitoring
  name: prod
current-context: prod
preferences: {}
users:
- name: nobody
  user: {}
- name: exporter
  user:
    token: eyJhbGciOiJSUzI1NiJ9.payload.sig
`,
    );
    const cfg = loadKubeConfigFile(p);
    assert.equal(cfg.server, 'https://10.0.0.1:6443');
    assert.equal(cfg.client.bearer_token, 'eyJhbGciOiJSUzI1NiJ9.payload.sig');
    assert.equal(cfg.client.tls_config?.ca, CA_PEM);
  });

  it('resolves relative certificate and key files against the kubeconfig directory', () => {
    const p = write(
      'certs.yaml',
      `clusters:
- name: c
  cluster: {server: 'https://127.0.0.1:6443', certificate-authority: pki/ca.crt, insecure-skip-tls-verify: false}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
users:
- name: u
  user: {client-certificate: pki/client.crt, client-key: /abs/client.key}
`,
    );
    const cfg = loadKubeConfigFile(p);
    assert.equal(cfg.client.tls_config?.ca_file, join(dir, 'pki/ca.crt'));
    assert.equal(cfg.client.tls_config?.cert_file, join(dir, 'pki/client.crt'));
    assert.equal(cfg.client.tls_config?.key_file, '/abs/client.key');
    assert.equal(cfg.client.bearer_token, undefined);
  });

  it('reports unreadable, malformed and inconsistent files by name', () => {
    assert.throws(() => loadKubeConfigFile(join(dir, 'missing.yaml')), {
      name: 'KubeConfigError',
      message: `cannot read kubeconfig file '${join(dir, 'missing.yaml')}': ENOENT`,
    });
    assert.throws(
      () => loadKubeConfigFile(write('bad.yaml', 'clusters: [\n')),
      /^KubeConfigError: cannot read kubeconfig file/,
    );
    assert.throws(
      () => loadKubeConfigFile(write('noserver.yaml', 'clusters:\n- name: c\n  cluster: {}\n')),
      /invalid kubeconfig file '.*noserver.yaml': clusters.0.cluster.server: /,
    );
    assert.throws(
      () =>
        loadKubeConfigFile(
          write('nocluster.yaml', 'contexts:\n- name: a\n  context: {cluster: gone}\ncurrent-context: a\n'),
        ),
      /cluster 'gone' not found/,
    );
    assert.throws(
      () =>
        loadKubeConfigFile(
          write(
            'nouser.yaml',
            'clusters:\n- name: c\n  cluster: {server: "https://h"}\ncontexts:\n- name: a\n  context: {cluster: c, user: who}\n',
          ),
        ),
      /user 'who' not found/,
    );
    assert.throws(
      () => loadKubeConfigFile(write('noctx.yaml', 'current-context: zzz\n')),
      /context 'zzz' not found/,
    );
    assert.throws(
      () =>
        loadKubeConfigFile(
          write(
            'exec.yaml',
            'clusters:\n- name: c\n  cluster: {server: "https://h"}\ncontexts:\n- name: a\n  context: {cluster: c, user: eks}\nusers:\n- name: eks\n  user:\n    exec: {command: aws, apiVersion: client.authentication.k8s.io/v1beta1}\n',
          ),
        ),
      /user 'eks' uses exec\/auth-provider credentials, which are not supported/,
    );
  });

  it('in-cluster: service host/port env and the service-account token and CA', () => {
    const sa = join(dir, 'sa');
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), 'sa-token\n');
    const cfg = inClusterConfig({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, sa);
    assert.equal(cfg.server, 'https://[fd00::1]:443');
    assert.equal(cfg.client.bearer_token_file, join(sa, 'token'));
    assert.equal(cfg.client.tls_config?.ca_file, join(sa, 'ca.crt'));
    assert.equal(readFileSync(cfg.client.bearer_token_file!, 'utf8'), 'sa-token\n');
    assert.equal(
      loadKubeConfig('', { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, sa).server,
      'https://10.96.0.1:443',
    );
  });

  it('in-cluster: clear errors outside a cluster or without a token', () => {
    assert.throws(
      () => loadKubeConfig('', {}),
      /not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set/,
    );
    assert.throws(
      () =>
        inClusterConfig({ KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' }, join(dir, 'nosa')),
      /cannot read service account token '.*nosa\/token': ENOENT/,
    );
  });
});

describe('k8s flags', () => {
  const socket = (args: string[]) => podResourcesSocket(parseFlags(K8S_FLAGS, args, { env: {} }).flags);
  it('the new socket flag wins; the deprecated one applies only when given (D-EXP-4)', () => {
    assert.equal(socket([]), '/var/lib/kubelet/pod-resources/kubelet.sock');
    assert.equal(socket(['--collector.k8s.kubelet-socket-file=/old.sock']), '/old.sock');
    assert.equal(
      socket([
        '--collector.k8s.kubelet-socket-file=/old.sock',
        '--collector.k8s.kubelet-podresources-socket.file=/new.sock',
      ]),
      '/new.sock',
    );
  });
  it('accepts the hidden kubeconfig alias', () => {
    const f = parseFlags(K8S_FLAGS, ['--collector.k8s.kube-config-file=/etc/kube.yaml'], { env: {} }).flags;
    assert.equal(f.string('collector.k8s.kubeconfig.file'), '/etc/kube.yaml');
  });
});
