// The two webhooks (spec cli.md §4): `mutate` answers with the patch that annotates an object with its
// creator, `validate` admits everything and only logs objects that lack the annotation. Both read the
// same review and take the same decision (creator.ts); this file maps it to the HTTP answer.

import type { Logger } from '../common/logger.js';
import { decideCreator, isObject, ObjectShapeError } from './creator.js';
import { type AdmissionResult, encodeResponse, parseReview, ReviewError } from './review.js';

export type HookName = 'mutate' | 'validate';

/** 200 with an AdmissionReview, 400 with a plain-text reason, or 500 with an empty body. */
export type WebhookAnswer =
  | { status: 200; review: string }
  | { status: 400; reason: string }
  | { status: 500 };

const objectError = (message: string): WebhookAnswer => ({
  status: 400,
  reason: `could not deserialize request object: ${message}`,
});

/** The answer of webhook `hook` to a request body (already known to be JSON by its content type). */
export function answerReview(hook: HookName, body: string, log: Logger): WebhookAnswer {
  let review: ReturnType<typeof parseReview>;
  try {
    review = parseReview(body);
  } catch (e) {
    if (!(e instanceof ReviewError)) throw e;
    log.error({ hook, err: e.message }, 'Failed to decode body into admission review');
    return { status: 400, reason: e.message };
  }
  const { apiVersion, request } = review;
  const fields = { hook, version: apiVersion, uid: request.uid, resource: request.resource };
  const answer = (result: AdmissionResult): WebhookAnswer => {
    log.debug({ ...fields, ops: request.operation, allowed: result.allowed }, 'Admission webhook');
    return { status: 200, review: encodeResponse(apiVersion, request.uid, result) };
  };

  switch (request.operation) {
    case 'CREATE':
    case 'UPDATE':
      break;
    case 'DELETE':
    case 'CONNECT':
      // kept quirk: the hooks are registered for CREATE and UPDATE only, the original fails the others
      log.error(
        { ...fields, err: `operation ${request.operation} is not registered` },
        'Failed to execute hook',
      );
      return { status: 500 };
    default:
      return answer({ allowed: false, message: `Invalid operation: ${request.operation}` });
  }

  const object = request.object;
  if (!isObject(object))
    return objectError(object == null ? 'request.object is missing' : 'not a JSON object');
  if (typeof object.kind !== 'string' || object.kind === '') return objectError("Object 'Kind' is missing");
  let decision: ReturnType<typeof decideCreator>;
  try {
    decision = decideCreator(object, request.requester);
  } catch (e) {
    if (!(e instanceof ObjectShapeError)) throw e;
    log.error({ ...fields, kind: object.kind, err: e.message }, 'Failed to decode admitted object');
    return objectError(e.message);
  }
  if (!decision) {
    log.debug(
      { ...fields, kind: object.kind, apiVersion: object.apiVersion },
      'Kind without pods; admitted as is',
    );
    return answer({ allowed: true });
  }
  const creator = { ...fields, username: decision.username };
  if (hook === 'validate') {
    // the mutating webhook runs first: a patch still needed here means it did not run or was not applied
    if (decision.patch) log.warn(creator, 'Username annotation not found');
    return answer({ allowed: true });
  }
  if (!decision.patch) {
    log.info(creator, 'Username annotation already exists');
    return answer({ allowed: true });
  }
  log.debug(creator, 'Adding username and UID annotations');
  return answer({ allowed: true, patch: [decision.patch] });
}
