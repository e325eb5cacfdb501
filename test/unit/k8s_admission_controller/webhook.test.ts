// The admission webhooks on AdmissionReview v1 requests as the Kubernetes API server sends them
// (test/fixtures/k8s-admission/: objects after defaulting and the built-in admission plugins, with
// managedFields and the service account token volume), for Pods, Deployments, Jobs, CronJobs, StatefulSets
// and DaemonSets created by users and by service accounts. Every returned patch is applied with an RFC 6902
// implementation (fast-json-patch) and the object checked; controller-created Pods are built from the patched
// owner the way the controllers build them, and the final Pod read by the API server's k8s resource manager.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { type K8sPod, k8sExtraConfigSchema, podToUnit } from '../../../src/api/resource/k8s.js';
import { createLogger } from '../../../src/common/logger.js';
import { answerReview, type HookName } from '../../../src/k8s_admission_controller/webhook.js';
import { ROOT } from '../../helpers/process.js';

type Json = { [key: string]: unknown };
type Review = { kind: string; apiVersion: string; request: Json & { userInfo: Json; object: Json } };

const FIXTURES = join(ROOT, 'test/fixtures/k8s-admission');
const ALICE = { username: 'alice', uid: '1001', groups: ['hpc-team', 'system:authenticated'] };
const DAVE = { username: 'dave', uid: '1004', groups: ['hpc-team', 'system:authenticated'] };
const sa = (ns: string, name: string) => ({
  username: `system:serviceaccount:${ns}:${name}`,
  uid: `uid-of-${name}`,
  groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
});
const ARGO = sa('argocd', 'argocd-application-controller');

/** A fixture review, with `change` applied to a copy (another requester, operation, object). */
function review(fixture: string, change: (r: Review) => void = () => {}): Review {
  const r = JSON.parse(readFileSync(join(FIXTURES, `${fixture}.json`), 'utf8')) as Review;
  change(r);
  return r;
}

interface Answered {
  status: number;
  /** The AdmissionReview answer (200 only). */
  body?: { kind: string; apiVersion: string; response: Json & { patch?: string } };
  reason?: string;
  patch?: Operation[];
  logs: string[];
}

function call(hook: HookName, body: Review | string): Answered {
  const logs: string[] = [];
  const log = createLogger({ level: 'debug', write: (l) => logs.push(l) });
  const a = answerReview(hook, typeof body === 'string' ? body : JSON.stringify(body), log);
  if (a.status === 400) return { status: 400, reason: a.reason, logs };
  if (a.status === 500) return { status: 500, logs };
  assert.ok(a.review.endsWith('}\n'), 'one JSON document and a newline, as Go encodes it');
  const parsed = JSON.parse(a.review) as NonNullable<Answered['body']>;
  const patch = parsed.response.patch
    ? (JSON.parse(Buffer.from(parsed.response.patch, 'base64').toString('utf8')) as Operation[])
    : undefined;
  return { status: 200, body: parsed, patch, logs };
}

/** The object after the API server applied the mutating webhook's answer (RFC 6902, validated). */
function mutated(r: Review): Json {
  const a = call('mutate', r);
  assert.equal(a.status, 200, a.reason);
  assert.equal(a.body!.response.allowed, true);
  if (!a.patch) return r.request.object;
  assert.equal(a.body!.response.patchType, 'JSONPatch');
  return fastJsonPatch.applyPatch(structuredClone(r.request.object), a.patch, true, false).newDocument;
}

const at = (o: unknown, path: string): unknown =>
  path.split('.').reduce<unknown>((n, k) => (n as Json | undefined)?.[k], o);

/** `object` with `path` replaced by `value`: what the patch may change, nothing else. */
function withValue(object: Json, path: string, value: unknown): Json {
  const copy = structuredClone(object);
  const keys = path.split('.');
  let node = copy;
  for (const k of keys.slice(0, -1)) {
    node[k] ??= {};
    node = node[k] as Json;
  }
  node[keys.at(-1)!] = value;
  return copy;
}

