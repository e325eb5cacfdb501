// bin/ceems_k8s_admission_controller over TLS as the Kubernetes API server calls it: AdmissionReview v1
// POSTs over HTTP/1.1 and HTTP/2 (the API server's webhook client negotiates h2), the answers' patches
// applied with an RFC 6902 implementation; what is not a review gets the original's status and text;
// health, 404/405, graceful stop; the shipped example web config starts.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { type ClientHttp2Session, connect } from 'node:http2';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { Agent, request } from 'undici';
import { ROOT, runProgram, type Started, startProgram } from '../helpers/process.js';
import { makePki, type TestPki } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const PROGRAM = 'ceems_k8s_admission_controller';
const MUTATE = '/ceems-admission-controller/mutate';
const VALIDATE = '/ceems-admission-controller/validate';
const fixture = (name: string) =>
  readFileSync(join(ROOT, 'test/fixtures/k8s-admission', `${name}.json`), 'utf8');

interface AdmissionReviewAnswer {
  kind: string;
  apiVersion: string;
  response: { uid: string; allowed: boolean; status: object; patch?: string; patchType?: string };
}

/** The object of `review` after the API server applied the answer's patch. */
function applied(review: string, answer: AdmissionReviewAnswer): unknown {
  const object = (JSON.parse(review) as { request: { object: object } }).request.object;
  const ops = JSON.parse(Buffer.from(answer.response.patch ?? 'W10=', 'base64').toString()) as Operation[];
  return fastJsonPatch.applyPatch(object, ops, true, false).newDocument;
}

/** POST over HTTP/2 on `session`; status, content type and body. */
function h2Post(session: ClientHttp2Session, path: string, body: string) {
  return new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' });
    let status = 0;
    let type = '';
    let text = '';
    stream.on('response', (h) => {
      status = Number(h[':status']);
      type = String(h['content-type']);
    });
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      text += d;
    });
    stream.on('end', () => resolve({ status, type, body: text }));
    stream.on('error', reject);
    stream.end(body);
  });
}

