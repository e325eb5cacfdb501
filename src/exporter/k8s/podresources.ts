// kubelet Pod Resources API v1 `List` over the kubelet's unix socket (spec exporter.md §9.9).

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { socketClosed, socketOpened } from './flags.js';

export { podResourcesSocketsInUse } from './flags.js';

export const MAX_RECEIVE_BYTES = 128 * 1024 * 1024;
export const LIST_TIMEOUT_MS = 1000;

/**
 * The .proto lives in src/ only; this file runs from src/exporter/k8s (tsx) or dist/exporter/k8s (tsc),
 * both three levels below the package root.
 */
const SRC_PROTO = resolve(import.meta.dirname, '../../../src/exporter/k8s/podresources.proto');
export const PROTO_PATH =
  [resolve(import.meta.dirname, 'podresources.proto'), SRC_PROTO].find(existsSync) ?? SRC_PROTO;

export interface ContainerDevices {
  resourceName: string;
  deviceIds: string[];
}
export interface ContainerResources {
  name: string;
  devices: ContainerDevices[];
}
export interface PodResources {
  name: string;
  namespace: string;
  containers: ContainerResources[];
}

type ListFn = (
  req: object,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: { podResources?: PodResources[] }) => void,
) => grpc.ClientUnaryCall;
type ListerClient = grpc.Client & { List: ListFn };

let lister: grpc.ServiceClientConstructor | undefined;

/** The generated `v1.PodResourcesLister` client constructor (also used by test servers). */
export function podResourcesDefinition(): grpc.GrpcObject {
  const def = protoLoader.loadSync(PROTO_PATH, {
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    arrays: true,
  });
  return grpc.loadPackageDefinition(def);
}

function listerClient(): grpc.ServiceClientConstructor {
  lister ??= (podResourcesDefinition().v1 as grpc.GrpcObject)
    .PodResourcesLister as grpc.ServiceClientConstructor;
  return lister;
}

/** A client bound to one kubelet socket; the channel is reused across calls. */
export class PodResourcesClient {
  private readonly client: ListerClient;
  private closed = false;

  constructor(readonly socketPath: string) {
    const abs = resolve(socketPath);
    socketOpened(abs);
    const Ctor = listerClient();
    this.client = new Ctor(`unix://${abs}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
    }) as unknown as ListerClient;
  }

  /** All pods with their containers' devices; rejects after `timeoutMs` (default 1 s). */
  list(timeoutMs = LIST_TIMEOUT_MS): Promise<PodResources[]> {
    return new Promise((res, rej) => {
      this.client.List({}, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, out) => {
        if (err)
          rej(
            new Error(
              `kubelet pod resources List on '${this.socketPath}' failed: ${err.details || err.message}`,
            ),
          );
        else res(out?.podResources ?? []);
      });
    });
  }

  close(): void {
    this.client.close();
    if (this.closed) return;
    this.closed = true;
    const abs = resolve(this.socketPath);
    socketClosed(abs);
  }
}