const TEMPLATE = 'spec.template.metadata.annotations';
const CREATED_BY = 'ceems.io/created-by';
const CREATED_BY_UID = 'ceems.io/created-by-uid';

/** The Pod a ReplicaSet/Job/StatefulSet/DaemonSet controller creates from `owner`'s pod template. */
function podFromTemplate(owner: Json, ownerKind: string, templatePath = 'spec.template'): Json {
  const template = structuredClone(at(owner, templatePath)) as { metadata: Json; spec: Json };
  const ownerMeta = owner.metadata as Json;
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      ...template.metadata,
      generateName: `${String(ownerMeta.name)}-`,
      namespace: ownerMeta.namespace,
      ownerReferences: [
        {
          apiVersion: owner.apiVersion,
          kind: ownerKind,
          name: ownerMeta.name,
          uid: 'owner-uid',
          controller: true,
        },
      ],
    },
    spec: { ...template.spec, serviceAccountName: 'default', serviceAccount: 'default' },
    status: {},
  };
}

/** A Pod CREATE review by `user` (the pod-kubectl-run envelope around `pod`). */
const podReview = (pod: Json, user: Json) =>
  review('pod-kubectl-run', (r) => {
    r.request.object = pod;
    r.request.userInfo = user;
    delete r.request.name;
  });

/** The owner the API server's k8s resource manager attributes a Pod to, with its default configuration. */
function apiServerOwner(pod: Json): string | undefined {
  const running = structuredClone(pod) as K8sPod & Json;
  running.metadata = { ...running.metadata, uid: 'pod-uid', name: 'p' };
  running.status = { phase: 'Pending' };
  const cfg = k8sExtraConfigSchema.parse({});
  return podToUnit(running, cfg, { clusterId: 'k8s-0', timeZone: 'UTC', start: 0, end: 1 }).username;
}

describe('mutating webhook: Pods', () => {
  it('annotates a Pod without annotations with its creator: the exact answer of the original', () => {
    const r = review('pod-kubectl-run');
    assert.equal(at(r, 'request.object.metadata.annotations'), undefined);
    const a = call('mutate', r);
    assert.deepEqual(
      { ...a.body, response: { ...a.body!.response, patch: '<checked below>' } },
      {
        kind: 'AdmissionReview',
        apiVersion: 'admission.k8s.io/v1',
        response: {
          uid: '3e0a6c2e-6d1f-4c53-9a43-5f0c1c1b2d01',
          allowed: true,
          status: { metadata: {} },
          patch: '<checked below>',
          patchType: 'JSONPatch',
        },
      },
    );
    assert.equal(
      Buffer.from(a.body!.response.patch!, 'base64').toString(),
      '[{"op":"add","path":"/metadata/annotations","from":"","value":{"ceems.io/created-by":"alice","ceems.io/created-by-uid":"1001"}}]',
    );
    assert.deepEqual(
      mutated(r),
      withValue(r.request.object, 'metadata.annotations', {
        [CREATED_BY]: 'alice',
        [CREATED_BY_UID]: '1001',
      }),
    );
  });

  it('keeps the annotations a Pod has and replaces a service account creator by the real user (D-CLI-3)', () => {
    const existing = {
      'kubectl.kubernetes.io/restartedAt': '2026-12-01T08:00:00Z',
      [CREATED_BY]: ARGO.username,
    };
    const r = review('pod-kubectl-run', (x) => {
      (x.request.object.metadata as Json).annotations = { ...existing, [CREATED_BY_UID]: ARGO.uid };
      x.request.operation = 'UPDATE';
      x.request.oldObject = structuredClone(x.request.object);
      x.request.userInfo = DAVE;
    });
    const pod = mutated(r);
    assert.deepEqual(
      pod,
      withValue(r.request.object, 'metadata.annotations', {
        ...existing,
        [CREATED_BY]: 'dave',
        [CREATED_BY_UID]: '1004',
      }),
    );
    assert.equal(apiServerOwner(pod), 'dave');
  });

  it('annotates a Pod a service account creates with that account, which the API server counts as unknown', () => {
    const pod = mutated(review('pod-kubectl-run', (x) => Object.assign(x.request, { userInfo: ARGO })));
    assert.deepEqual(at(pod, 'metadata.annotations'), {
      [CREATED_BY]: ARGO.username,
      [CREATED_BY_UID]: ARGO.uid,
    });
    assert.equal(apiServerOwner(pod), 'hpc-team:unknown');
  });

  it('leaves a Pod alone whose creator a service account already set (a spawner naming its user)', () => {
    // JupyterHub's kubespawner creates each user's pod with its own service account and names the user
    const jupyterhub = sa('jhub', 'hub');
    const annotations = { 'hub.jupyter.org/username': 'alice', [CREATED_BY]: 'alice', [CREATED_BY_UID]: '' };
    const r = review('pod-kubectl-run', (x) => {
      (x.request.object.metadata as Json).annotations = annotations;
      x.request.userInfo = jupyterhub;
    });
    const a = call('mutate', r);
    assert.equal(a.body!.response.allowed, true);
    assert.equal(a.body!.response.patch, undefined);
    assert.equal(a.body!.response.patchType, undefined);
    assert.match(a.logs.join(''), /msg="Username annotation already exists".* username=alice/);
    // a service account creator stays when another service account updates the pod
    const byController = review('pod-kubectl-run', (x) => {
      (x.request.object.metadata as Json).annotations = { [CREATED_BY]: ARGO.username };
      x.request.userInfo = sa('kube-system', 'generic-garbage-collector');
    });
    assert.equal(call('mutate', byController).patch, undefined);
  });

  it('a Pod the job controller creates keeps the creator its Job template passed on', () => {
    const r = review('pod-job-controller');
    const a = call('mutate', r);
    assert.equal(a.body!.response.allowed, true);
    assert.equal(a.patch, undefined);
    assert.equal(apiServerOwner(r.request.object), 'bob');
  });
});

