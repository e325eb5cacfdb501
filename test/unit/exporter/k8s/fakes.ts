// Fake Kubernetes API server (fastify, HTTPS on 127.0.0.1:0) serving a real PodList, and a fake kubelet
// serving the real Pod Resources v1 protobuf API on a unix socket.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import fastify from 'fastify';
import { podResourcesDefinition } from '../../../../src/exporter/k8s/podresources.js';
import type { TestPki } from '../../../helpers/tls.js';

export const K8S_FIXTURES = join(import.meta.dirname, '../../../fixtures/k8s');
const FAKE_BIN = join(import.meta.dirname, '../../../fixtures/gpu/bin');
const podList = JSON.parse(readFileSync(join(K8S_FIXTURES, 'podlist.json'), 'utf8')) as {
  items: {
    metadata: { namespace: string; name: string; labels?: Record<string, string> };
    spec: { nodeName: string };
  }[];
};

/** One server→client WebSocket frame (unmasked): FIN + opcode, 7/16/64-bit length, payload. */
function frame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, n]) : Buffer.alloc(n < 65536 ? 4 : 10);
  if (n >= 126 && n < 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else if (n >= 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}
const channel = (ch: number, data: Buffer | string) =>
  frame(0x2, Buffer.concat([Buffer.from([ch]), Buffer.from(data)]));

/**
 * `exec` over WebSocket (v4.channel.k8s.io) as the API server proxies it from the kubelet: the command's
 * first word is looked up in test/fixtures/gpu/bin (the fake SMI tools); stdout on channel 1, stderr on 2,
 * the final v1.Status on 3, then a close frame.
 */
function serveExec(
  req: import('node:http').IncomingMessage,
  socket: Socket,
  authorized: boolean,
  execs: string[][],
): void {
  const url = new URL(req.url ?? '/', 'https://x');
  const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/.exec(url.pathname);
  if (!authorized || !m) {
    socket.end(
      `HTTP/1.1 ${authorized ? '404 Not Found' : '401 Unauthorized'}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    );
    return;
  }
  const command = url.searchParams.getAll('command');
  execs.push([`${m[1]}/${m[2]}`, url.searchParams.get('container') ?? '', ...command]);
  const accept = createHash('sha1')
    .update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
    .digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n`,
  );
  const done = (status: object) => {
    if (socket.destroyed) return;
    socket.write(channel(3, JSON.stringify({ metadata: {}, ...status })));
    socket.end(frame(0x8, Buffer.from([0x03, 0xe8])));
  };
  const bin = join(FAKE_BIN, command[0] ?? '');
  if (!command[0] || !existsSync(bin)) {
    done({
      status: 'Failure',
      message: `OCI runtime exec failed: exec failed: unable to start container process: exec: "${command[0]}": executable file not found in $PATH: unknown`,
    });
    return;
  }
  const child = spawn(bin, command.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  // a close frame from the client (opcode 8) ends the session, as the API server does
  socket.on('data', (d: Buffer) => {
    if ((d[0]! & 0x0f) === 0x8) socket.destroy();
  });
  socket.on('close', () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // exited
    }
  });
  child.stdout.on('data', (c: Buffer) => socket.destroyed || socket.write(channel(1, c)));
  child.stderr.on('data', (c: Buffer) => socket.destroyed || socket.write(channel(2, c)));
  child.on('close', (code) =>
    done(
      code === 0
        ? { status: 'Success' }
        : {
            status: 'Failure',
            message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code}`,
            reason: 'NonZeroExitCode',
            details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
          },
    ),
  );
}

export interface FakeApiServer {
  url: string;
  /** Query strings of the pod list requests served. */
  requests: string[];
  /** Exec requests: [namespace/pod, container, ...command]. */
  execs: string[][];
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
  const execs: string[][] = [];
  const authorized = (req: import('node:http').IncomingMessage) =>
    req.headers.authorization === `Bearer ${token}` || (req.socket as TLSSocket).authorized;
  app.server.on('upgrade', (req, socket: Socket) => serveExec(req, socket, authorized(req), execs));
  app.get('/api/v1/pods', async (req, reply) => {
    if (!authorized(req.raw)) {
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
    const q = req.query as { fieldSelector?: string; labelSelector?: string };
    requests.push(new URL(req.url, 'https://x').search);
    const node = /^spec\.nodeName=(.*)$/.exec(q.fieldSelector ?? '')?.[1];
    const labels = (q.labelSelector ?? '')
      .split(',')
      .filter((l) => l !== '')
      .map((l) => l.split('='));
    const items = podList.items.filter(
      (p) =>
        (node === undefined || p.spec.nodeName === node) &&
        labels.every(([k, v]) => p.metadata.labels?.[k!] === v),
    );
    return { ...podList, items };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as import('node:net').AddressInfo;
  return { url: `https://127.0.0.1:${addr.port}`, requests, execs, close: () => app.close() };
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
