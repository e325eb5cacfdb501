// Selectors of Pyroscope querier requests (Connect unary calls), spec lb.md §8: protobuf or Connect JSON
// bodies, optionally gzip-compressed. A body without Content-Type is protobuf, as the original CEEMS (Go)
// reads every body [D-LB-15]. The body is forwarded rebuilt (uncompressed, with its content type named)
// with the canonical selectors that were checked in place of the received ones; every other field is
// kept as received.

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

function writeVarint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/**
 * Walks a protobuf message, validating its framing: `onString` gets every value of the string field
 * `field` and returns its replacement bytes (or undefined to keep them); other fields are copied.
 */
function walkProtobuf(buf: Buffer, field: number, onString: (value: string) => Buffer | undefined): Buffer {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const fieldStart = pos;
    const [key, afterKey] = readVarint(buf, pos);
    const wire = key % 8;
    const num = Math.floor(key / 8);
    if (num === 0) throw new BadRequestError('invalid protobuf field number 0');
    pos = afterKey;
    let replacement: Buffer | undefined;
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
          let value: string;
          try {
            value = utf8.decode(buf.subarray(start, pos));
          } catch {
            throw new BadRequestError('invalid UTF-8 in protobuf string');
          }
          const bytes = onString(value);
          if (bytes)
            replacement = Buffer.concat([
              buf.subarray(fieldStart, afterKey),
              writeVarint(bytes.length),
              bytes,
            ]);
        }
        break;
      }
      default:
        throw new BadRequestError(`unsupported protobuf wire type ${wire}`);
    }
    if (pos > buf.length) throw new BadRequestError('truncated protobuf message');
    out.push(replacement ?? buf.subarray(fieldStart, pos));
  }
  return Buffer.concat(out);
}

/** Every value of a length-delimited (string) field of a protobuf message; validates the framing. */
export function protobufStrings(buf: Buffer, field: number): string[] {
  const out: string[] = [];
  walkProtobuf(buf, field, (value) => {
    out.push(value);
    return undefined;
  });
  return out;
}

function jsonMessage(body: Buffer): Record<string, unknown> {
  let msg: unknown;
  try {
    msg = JSON.parse(utf8.decode(body));
  } catch (e) {
    throw new BadRequestError(`invalid JSON body: ${(e as Error).message}`);
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg))
    throw new BadRequestError('JSON body is not an object');
  return msg as Record<string, unknown>;
}

/** Walks the selector fields of a Connect JSON message: `map` returns each string's replacement. */
function mapJsonSelectors(msg: Record<string, unknown>, rpc: PyroscopeRpc, map: (s: string) => string): void {
  for (const key of JSON_FIELDS[rpc]) {
    const v = msg[key];
    if (v === undefined || v === null) continue;
    const values = Array.isArray(v) ? v : [v];
    for (const s of values)
      if (typeof s !== 'string') throw new BadRequestError(`field ${key} must hold strings`);
    msg[key] = Array.isArray(v) ? values.map((s) => map(s as string)) : map(v as string);
  }
}

export interface PyroscopeRequest {
  /** Selector strings in body order. */
  readonly selectors: readonly string[];
  /** Media type the body was decoded as; the rebuilt body is sent with it, so the backend reads it alike. */
  readonly contentType: 'application/proto' | 'application/json';
  /** The body (uncompressed, same content type) with `selectors[i]` replaced by `replacements[i]`. */
  rebuild(replacements: readonly string[]): Buffer;
}

/**
 * Selectors of a request body, and how to write the body back with other selectors. Throws
 * BadRequestError for unsupported content types or encodings and for bodies that do not decode.
 */
export function readPyroscopeRequest(
  rpc: PyroscopeRpc,
  body: Buffer,
  contentType: string | undefined,
  contentEncoding: string | undefined,
): PyroscopeRequest {
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
  const next = (replacements: readonly string[]) => {
    let i = 0;
    return () => {
      const r = replacements[i++];
      if (r === undefined) throw new Error('fewer replacements than selectors');
      return r;
    };
  };
  if (type === 'application/proto' || type === '') {
    return {
      contentType: 'application/proto',
      selectors: protobufStrings(raw, SELECTOR_FIELD[rpc]),
      rebuild: (replacements) => {
        const take = next(replacements);
        return walkProtobuf(raw, SELECTOR_FIELD[rpc], () => Buffer.from(take(), 'utf8'));
      },
    };
  }
  if (type === 'application/json') {
    const selectors: string[] = [];
    mapJsonSelectors(jsonMessage(raw), rpc, (s) => {
      selectors.push(s);
      return s;
    });
    return {
      contentType: 'application/json',
      selectors,
      rebuild: (replacements) => {
        const take = next(replacements);
        const msg = jsonMessage(raw);
        mapJsonSelectors(msg, rpc, take);
        return Buffer.from(JSON.stringify(msg), 'utf8');
      },
    };
  }
  throw new BadRequestError('unsupported request body');
}
