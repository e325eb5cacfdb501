// Fake Kubernetes API server (fastify, HTTPS on 127.0.0.1:0) serving a real PodList, and a fake kubelet
// serving the real Pod Resources v1 protobuf API on a unix socket.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fastify from 'fastify';
import { podResourcesDefinition } from '../../../../src/exporter/k8s/podresources.js';
import type { TestPki } from '../../../helpers/tls.js';

export const K8S_FIXTURES = join(import.meta.dirname, '../../../fixtures/k8s');
const podList = JSON.parse(readFileSync(join(K8S_FIXTURES, 'podlist.json'), 'utf8')) as {
  items: { spec: { nodeName: string } }[];
};

export interface FakeApiServer {
  url: string;
  /** Query strings of the pod list requests served. */
  requests: string[];
  close(): Promise<void>;
}

/** Accepts `Authorization: Bearer <token>` or a client certificate signed by the test CA. */
export async function startFakeApiServer(pki: TestPki, token: string): Promise<FakeApiServer> {
  const app = fastify({
    https: {
      key: readFileSync(pki.serverKey),
      cert: readFileSync(pki.serverCert),
      ca: readFileSync(pki.caCert),
      requestCert: true,
      rejectUnauthorized: false,
    },
  });
  const requests: string[] = [];
  app.get('/api/v1/pods', async (req, reply) => {
    const tls = req.raw.socket as import('node:tls').TLSSocket;
    if (req.headers.authorization !== `Bearer ${token}` && !tls.authorized) {
      return reply.code(401).send({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'Unauthorized',
        reason: 'Unauthorized',
        code: 401,
      });
    }
    const q = req.query as { fieldSelector?: string };
    requests.push(new URL(req.url, 'https://x').search);
    const node = /^spec\.nodeName=(.*)$/.exec(q.fieldSelector ?? '')?.[1];
    const items = node === undefined ? podList.items : podList.items.filter((p) => p.spec.nodeName === node);
    return { ...podList, items };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as import('node:net').AddressInfo;
  return { url: `https://127.0.0.1:${addr.port}`, requests, close: () => app.close() };
}

export interface FakeKubelet {
  socket: string;
  calls: number;
  /** Response of List (proto3 JSON field names); `hang` never answers, an Error fails the call. */
  response: object | 'hang' | Error;
  close(): Promise<void>;
}

export const podResourcesFixture = (): object =>
  JSON.parse(readFileSync(join(K8S_FIXTURES, 'podresources-list.json'), 'utf8'));

export async function startFakeKubelet(dir: string): Promise<FakeKubelet> {
  const socket = join(dir, 'kubelet.sock');
  const server = new grpc.Server();
  const svc = (
    (podResourcesDefinition().v1 as grpc.GrpcObject).PodResourcesLister as grpc.ServiceClientConstructor
  ).service;
  const state: FakeKubelet = {
    socket,
    calls: 0,
    response: podResourcesFixture(),
    close: () =>
      new Promise((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
  const unimplemented: grpc.handleUnaryCall<object, object> = (_call, cb) =>
    cb({ code: grpc.status.UNIMPLEMENTED, details: 'not implemented by the fake kubelet' });
  server.addService(svc, {
    List: (_call: grpc.ServerUnaryCall<object, object>, cb: grpc.sendUnaryData<object>) => {
      state.calls++;
      const r = state.response;
      if (r === 'hang') return;
      if (r instanceof Error) cb({ code: grpc.status.UNAVAILABLE, details: r.message });
      else cb(null, r);
    },
    GetAllocatableResources: unimplemented,
    Get: unimplemented,
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  return state;
}
