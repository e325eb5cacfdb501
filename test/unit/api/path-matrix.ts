// Path-encoding matrix of the API server, shared by the in-process test (security-paths.test.ts) and the
// one against the real binary (test/integration/api-security-paths.test.ts). Every GET route the app
// registered is taken from its router (a new route is covered without editing this file); each gets
// spelling variants of its path (percent-encoded characters, %2F, doubled and trailing slashes, case,
// dot segments, `;param`, route-prefix games), sent over a real socket (fastify's inject would normalise
// dot segments first) as no user, a normal user and an admin. A variant must be refused (400/404/405, or
// 403 for a public path) or get exactly the decision of its canonical path: same status and, for a 200,
// the same body. An admin route never answers 200 to a non-admin, whatever the spelling.

import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import type { FastifyInstance } from 'fastify';

/**
 * Paths of the GET routes of an app: the ones it declared (`routes` of the API server, from its onRoute
 * hook) and the ones its router prints (which adds the trailing-slash twin fastify registers for a
 * plugin's `/` route, e.g. `/swagger/`, without an onRoute call). Sorted, duplicates removed.
 */
export function getRoutes(
  app: FastifyInstance,
  declared: readonly { methods: string[]; url: string }[],
): string[] {
  const out = new Set(declared.filter((r) => r.methods.includes('GET')).map((r) => r.url));
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)[├└]── (.+?)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    const path = (depth > 0 ? stack[depth - 1]! : '') + m[2]!;
    stack[depth] = path;
    stack.length = depth + 1;
    // The printed tree drops intermediate nodes without routes: only plain paths are trusted from it.
    if ((m[3] ?? '').split(', ').includes('GET') && !isPattern(path)) out.add(path);
  }
  return [...out].sort();
}

/** Routes whose path has parameters or wildcards: not spelled out by the matrix. */
export const isPattern = (path: string) => /[*:]/.test(path);

const enc = (c: string, lower = false) => {
  const hex = c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase();
  return `%${lower ? hex.toLowerCase() : hex}`;
};

/** Spelling variants of a canonical path (never the path itself), each with a label. */
export function variants(path: string, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  const add = (label: string, v: string) => {
    if (v !== path && v.startsWith('/') && !out.has(v)) out.set(v, label);
  };
  const slashes: number[] = [];
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === '/') {
      slashes.push(i);
      continue;
    }
    // each character percent-encoded, with upper- and lower-case hex digits
    add(`char ${i} encoded`, path.slice(0, i) + enc(c) + path.slice(i + 1));
    add(`char ${i} encoded, lower-case hex`, path.slice(0, i) + enc(c, true) + path.slice(i + 1));
  }
  const segments = path.split('/');
  const join = (segs: string[]) => segs.join('/');
  add(
    'every character encoded',
    path.replace(/[^/]/g, (c) => enc(c)),
  );
  add(
    'first letter of each segment double-encoded',
    join(segments.map((s) => (s ? `%25${enc(s[0]!).slice(1)}${s.slice(1)}` : s))),
  );
  for (const i of slashes) {
    const before = path.slice(0, i);
    const after = path.slice(i + 1);
    if (i > 0) {
      add(`slash ${i} as %2F`, `${before}%2F${after}`);
      add(`slash ${i} as %2f`, `${before}%2f${after}`);
      add(`slash ${i} as backslash`, `${before}\\${after}`);
      add(`slash ${i} as %5C`, `${before}%5C${after}`);
    }
    add(`slash ${i} doubled`, `${before}//${after}`);
    add(`/./ at ${i}`, `${before}/./${after}`);
    add(`/%2e/ at ${i}`, `${before}/%2e/${after}`);
    add(`/x/../ at ${i}`, `${before}/x/../${after}`);
    add(`/x/%2e%2e/ at ${i}`, `${before}/x/%2e%2e/${after}`);
    add(`/x/..%2F at ${i}`, `${before}/x/..%2F${after}`);
  }
  segments.forEach((s, k) => {
    if (!s) return;
    const at = (v: string) => join(segments.map((x, j) => (j === k ? v : x)));
    add(`segment ${k} upper-case`, at(s.toUpperCase()));
    add(`segment ${k} capitalised`, at(s[0]!.toUpperCase() + s.slice(1)));
    add(`segment ${k} with ;param`, at(`${s};x=1`));
    add(`segment ${k} with empty ;`, at(`${s};`));
  });
  add('whole path upper-case', path.toUpperCase());
  add('trailing slash', path.endsWith('/') ? path.slice(0, -1) : `${path}/`);
  add('trailing /.', `${path.replace(/\/$/, '')}/.`);
  add('trailing /..', `${path.replace(/\/$/, '')}/..`);
  for (const junk of ['%00', '%20', '%09', '%23x', '#x', '#/../admin', '.', '%2e', ';', '%3B', '*', '%2A'])
    add(`trailing ${junk}`, path + junk);
  if (prefix !== '' && path.startsWith(`${prefix}/`)) {
    const rest = path.slice(prefix.length);
    add('route prefix left out', rest);
    add('route prefix twice', prefix + path);
    add('route prefix upper-case', prefix.toUpperCase() + rest);
    add('route prefix encoded', prefix.replace(/[^/]/g, (c) => enc(c)) + rest);
    add('route prefix with ;param', `${prefix};x${rest}`);
  } else if (prefix !== '') {
    add('route prefix added', prefix + path);
  } else if (path.startsWith('/api/')) {
    add('a route prefix that is not configured', `/ceems${path}`);
  }
  return out;
}

