// Selectors of Pyroscope querier requests (Connect unary calls), spec lb.md §8: protobuf or Connect JSON
// bodies, optionally gzip-compressed. The original bytes are forwarded; this only reads them.

import { gunzipSync } from 'node:zlib';
import { BadRequestError } from './form.js';

export type PyroscopeRpc = 'SelectMergeStacktraces' | 'LabelNames' | 'LabelValues';

/** Protobuf field number holding the selector(s) of each request message. */
const SELECTOR_FIELD: Record<PyroscopeRpc, number> = {
  SelectMergeStacktraces: 2, // querier.v1.SelectMergeStacktracesRequest.label_selector
  LabelNames: 1, // types.v1.LabelNamesRequest.matchers
  LabelValues: 2, // types.v1.LabelValuesRequest.matchers
};
/** Connect JSON names (protojson accepts both the JSON name and the proto name). */
const JSON_FIELDS: Record<PyroscopeRpc, readonly string[]> = {
  SelectMergeStacktraces: ['labelSelector', 'label_selector'],
  LabelNames: ['matchers'],
  LabelValues: ['matchers'],
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readVarint(buf: Buffer, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    const b = buf[pos + i];
    if (b === undefined) throw new BadRequestError('truncated protobuf varint');
    result += (b & 0x7f) * mul;
    mul *= 128;
    if (b < 0x80) return [result, pos + i + 1];
  }
  throw new BadRequestError('malformed protobuf varint');
}

/** Every value of a length-delimited (string) field of a protobuf message; validates the framing. */
export function protobufStrings(buf: Buffer, field: number): string[] {
  const out: string[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, afterKey] = readVarint(buf, pos);
    const wire = key % 8;
    const num = Math.floor(key / 8);
    if (num === 0) throw new BadRequestError('invalid protobuf field number 0');
    pos = afterKey;
    switch (wire) {
      case 0:
        pos = readVarint(buf, pos)[1];
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        const [len, start] = readVarint(buf, pos);
        pos = start + len;
        if (pos > buf.length) break;
        if (num === field) {
          try {
            out.push(utf8.decode(buf.subarray(start, pos)));
          } catch {
            throw new BadRequestError('invalid UTF-8 in protobuf string');
          }
        }
        break;
      }
      default:
        throw new BadRequestError(`unsupported protobuf wire type ${wire}`);
    }
    if (pos > buf.length) throw new BadRequestError('truncated protobuf message');
  }
  return out;
}

function jsonStrings(body: Buffer, rpc: PyroscopeRpc): string[] {
  let msg: unknown;
  try {
    msg = JSON.parse(utf8.decode(body));
  } catch (e) {
    throw new BadRequestError(`invalid JSON body: ${(e as Error).message}`);
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg))
    throw new BadRequestError('JSON body is not an object');
  const out: string[] = [];
  for (const key of JSON_FIELDS[rpc]) {
    const v = (msg as Record<string, unknown>)[key];
    if (v === undefined || v === null) continue;
    const values = Array.isArray(v) ? v : [v];
    for (const s of values) {
      if (typeof s !== 'string') throw new BadRequestError(`field ${key} must hold strings`);
      out.push(s);
    }
  }
  return out;
}

/**
 * Selector strings of a request body. Throws BadRequestError for unsupported content types or
 * encodings and for bodies that do not decode.
 */
export function pyroscopeSelectors(
  rpc: PyroscopeRpc,
  body: Buffer,
  contentType: string | undefined,
  contentEncoding: string | undefined,
): string[] {
  const encoding = (contentEncoding ?? '').trim().toLowerCase();
  let raw = body;
  if (encoding === 'gzip') {
    try {
      raw = gunzipSync(body, { maxOutputLength: 64 * 1024 * 1024 });
    } catch (e) {
      throw new BadRequestError(`invalid gzip body: ${(e as Error).message}`);
    }
  } else if (encoding !== '' && encoding !== 'identity') {
    throw new BadRequestError('unsupported request body');
  }
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/proto') return protobufStrings(raw, SELECTOR_FIELD[rpc]);
  if (type === 'application/json') return jsonStrings(raw, rpc);
  throw new BadRequestError('unsupported request body');
}