describe('mutating webhook: workloads annotate their pod template', () => {
  it('Deployment by a user: template annotations kept, creator added; its own annotations untouched', () => {
    const r = review('deployment-kubectl-apply');
    const a = call('mutate', r);
    assert.deepEqual(a.patch, [
      {
        op: 'add',
        path: '/spec/template/metadata/annotations',
        from: '',
        value: {
          [CREATED_BY]: 'alice',
          [CREATED_BY_UID]: '1001',
          'prometheus.io/port': '8888',
          'prometheus.io/scrape': 'true',
        },
      },
    ]);
    const deployment = mutated(r);
    assert.deepEqual(
      deployment,
      withValue(r.request.object, TEMPLATE, {
        'prometheus.io/port': '8888',
        'prometheus.io/scrape': 'true',
        [CREATED_BY]: 'alice',
        [CREATED_BY_UID]: '1001',
      }),
    );
  });

  it('Deployment → ReplicaSet → Pod: the controller-created Pod inherits the creator and is counted to them', () => {
    const deployment = mutated(review('deployment-kubectl-apply'));
    // the deployment controller copies the template into the ReplicaSet, whose controller creates the pods,
    // with per-controller service accounts or, without them, as the controller manager's own user
    for (const controller of [
      sa('kube-system', 'replicaset-controller'),
      { username: 'system:kube-controller-manager' },
    ]) {
      const pod = podFromTemplate(deployment, 'ReplicaSet');
      const r = podReview(pod, controller);
      assert.equal(call('mutate', r).patch, undefined, controller.username);
      assert.equal(call('validate', r).logs.join('').includes('Username annotation not found'), false);
      assert.equal(apiServerOwner(mutated(r)), 'alice', controller.username);
    }
  });

  it('Deployment by a service account: the template gets the account unless the Deployment names a user', () => {
    const bySa = mutated(
      review('deployment-kubectl-apply', (x) => Object.assign(x.request, { userInfo: ARGO })),
    );
    assert.equal((at(bySa, TEMPLATE) as Json)[CREATED_BY], ARGO.username);
    // GitOps: the manifest carries the author on the Deployment itself; it is copied down to the template
    const named = review('deployment-kubectl-apply', (x) => {
      x.request.userInfo = ARGO;
      Object.assign((x.request.object.metadata as Json).annotations as Json, {
        [CREATED_BY]: 'dave',
        [CREATED_BY_UID]: '1004',
      });
    });
    const deployment = mutated(named);
    assert.deepEqual(at(deployment, TEMPLATE), {
      'prometheus.io/port': '8888',
      'prometheus.io/scrape': 'true',
      [CREATED_BY]: 'dave',
      [CREATED_BY_UID]: '1004',
    });
    assert.deepEqual(
      at(deployment, 'metadata.annotations'),
      at(named, 'request.object.metadata.annotations'),
    );
    const pod = mutated(
      podReview(podFromTemplate(deployment, 'ReplicaSet'), sa('kube-system', 'replicaset-controller')),
    );
    assert.equal(apiServerOwner(pod), 'dave');
  });

  it('a control-plane user never replaces a service account creator (D-CLI-5)', () => {
    const deployment = mutated(
      review('deployment-kubectl-apply', (x) => Object.assign(x.request, { userInfo: ARGO })),
    );
    // controllers without per-controller service account credentials, and a kubelet updating its mirror pod
    for (const user of [{ username: 'system:kube-controller-manager' }, { username: 'system:node:gpu-07' }]) {
      const r = podReview(podFromTemplate(deployment, 'ReplicaSet'), user);
      assert.equal(call('mutate', r).patch, undefined, user.username);
      assert.equal(apiServerOwner(mutated(r)), 'hpc-team:unknown', user.username);
    }
  });

  it('Deployment UPDATE: a real creator in the template stays, a service account one is replaced by the user', () => {
    const created = mutated(review('deployment-kubectl-apply'));
    const update = (template: Json, user: Json) =>
      review('deployment-kubectl-apply', (x) => {
        x.request.operation = 'UPDATE';
        x.request.object = withValue(created, TEMPLATE, template);
        x.request.oldObject = structuredClone(x.request.object);
        x.request.options = {
          kind: 'UpdateOptions',
          apiVersion: 'meta.k8s.io/v1',
          fieldManager: 'kubectl-edit',
        };
        x.request.userInfo = user;
      });
    const kept = update(at(created, TEMPLATE) as Json, DAVE);
    assert.equal(call('mutate', kept).patch, undefined);
    const replaced = mutated(
      update({ [CREATED_BY]: ARGO.username, [CREATED_BY_UID]: ARGO.uid, team: 'ml' }, DAVE),
    );
    assert.deepEqual(at(replaced, TEMPLATE), { team: 'ml', [CREATED_BY]: 'dave', [CREATED_BY_UID]: '1004' });
  });

  it('Job by a certificate user (no uid): its empty template metadata gets the annotations', () => {
    const r = review('job-kubectl-create');
    assert.deepEqual(at(r, 'request.object.spec.template.metadata'), { creationTimestamp: null });
    const job = mutated(r);
    assert.deepEqual(
      job,
      withValue(r.request.object, TEMPLATE, { [CREATED_BY]: 'bob', [CREATED_BY_UID]: '' }),
    );
    const pod = mutated(podReview(podFromTemplate(job, 'Job'), sa('kube-system', 'job-controller')));
    assert.equal(apiServerOwner(pod), 'bob');
  });

  it('CronJob → Job → Pod: the job template of the CronJob carries the creator down', () => {
    const r = review('cronjob-kubectl-create');
    const a = call('mutate', r);
    assert.equal(a.patch?.[0]?.path, '/spec/jobTemplate/spec/template/metadata/annotations');
    const cronjob = mutated(r);
    assert.deepEqual(
      cronjob,
      withValue(r.request.object, `spec.jobTemplate.${TEMPLATE}`, {
        [CREATED_BY]: 'alice',
        [CREATED_BY_UID]: '1001',
      }),
    );
    // the cronjob controller creates the Job from the job template, as its service account
    const jobTemplate = at(cronjob, 'spec.jobTemplate') as { spec: Json };
    const job = {
      kind: 'Job',
      apiVersion: 'batch/v1',
      metadata: { name: 'nightly-report-29412345', namespace: 'hpc-team', creationTimestamp: null },
      spec: jobTemplate.spec,
      status: {},
    };
    const jobReview = review('job-kubectl-create', (x) => {
      x.request.object = job;
      x.request.userInfo = sa('kube-system', 'cronjob-controller');
    });
    assert.equal(call('mutate', jobReview).patch, undefined);
    const pod = mutated(podReview(podFromTemplate(job, 'Job'), sa('kube-system', 'job-controller')));
    assert.equal(apiServerOwner(pod), 'alice');
  });

  it('StatefulSet installed with Helm by a user and by a service account: chart annotations kept', () => {
    for (const user of [{ username: 'carol', uid: '1003' }, sa('flux-system', 'helm-controller')]) {
      const r = review('statefulset-helm', (x) => Object.assign(x.request, { userInfo: user }));
      const sts = mutated(r);
      assert.deepEqual(
        sts,
        withValue(r.request.object, TEMPLATE, {
          'checksum/config': '8d3f0a6c2b',
          [CREATED_BY]: user.username,
          [CREATED_BY_UID]: user.uid,
        }),
      );
      const pod = mutated(
        podReview(podFromTemplate(sts, 'StatefulSet'), sa('kube-system', 'statefulset-controller')),
      );
      assert.equal(apiServerOwner(pod), user.username === 'carol' ? 'carol' : 'hpc-team:unknown');
    }
  });

  it('DaemonSet: annotated like the other workloads', () => {
    const r = review('deployment-kubectl-apply', (x) => {
      const o = x.request.object;
      Object.assign(o, { kind: 'DaemonSet' });
      delete (o.spec as Json).replicas;
      delete (o.spec as Json).strategy;
      delete (o.spec as Json).progressDeadlineSeconds;
      Object.assign(x.request, { kind: { group: 'apps', version: 'v1', kind: 'DaemonSet' } });
    });
    assert.equal((at(mutated(r), TEMPLATE) as Json)[CREATED_BY], 'alice');
  });

  it('objects missing the metadata on the path: one add that creates it, valid RFC 6902', () => {
    const cases: Array<[string, (o: Json) => void, string]> = [
      [
        'Job template without metadata',
        (o) => delete (at(o, 'spec.template') as Json).metadata,
        '/spec/template/metadata',
      ],
      [
        'Job template metadata null',
        (o) => Object.assign(at(o, 'spec.template') as Json, { metadata: null }),
        '/spec/template/metadata',
      ],
      ['Job without template', (o) => delete (o.spec as Json).template, '/spec/template'],
      [
        'Job annotations null',
        (o) => Object.assign(at(o, 'spec.template.metadata') as Json, { annotations: null }),
        '/spec/template/metadata/annotations',
      ],
    ];
    for (const [name, change, path] of cases) {
      const r = review('job-kubectl-create', (x) => change(x.request.object));
      assert.equal(call('mutate', r).patch?.[0]?.path, path, name);
      assert.deepEqual(at(mutated(r), TEMPLATE), { [CREATED_BY]: 'bob', [CREATED_BY_UID]: '' }, name);
    }
    const bare = podReview({ kind: 'Pod', apiVersion: 'v1' }, ALICE);
    assert.deepEqual(mutated(bare), {
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: { annotations: { [CREATED_BY]: 'alice', [CREATED_BY_UID]: '1001' } },
    });
  });

  it('kinds without pods are admitted unchanged', () => {
    const service = podReview(
      { kind: 'Service', apiVersion: 'v1', metadata: { name: 's' }, spec: {} },
      ALICE,
    );
    const a = call('mutate', service);
    assert.equal(a.body!.response.allowed, true);
    assert.equal(a.patch, undefined);
  });
});