export interface Target {
  host: string;
  port: number;
}

export interface Answer {
  status: number;
  body: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/** GET of a path exactly as written (no normalisation), over a kept-alive socket. */
export function rawGet(t: Target, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: t.host, port: t.port, path, method: 'GET', headers, agent }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export function closeAgent(): void {
  agent.destroy();
}

export interface MatrixOptions {
  target: Target;
  /** Canonical GET paths (patterns are skipped; a variant that is itself a route is left to that route). */
  routes: readonly string[];
  /** Who sends: label → user header value (undefined = no header). */
  users: Record<string, string | undefined>;
  /** Paths whose declared access is admin. */
  adminRoutes: ReadonlySet<string>;
  /** Paths whose declared access is public. */
  publicRoutes: ReadonlySet<string>;
  /** User labels that are admins. */
  admins: ReadonlySet<string>;
  /** Appended to every path (the same for canonical and variants). */
  query: string;
  prefix?: string;
  userHeader?: string;
}

export interface MatrixResult {
  routes: number;
  variants: number;
  requests: number;
  refused: number;
  failures: string[];
}

/** 200 bodies that differ between two requests of the same canonical path (random demo data). */
const shape = (body: string) => {
  try {
    const j = JSON.parse(body) as { status?: unknown; data?: unknown };
    return `json status=${String(j.status)} data=${Array.isArray(j.data) ? 'array' : typeof j.data}`;
  } catch {
    return `text ${body.length > 0}`;
  }
};

export async function runMatrix(o: MatrixOptions): Promise<MatrixResult> {
  const header = o.userHeader ?? 'X-Grafana-User';
  const headersOf = (u: string | undefined): Record<string, string> =>
    u === undefined ? {} : { [header]: u };
  const result: MatrixResult = { routes: 0, variants: 0, requests: 0, refused: 0, failures: [] };
  for (const path of o.routes) {
    if (isPattern(path)) continue;
    result.routes++;
    const canonical = new Map<string, { a: Answer; stable: boolean }>();
    for (const [label, user] of Object.entries(o.users)) {
      const a = await rawGet(o.target, path + o.query, headersOf(user));
      const b = await rawGet(o.target, path + o.query, headersOf(user));
      result.requests += 2;
      assert.equal(a.status, b.status, `${path} as ${label}: canonical status not stable`);
      canonical.set(label, { a, stable: a.body === b.body });
      if (o.adminRoutes.has(path) && !o.admins.has(label))
        assert.notEqual(a.status, 200, `${path} as ${label}: admin route answered a non-admin`);
    }
    const vs = [...variants(path, o.prefix)].filter(([v]) => !o.routes.includes(v));
    result.variants += vs.length;
    for (const [variant, why] of vs) {
      // A fragment ends the path and the query (find-my-way drops the query after it, fastify keeps `#…`
      // in the last parameter): the query goes before it, ending with a throwaway parameter.
      const hash = variant.indexOf('#');
      const sent =
        hash < 0
          ? variant + o.query
          : `${variant.slice(0, hash)}${o.query}${o.query ? '&' : '?'}_${variant.slice(hash)}`;
      for (const [label, user] of Object.entries(o.users)) {
        const r = await rawGet(o.target, sent, headersOf(user));
        result.requests++;
        const what = `${variant} (${why}, canonical ${path}) as ${label}: ${r.status} ${r.body.slice(0, 120)}`;
        if (r.status === 404) {
          result.refused++;
          if (r.body !== '404 page not found\n') result.failures.push(`${what}: unexpected 404 body`);
          continue;
        }
        if (r.status === 405) {
          result.refused++;
          if (r.body !== '') result.failures.push(`${what}: 405 with a body`);
          continue;
        }
        if (r.status === 400) {
          result.refused++;
          if (r.body.includes('"success"')) result.failures.push(`${what}: 400 with data`);
          continue;
        }
        const c = canonical.get(label)!;
        if (r.status === 403 && o.publicRoutes.has(path) && !r.body.includes('"success"')) {
          // Swagger UI's static file server (the public `/swagger/static/*`) refuses dot segments with 403.
          result.refused++;
          continue;
        }
        if (r.status !== c.a.status) {
          result.failures.push(`${what}: canonical answered ${c.a.status}`);
        } else if (r.status === 200 && (c.stable ? r.body !== c.a.body : shape(r.body) !== shape(c.a.body))) {
          result.failures.push(`${what}: body differs from the canonical one`);
        }
        if (o.adminRoutes.has(path) && !o.admins.has(label) && r.status === 200)
          result.failures.push(`${what}: ADMIN ROUTE ANSWERED A NON-ADMIN`);
      }
    }
  }
  return result;
}
