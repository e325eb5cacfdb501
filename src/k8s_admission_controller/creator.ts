// Who created a workload, as the annotations `ceems.io/created-by` and `ceems.io/created-by-uid` the API
// server's k8s resource manager reads on pods (spec cli.md §4, api-server.md §11): which object path
// carries them, whether the request must add them, and the one JSON patch operation that does.

const CREATED_BY = 'ceems.io/created-by';
const CREATED_BY_UID = 'ceems.io/created-by-uid';
/**
 * Kubernetes' reserved user name prefix: service accounts (`system:serviceaccount:<ns>:<name>`) and the
 * control plane's own users (`system:kube-controller-manager` when it runs without per-controller service
 * account credentials, `system:node:<name>`). None of them is the person a workload's usage belongs to
 * (D-CLI-5: the original recognised service accounts only).
 */
const SYSTEM_USER = 'system:';

export type JsonObject = { [key: string]: unknown };

/** The request's user (`request.userInfo`). */
export interface Requester {
  username: string;
  uid: string;
}

/** RFC 6902 operation; `from` is always written, empty, as the original's Go struct does. */
export interface PatchOperation {
  op: 'add';
  path: string;
  from: '';
  value: JsonObject;
}

/** What the hooks decide for one object. */
export interface CreatorDecision {
  /** The creator the object ends up annotated with. */
  username: string;
  /** The operation that annotates it; none when its annotation already names the right creator. */
  patch?: PatchOperation;
}

/** The object is not what its kind says (a path that is no object, annotations that are no strings). */
export class ObjectShapeError extends Error {}

const OWN_ANNOTATIONS = ['metadata', 'annotations'] as const;
const TEMPLATE_ANNOTATIONS = ['spec', 'template', 'metadata', 'annotations'] as const;

/** Where a kind (by `apiVersion` and `kind`, as the original's typed decoder tells them) keeps its pod annotations. */
const ANNOTATION_PATHS: ReadonlyMap<string, readonly string[]> = new Map<string, readonly string[]>([
  ['v1/Pod', OWN_ANNOTATIONS],
  ['apps/v1/Deployment', TEMPLATE_ANNOTATIONS],
  ['apps/v1/StatefulSet', TEMPLATE_ANNOTATIONS],
  ['apps/v1/DaemonSet', TEMPLATE_ANNOTATIONS],
  ['batch/v1/Job', TEMPLATE_ANNOTATIONS],
  ['batch/v1/CronJob', ['spec', 'jobTemplate', ...TEMPLATE_ANNOTATIONS]],
]);

/** A JSON object (not an array, not null). */
export const isObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isSystemUser = (username: string) => username.startsWith(SYSTEM_USER);

/** The annotation map at `path` (empty when absent or null); throws ObjectShapeError on a wrong shape. */
function annotationsAt(object: JsonObject, path: readonly string[]): Record<string, string> {
  let node: unknown = object;
  for (const [i, key] of path.entries()) {
    if (node === undefined || node === null) return {};
    if (!isObject(node)) throw new ObjectShapeError(`${path.slice(0, i).join('.')}: expected an object`);
    node = node[key];
  }
  if (node === undefined || node === null) return {};
  if (!isObject(node) || !Object.values(node).every((v) => typeof v === 'string'))
    throw new ObjectShapeError(`${path.join('.')}: expected a map of strings`);
  return node as Record<string, string>;
}

/**
 * One `add` that sets the annotations at `path` to `annotations`. Where a parent of `path` is missing (or
 * null) the operation adds that parent, holding the rest: RFC 6902 `add` needs the parent to exist.
 */
function addAnnotations(
  object: JsonObject,
  path: readonly string[],
  annotations: JsonObject,
): PatchOperation {
  let node = object;
  let depth = 0;
  while (depth < path.length - 1 && isObject(node[path[depth]!])) node = node[path[depth++]!] as JsonObject;
  let value = annotations;
  for (let i = path.length - 1; i > depth; i--) value = { [path[i]!]: value };
  return { op: 'add', path: `/${path.slice(0, depth + 1).join('/')}`, from: '', value };
}

/** Existing annotations plus the creator's two (D-CLI-3: the original's value held only the two), keys sorted as Go writes a map. */
function withCreator(existing: Record<string, string>, creator: Requester): JsonObject {
  const merged: Record<string, string> = {
    ...existing,
    [CREATED_BY]: creator.username,
    [CREATED_BY_UID]: creator.uid,
  };
  return Object.fromEntries(
    Object.keys(merged)
      .sort()
      .map((k) => [k, merged[k]]),
  );
}

/**
 * The creator decision for `object` requested by `requester` (spec cli.md §4): a Pod keeps the creator it
 * carries (a controller creating it from its owner's template passes the owner's creator on) unless that
 * is a system user (a service account) and the requester a real user; a workload's pod template gets the
 * workload's own real creator, else keeps a real creator it has, else gets the requester.
 * Undefined for kinds without pods.
 */
export function decideCreator(object: JsonObject, requester: Requester): CreatorDecision | undefined {
  const path = ANNOTATION_PATHS.get(`${String(object.apiVersion)}/${String(object.kind)}`);
  if (!path) return undefined;
  const target = annotationsAt(object, path);
  const annotate = (creator: Requester): CreatorDecision => ({
    username: creator.username,
    patch: addAnnotations(object, path, withCreator(target, creator)),
  });
  const current = target[CREATED_BY];
  if (path === OWN_ANNOTATIONS) {
    if (current === undefined) return annotate(requester);
    if (isSystemUser(current) && !isSystemUser(requester.username)) return annotate(requester);
    return { username: current };
  }
  const own = annotationsAt(object, OWN_ANNOTATIONS);
  const ownCreator = own[CREATED_BY];
  if (ownCreator && !isSystemUser(ownCreator))
    return annotate({ username: ownCreator, uid: own[CREATED_BY_UID] ?? '' });
  if (current && !isSystemUser(current)) return { username: current };
  return annotate(requester);
}