describe('review versions, operations and the validating webhook', () => {
  it('answers an admission.k8s.io/v1beta1 review in v1beta1', () => {
    const r = review('pod-kubectl-run', (x) => Object.assign(x, { apiVersion: 'admission.k8s.io/v1beta1' }));
    const a = call('mutate', r);
    assert.equal(a.body!.apiVersion, 'admission.k8s.io/v1beta1');
    assert.equal(a.body!.kind, 'AdmissionReview');
    assert.equal(a.patch?.[0]?.path, '/metadata/annotations');
  });

  it('validate admits with or without the annotation and warns only when it is missing', () => {
    const missing = call('validate', review('pod-kubectl-run'));
    assert.deepEqual(missing.body!.response, {
      uid: '3e0a6c2e-6d1f-4c53-9a43-5f0c1c1b2d01',
      allowed: true,
      status: { metadata: {} },
    });
    assert.match(missing.logs.join(''), /level=WARN msg="Username annotation not found".* username=alice/);
    const present = call('validate', review('pod-job-controller'));
    assert.equal(present.body!.response.allowed, true);
    assert.doesNotMatch(present.logs.join(''), /WARN/);
  });

  it('an operation other than CREATE/UPDATE: DELETE/CONNECT fail with an empty 500, others are refused', () => {
    for (const hook of ['mutate', 'validate'] as const) {
      for (const op of ['DELETE', 'CONNECT'])
        assert.equal(
          call(
            hook,
            review('pod-kubectl-run', (x) => Object.assign(x.request, { operation: op })),
          ).status,
          500,
        );
      const bad = call(
        hook,
        review('pod-kubectl-run', (x) => Object.assign(x.request, { operation: 'PATCH' })),
      );
      assert.deepEqual(bad.body!.response, {
        uid: '3e0a6c2e-6d1f-4c53-9a43-5f0c1c1b2d01',
        allowed: false,
        status: { metadata: {}, message: 'Invalid operation: PATCH' },
      });
    }
  });

  it('reviews it cannot read get 400 with a reason naming what is wrong', () => {
    const cases: Array<[string, Review | string, RegExp]> = [
      ['truncated JSON', '{"kind":"AdmissionReview","apiVersion":', /^could not deserialize request: .*JSON/],
      ['an array', '[]', /^could not deserialize request: body is not a JSON object$/],
      [
        'no kind',
        { apiVersion: 'admission.k8s.io/v1' } as never,
        /^could not deserialize request: Object 'Kind' is missing$/,
      ],
      [
        'a Pod, not a review',
        review('pod-kubectl-run').request.object as never,
        /^unsupported group version kind: v1, Kind=Pod$/,
      ],
      [
        'an unknown version',
        review('pod-kubectl-run', (x) => Object.assign(x, { apiVersion: 'admission.k8s.io/v2' })),
        /^unsupported group version kind: admission\.k8s\.io\/v2, Kind=AdmissionReview$/,
      ],
      [
        'no request',
        { kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1', request: null } as never,
        /^malformed admission review: request is nil$/,
      ],
      [
        'a username that is no string',
        review('pod-kubectl-run', (x) => Object.assign(x.request.userInfo, { username: 42 })),
        /^could not deserialize request: request\.userInfo\.username: /,
      ],
      [
        'no object',
        review('pod-kubectl-run', (x) => delete (x.request as Json).object),
        /^could not deserialize request object: request\.object is missing$/,
      ],
      [
        'an object without kind',
        review('pod-kubectl-run', (x) => delete x.request.object.kind),
        /^could not deserialize request object: Object 'Kind' is missing$/,
      ],
      [
        'annotations that are no strings',
        review('pod-kubectl-run', (x) =>
          Object.assign(x.request.object.metadata as Json, { annotations: { replicas: 3 } }),
        ),
        /^could not deserialize request object: metadata\.annotations: expected a map of strings$/,
      ],
      [
        'a template that is no object',
        review('job-kubectl-create', (x) =>
          Object.assign(x.request.object.spec as Json, { template: 'pod' }),
        ),
        /^could not deserialize request object: spec\.template: expected an object$/,
      ],
    ];
    for (const [name, body, reason] of cases) {
      const a = call('mutate', body);
      assert.equal(a.status, 400, `${name}: ${a.status}`);
      assert.match(a.reason!, reason, name);
    }
  });
});