describe('ceems_k8s_admission_controller over TLS', { timeout: 120_000 }, () => {
  let pki: TestPki;
  let controller: Started;
  let tls: Agent;

  const post = async (path: string, body: string | Buffer | Readable, contentType?: string) => {
    const r = await request(`${controller.url}${path}`, {
      method: 'POST',
      body,
      headers: contentType ? { 'content-type': contentType } : {},
      dispatcher: tls,
    });
    return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
  };

  /** Waits for a log line: it reaches this process through a pipe, after the answer (or the exit). */
  const logged = (line: RegExp) =>
    waitFor(`${line} in the log`, 5000, () => {
      if (line.test(controller.stderr())) return true;
      throw new Error(controller.stderr().slice(-2000));
    });

  before(async () => {
    pki = makePki();
    const webConfig = join(pki.dir, 'web-config.yml');
    writeFileSync(
      webConfig,
      `tls_server_config:\n  cert_file: ${pki.serverCert}\n  key_file: ${pki.serverKey}\n`,
    );
    controller = await startProgram(
      PROGRAM,
      ['--web.listen-address=127.0.0.1:0', `--web.config.file=${webConfig}`, '--log.level=debug'],
      { scheme: 'https' },
    );
    tls = new Agent({ connect: { ca: pki.caPem } });
  });

  after(async () => {
    await tls?.close();
    await controller?.stop();
  });

  it('GET /health answers the original text', async () => {
    const r = await request(`${controller.url}/health`, { dispatcher: tls });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(await r.body.text(), 'CEEMS k8s Admission Controller is healthy');
  });

  it('mutates a Deployment review over HTTP/1.1: the patch applied keeps its annotations and adds the creator', async () => {
    const review = fixture('deployment-kubectl-apply');
    const r = await post(MUTATE, review, 'application/json');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['content-type'], 'application/json');
    const answer = JSON.parse(r.body) as AdmissionReviewAnswer;
    assert.equal(answer.response.uid, '9b1f7f52-0f0e-4d8c-8a1f-2f7b8f1a3c02');
    assert.equal(answer.response.patchType, 'JSONPatch');
    const deployment = applied(review, answer) as {
      spec: { template: { metadata: { annotations: object } } };
    };
    assert.deepEqual(deployment.spec.template.metadata.annotations, {
      'ceems.io/created-by': 'alice',
      'ceems.io/created-by-uid': '1001',
      'prometheus.io/port': '8888',
      'prometheus.io/scrape': 'true',
    });
  });

  it('answers over HTTP/2, as the API server asks for it, the mutating and the validating webhook', async () => {
    const session = connect(controller.url, { ca: pki.caPem });
    try {
      const review = fixture('pod-kubectl-run');
      const mutate = await h2Post(session, MUTATE, review);
      assert.equal(session.alpnProtocol, 'h2');
      assert.equal(mutate.status, 200, mutate.body);
      assert.equal(mutate.type, 'application/json');
      const pod = applied(review, JSON.parse(mutate.body) as AdmissionReviewAnswer) as {
        metadata: { annotations: object };
      };
      assert.deepEqual(pod.metadata.annotations, {
        'ceems.io/created-by': 'alice',
        'ceems.io/created-by-uid': '1001',
      });
      const validate = await h2Post(session, VALIDATE, review);
      assert.equal(validate.status, 200, validate.body);
      assert.deepEqual((JSON.parse(validate.body) as AdmissionReviewAnswer).response, {
        uid: '3e0a6c2e-6d1f-4c53-9a43-5f0c1c1b2d01',
        allowed: true,
        status: { metadata: {} },
      });
      await logged(/level=WARN msg="Username annotation not found" hook=validate/);
    } finally {
      session.close();
    }
  });

  it('a media type parameter is accepted: application/json; charset=utf-8', async () => {
    const r = await post(MUTATE, fixture('job-kubectl-create'), 'application/json; charset=utf-8');
    assert.equal(r.status, 200, r.body);
    assert.ok((JSON.parse(r.body) as AdmissionReviewAnswer).response.patch);
  });

  it('what is not a review: the status and the reason, as plain text', async () => {
    const cases: Array<[string, () => ReturnType<typeof post>, number, RegExp]> = [
      [
        'text/plain body',
        () => post(MUTATE, fixture('pod-kubectl-run'), 'text/plain'),
        400,
        /^only content type 'application\/json' is supported\n$/,
      ],
      [
        'no content type',
        () => post(VALIDATE, fixture('pod-kubectl-run')),
        400,
        /^only content type 'application\/json' is supported\n$/,
      ],
      [
        'malformed JSON',
        () => post(MUTATE, '{"kind":"AdmissionReview",', 'application/json'),
        400,
        /^could not deserialize request: .+\n$/,
      ],
      [
        'a Pod instead of a review',
        () =>
          post(
            MUTATE,
            JSON.stringify(JSON.parse(fixture('pod-kubectl-run')).request.object),
            'application/json',
          ),
        400,
        /^unsupported group version kind: v1, Kind=Pod\n$/,
      ],
      [
        'a review without request',
        () =>
          post(MUTATE, '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}', 'application/json'),
        400,
        /^malformed admission review: request is nil\n$/,
      ],
      [
        'a 9 MiB body',
        () => post(MUTATE, Buffer.alloc(9 * 1024 * 1024, 0x20), 'application/json'),
        413,
        /^could not read request body: larger than 8388608 bytes\n$/,
      ],
      [
        'a 9 MiB body sent in chunks, without Content-Length',
        () =>
          post(
            MUTATE,
            Readable.from(Array.from({ length: 9 }, () => Buffer.alloc(1024 * 1024, 0x20))),
            'application/json',
          ),
        413,
        /^could not read request body: larger than 8388608 bytes\n$/,
      ],
    ];
    for (const [name, send, status, reason] of cases) {
      const r = await send();
      assert.equal(r.status, status, `${name}: ${r.body}`);
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8', name);
      assert.match(r.body, reason, name);
    }
    // the server still answers reviews after all of them
    assert.equal((await post(MUTATE, fixture('pod-kubectl-run'), 'application/json')).status, 200);
  });

  it('unknown paths are 404, other methods 405', async () => {
    const notFound = await request(`${controller.url}/mutate`, { dispatcher: tls });
    assert.equal(notFound.statusCode, 404);
    assert.equal(await notFound.body.text(), '404 page not found\n');
    const get = await request(`${controller.url}${MUTATE}`, { dispatcher: tls });
    assert.equal(get.statusCode, 405);
    assert.equal(get.headers.allow, 'POST');
    await get.body.dump();
    const postHealth = await request(`${controller.url}/health`, {
      method: 'POST',
      body: '',
      dispatcher: tls,
    });
    assert.equal(postHealth.statusCode, 405);
    await postHealth.body.dump();
  });

  it('stops on SIGTERM with exit code 0', async () => {
    const code = await controller.stop();
    assert.equal(code, 0, controller.stderr());
    await logged(/msg="Shutting down" signal=SIGTERM/);
  });
});

describe('ceems_k8s_admission_controller flags and shipped configuration', () => {
  it('starts on the shipped example web config and answers /health', async () => {
    const c = await startProgram(PROGRAM, [
      '--web.listen-address=127.0.0.1:0',
      `--web.config.file=${join(ROOT, 'etc/ceems_k8s_admission_controller/web-config.yml')}`,
    ]);
    try {
      const r = await fetch(`${c.url}/health`);
      assert.equal(await r.text(), 'CEEMS k8s Admission Controller is healthy');
    } finally {
      assert.equal(await c.stop(), 0, c.stderr());
    }
  });

  it('--help lists the flags of the spec with their defaults; an unknown flag is an error', async () => {
    const help = await runProgram(PROGRAM, ['--help']);
    assert.equal(help.code, 0, help.stderr);
    for (const flag of [
      /--web\.listen-address=.*":9000"/,
      /--web\.config\.file=/,
      /--\[no-\]web\.debug-server/,
      /--runtime\.gomaxprocs=/,
      /--log\.level=/,
      /--log\.format=/,
    ])
      assert.match(help.stdout, flag);
    const bad = await runProgram(PROGRAM, ['--web.listen-adress=:1']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unknown long flag '--web\.listen-adress'/);
  });
});
