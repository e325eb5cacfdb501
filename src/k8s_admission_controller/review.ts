// The AdmissionReview wire format (admission.k8s.io/v1 and v1beta1) as the Kubernetes API server sends it
// to a webhook and reads the answer: the request fields the hooks use, checked, and the response in the
// request's version, field for field as the original writes it (spec cli.md §4).

import { z } from 'zod';
import { isObject, type PatchOperation, type Requester } from './creator.js';

/** `apiVersion`s of AdmissionReview answered, each in its own version. */
const REVIEW_VERSIONS: readonly string[] = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'];

/** A review the webhook cannot read: HTTP 400 with `message` (the original's texts). */
export class ReviewError extends Error {}

/** Go decodes a JSON null into a string field as "". */
const text = z
  .string()
  .nullish()
  .transform((v) => v ?? '');

const requestSchema = z.looseObject({
  uid: text,
  operation: text,
  resource: z.looseObject({ resource: text }).nullish(),
  userInfo: z.looseObject({ username: text, uid: text }).nullish(),
  object: z.unknown().optional(),
});

/** The fields of `request` the hooks use. */
export interface AdmissionRequest {
  uid: string;
  operation: string;
  /** `resource.resource`, e.g. `pods`, for the logs. */
  resource: string;
  requester: Requester;
  /** The object as admitted; checked by the hook that reads it. */
  object: unknown;
}

export interface Review {
  apiVersion: string;
  request: AdmissionRequest;
}

/** Reads an AdmissionReview body; throws ReviewError with the message the client gets. */
export function parseReview(body: string): Review {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (e) {
    throw new ReviewError(`could not deserialize request: ${(e as Error).message}`);
  }
  if (!isObject(doc)) throw new ReviewError('could not deserialize request: body is not a JSON object');
  const { apiVersion, kind } = doc;
  if (typeof kind !== 'string' || kind === '')
    throw new ReviewError("could not deserialize request: Object 'Kind' is missing");
  if (typeof apiVersion !== 'string' || apiVersion === '')
    throw new ReviewError("could not deserialize request: Object 'apiVersion' is missing");
  if (kind !== 'AdmissionReview' || !REVIEW_VERSIONS.includes(apiVersion))
    throw new ReviewError(`unsupported group version kind: ${apiVersion}, Kind=${kind}`);
  if (doc.request === undefined || doc.request === null)
    throw new ReviewError('malformed admission review: request is nil');
  const parsed = requestSchema.safeParse(doc.request);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = ['request', ...issue.path.map(String)].join('.');
    throw new ReviewError(`could not deserialize request: ${where}: ${issue.message}`);
  }
  const r = parsed.data;
  return {
    apiVersion,
    request: {
      uid: r.uid,
      operation: r.operation,
      resource: r.resource?.resource ?? '',
      requester: { username: r.userInfo?.username ?? '', uid: r.userInfo?.uid ?? '' },
      object: r.object,
    },
  };
}

/** What a hook answers. */
export interface AdmissionResult {
  allowed: boolean;
  /** `status.message`, for a refusal. */
  message?: string;
  patch?: PatchOperation[];
}

/** The AdmissionReview answer in the request's `apiVersion`, with Go's field order and trailing newline. */
export function encodeResponse(apiVersion: string, uid: string, result: AdmissionResult): string {
  const patch = result.patch?.length
    ? { patch: Buffer.from(JSON.stringify(result.patch)).toString('base64'), patchType: 'JSONPatch' }
    : {};
  const response = {
    uid,
    allowed: result.allowed,
    status: { metadata: {}, ...(result.message ? { message: result.message } : {}) },
    ...patch,
  };
  return `${JSON.stringify({ kind: 'AdmissionReview', apiVersion, response })}\n`;
}
