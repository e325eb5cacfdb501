// Go `encoding/json` compatible encoding of the API responses (spec §6.3): struct fields in declaration
// order with omitempty, sorted map keys, HTML-safe string escapes, metric maps with integers or exactly
// 8 decimals, one document followed by `\n`.

import { METRIC_FIELDS } from './models.js';

/** A number already rendered as JSON text. */
class RawNumber {
  constructor(readonly text: string) {}
}

/** Metric map value: integral → integer, else 8 decimals; NaN/±Inf → 0. */
export function formatMetricValue(v: number): string {
  if (!Number.isFinite(v)) return '0';
  if (Number.isInteger(v)) return Math.abs(v) < 1e21 ? v.toFixed(0) : String(v);
  return v.toFixed(8);
}

const HTML_UNSAFE = /[<>&\u2028\u2029]/;
const HTML_UNSAFE_ALL = /[<>&\u2028\u2029]/g;

/** A JSON string literal with Go's HTML-safe escapes of `<`, `>`, `&`, U+2028 and U+2029. */
export function escapeString(s: string): string {
  const text = JSON.stringify(s);
  if (!HTML_UNSAFE.test(text)) return text;
  return text.replace(HTML_UNSAFE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function encodeValue(v: unknown, sortKeys: boolean): string {
  if (v === null || v === undefined) return 'null';
  if (v instanceof RawNumber) return v.text;
  switch (typeof v) {
    case 'string':
      return escapeString(v);
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : '0';
    case 'bigint':
      return v.toString();
    case 'boolean':
      return v ? 'true' : 'false';
    default:
  }
  if (Array.isArray(v)) return `[${v.map((x) => encodeValue(x, true)).join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>);
  if (sortKeys) entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${escapeString(k)}:${encodeValue(x, true)}`).join(',')}}`;
}

export type FieldKind = 'string' | 'int' | 'metric' | 'map' | 'list';

/** One struct field: its kind and whether Go's `omitempty` applies. */
export interface FieldSpec {
  name: string;
  kind: FieldKind;
  omitempty: boolean;
}

function isEmpty(kind: FieldKind, v: unknown): boolean {
  if (v === undefined || v === null) return true;
  switch (kind) {
    case 'string':
      return v === '';
    case 'int':
      return v === 0;
    case 'list':
      return (v as unknown[]).length === 0;
    default:
      return Object.keys(v as object).length === 0;
  }
}

const ZERO: Record<FieldKind, unknown> = { string: '', int: 0, metric: null, map: null, list: null };

/** The JSON value of one struct field holding `v`, or undefined when omitempty leaves it out. */
export function encodeField(f: FieldSpec, v: unknown): string | undefined {
  if (f.omitempty && isEmpty(f.kind, v)) return undefined;
  if (v === undefined) v = ZERO[f.kind];
  if (f.kind === 'metric' && v !== null) {
    const m: Record<string, RawNumber> = {};
    for (const [k, x] of Object.entries(v as Record<string, number>))
      m[k] = new RawNumber(formatMetricValue(Number(x)));
    v = m;
  }
  return encodeValue(v, true);
}

/** Renders one model object as a Go struct of `fields` would marshal it. */
function encodeStruct(fields: readonly FieldSpec[], obj: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const f of fields) {
    const v = encodeField(f, obj[f.name]);
    if (v !== undefined) parts.push(`${escapeString(f.name)}:${v}`);
  }
  return `{${parts.join(',')}}`;
}

const metricFields = (omitempty: boolean): FieldSpec[] =>
  METRIC_FIELDS.map((name) => ({ name, kind: 'metric', omitempty }));

const s = (name: string, omitempty = true): FieldSpec => ({ name, kind: 'string', omitempty });
const i = (name: string, omitempty = true): FieldSpec => ({ name, kind: 'int', omitempty });

export const UNIT_STRUCT: readonly FieldSpec[] = [
  s('cluster_id'),
  s('resource_manager'),
  s('uuid', false),
  s('name'),
  s('project'),
  s('groupname'),
  s('username'),
  s('created_at'),
  s('started_at'),
  s('ended_at'),
  i('created_at_ts'),
  i('started_at_ts'),
  i('ended_at_ts'),
  s('elapsed'),
  s('state'),
  { name: 'allocation', kind: 'map', omitempty: true },
  ...metricFields(true),
  { name: 'tags', kind: 'map', omitempty: true },
];

export const USAGE_STRUCT: readonly FieldSpec[] = [
  s('cluster_id', false),
  s('resource_manager', false),
  i('num_units', false),
  s('project', false),
  s('groupname', false),
  s('username', false),
  ...metricFields(true),
];

export const PROJECT_STRUCT: readonly FieldSpec[] = [
  s('uid'),
  s('cluster_id', false),
  s('resource_manager', false),
  s('name', false),
  { name: 'users', kind: 'list', omitempty: false },
  { name: 'tags', kind: 'list', omitempty: true },
];

export const USER_STRUCT: readonly FieldSpec[] = [
  s('uid'),
  s('cluster_id', false),
  s('resource_manager'),
  s('name', false),
  { name: 'projects', kind: 'list', omitempty: true },
  { name: 'tags', kind: 'list', omitempty: true },
];

export const CLUSTER_STRUCT: readonly FieldSpec[] = [s('id', false), s('manager', false)];

export const STAT_STRUCT: readonly FieldSpec[] = [
  s('cluster_id', false),
  s('resource_manager', false),
  i('num_units', false),
  i('num_inactive_units', false),
  i('num_active_units', false),
  i('num_projects', false),
  i('num_users', false),
  { name: 'total_node_energy_kwh', kind: 'metric', omitempty: true },
];

/** Body of a success response: `{"status":"success","data":…[,"warnings":[…]]}\n`. */
export function encodeSuccess(
  struct: readonly FieldSpec[] | undefined,
  data: readonly Record<string, unknown>[] | null,
  warnings: readonly string[] = [],
): string {
  const d = data === null || !struct ? 'null' : `[${data.map((o) => encodeStruct(struct, o)).join(',')}]`;
  return encodeEnvelope(d, warnings);
}

/** Body of a success response whose `data` is already JSON text. */
export function encodeEnvelope(data: string, warnings: readonly string[] = []): string {
  const [head, tail] = envelope(warnings);
  return `${head}${data}${tail}`;
}

/** The text before and after `data` in a success response. */
export function envelope(warnings: readonly string[] = []): [string, string] {
  const w = warnings.length > 0 ? `,"warnings":${encodeValue(warnings, false)}` : '';
  return ['{"status":"success","data":', `${w}}\n`];
}

/** Body of an error response (§6.1). */
export function encodeError(errorType: string, error: string): string {
  return `{"status":"error","data":null,"errorType":${escapeString(errorType)},"error":${escapeString(error)}}\n`;
}

const KIND_SCHEMA: Record<FieldKind, object> = {
  string: { type: 'string' },
  int: { type: 'integer' },
  metric: { type: 'object', additionalProperties: { type: 'number' } },
  map: { type: 'object', additionalProperties: true },
  list: { type: 'array', items: { type: 'string' } },
};

/** JSON schema of a model (API description only: responses are encoded by `encodeSuccess`). */
export function structSchema(struct: readonly FieldSpec[]): object {
  const properties: Record<string, object> = {};
  for (const f of struct) properties[f.name] = KIND_SCHEMA[f.kind];
  return {
    type: 'object',
    properties,
    required: struct.filter((f) => !f.omitempty).map((f) => f.name),
  };
}
