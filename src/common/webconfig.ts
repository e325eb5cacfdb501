// Prometheus exporter-toolkit web configuration (TLS, HTTP headers, basic auth), shared by all servers.

import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { createSecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import bcrypt from 'bcryptjs';
import YAML from 'yaml';
import { z } from 'zod';

const TLS_VERSIONS = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' } as const;
const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
const ALLOWED_HEADERS = [
  'Content-Security-Policy',
  'X-Frame-Options',
  'X-Content-Type-Options',
  'X-XSS-Protection',
  'Strict-Transport-Security',
];
// Go cipher-suite names → OpenSSL names (TLS 1.2 suites; TLS 1.3 suites are not configurable in Go either).
const CIPHERS: Record<string, string> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
};
const CURVES: Record<string, string> = {
  CurveP256: 'P-256',
  CurveP384: 'P-384',
  CurveP521: 'P-521',
  X25519: 'X25519',
};

const tlsSchema = z
  .strictObject({
    cert_file: z.string().optional(),
    key_file: z.string().optional(),
    cert: z.string().optional(),
    key: z.string().optional(),
    client_ca_file: z.string().optional(),
    client_ca: z.string().optional(),
    client_auth_type: z.enum(CLIENT_AUTH_TYPES).optional(),
    client_allowed_sans: z.array(z.string()).optional(),
    min_version: z.enum(Object.keys(TLS_VERSIONS) as [keyof typeof TLS_VERSIONS]).optional(),
    max_version: z.enum(Object.keys(TLS_VERSIONS) as [keyof typeof TLS_VERSIONS]).optional(),
    cipher_suites: z.array(z.string()).optional(),
    prefer_server_cipher_suites: z.boolean().optional(),
    curve_preferences: z.array(z.string()).optional(),
  })
  .nullish();

export const webConfigSchema = z
  .strictObject({
    tls_server_config: tlsSchema,
    http_server_config: z
      .strictObject({ http2: z.boolean().optional(), headers: z.record(z.string(), z.string()).optional() })
      .nullish(),
    basic_auth_users: z.record(z.string(), z.string()).nullish(),
  })
  .nullish();

export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

export interface TlsSettings {
  options: SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean };
  clientAuth: ClientAuthType;
  allowedSans: string[];
}

export interface WebConfig {
  tls?: TlsSettings;
  http2: boolean;
  headers: Record<string, string>;
  basicAuthUsers: Map<string, string>;
  /** Users whose configured hash is not a bcrypt hash (logged, never authenticated). */
  invalidHashUsers: string[];
}

export class WebConfigError extends Error {}

function zodMessage(err: z.ZodError): string {
  return err.issues
    .map((i) => {
      const path = i.path.join('.');
      if (i.code === 'unrecognized_keys')
        return `unknown key(s) ${i.keys.map((k) => `'${k}'`).join(', ')}${path ? ` in '${path}'` : ''}`;
      return `'${path}': ${i.message}`;
    })
    .join('; ');
}

function readRelative(base: string, file: string, what: string): string {
  const p = isAbsolute(file) ? file : resolve(base, file);
  try {
    return readFileSync(p, 'utf8');
  } catch (e) {
    throw new WebConfigError(
      `cannot read ${what} '${p}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

/** Parses web config text; relative file names resolve against `baseDir` (the config's directory). */
export function parseWebConfig(text: string, baseDir: string): WebConfig {
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (e) {
    throw new WebConfigError(`invalid YAML: ${(e as Error).message}`);
  }
  const parsed = webConfigSchema.safeParse(raw);
  if (!parsed.success) throw new WebConfigError(zodMessage(parsed.error));
  const cfg = parsed.data ?? {};
  const headers = cfg.http_server_config?.headers ?? {};
  for (const h of Object.keys(headers)) {
    if (!ALLOWED_HEADERS.includes(h)) throw new WebConfigError(`HTTP header '${h}' can not be configured`);
  }
  const basicAuthUsers = new Map(Object.entries(cfg.basic_auth_users ?? {}));
  const invalidHashUsers = [...basicAuthUsers].filter(([, h]) => !isBcryptHash(h)).map(([u]) => u);
  const out: WebConfig = {
    http2: cfg.http_server_config?.http2 ?? true,
    headers,
    basicAuthUsers,
    invalidHashUsers,
  };
  const t = cfg.tls_server_config;
  // exporter-toolkit's rule: no certificate, key, client CA or client auth type is no TLS (the original's
  // ceems_tool writes `cert_file: ""` and `key_file: ""` without --tls)
  const tlsAsked =
    t &&
    [t.cert_file, t.key_file, t.cert, t.key, t.client_ca_file, t.client_ca, t.client_auth_type].some(
      (v) => v,
    );
  if (tlsAsked) out.tls = buildTls(t, baseDir);
  return out;
}

function buildTls(t: NonNullable<z.infer<typeof tlsSchema>>, baseDir: string): TlsSettings {
  if (t.cert_file && t.cert) throw new WebConfigError('at most one of cert and cert_file must be configured');
  if (t.key_file && t.key) throw new WebConfigError('at most one of key and key_file must be configured');
  const cert = t.cert ?? (t.cert_file ? readRelative(baseDir, t.cert_file, 'cert_file') : undefined);
  const key = t.key ?? (t.key_file ? readRelative(baseDir, t.key_file, 'key_file') : undefined);
  if (!cert) throw new WebConfigError('missing cert_file (or cert) in tls_server_config');
  if (!key) throw new WebConfigError('missing key_file (or key) in tls_server_config');
  const ca =
    t.client_ca ?? (t.client_ca_file ? readRelative(baseDir, t.client_ca_file, 'client_ca_file') : undefined);
  const clientAuth = t.client_auth_type ?? 'NoClientCert';
  if (ca && clientAuth === 'NoClientCert') {
    throw new WebConfigError("client CA configured but client_auth_type is 'NoClientCert'");
  }
  if (!ca && (clientAuth === 'VerifyClientCertIfGiven' || clientAuth === 'RequireAndVerifyClientCert')) {
    throw new WebConfigError(`client_auth_type '${clientAuth}' needs client_ca_file`);
  }
  const ciphers = t.cipher_suites?.map((c) => {
    const o = CIPHERS[c];
    if (!o) throw new WebConfigError(`unknown cipher suite '${c}'`);
    return o;
  });
  const curves = t.curve_preferences?.map((c) => {
    const o = CURVES[c];
    if (!o) throw new WebConfigError(`unknown curve '${c}'`);
    return o;
  });
  const options: TlsSettings['options'] = {
    cert,
    key,
    ca,
    minVersion: TLS_VERSIONS[t.min_version ?? 'TLS12'],
    maxVersion: TLS_VERSIONS[t.max_version ?? 'TLS13'],
    requestCert: clientAuth !== 'NoClientCert',
    rejectUnauthorized: clientAuth === 'RequireAndVerifyClientCert',
  };
  if (ciphers) options.ciphers = ciphers.join(':');
  if (curves) options.ecdhCurve = curves.join(':');
  if (t.prefer_server_cipher_suites !== undefined) options.honorCipherOrder = t.prefer_server_cipher_suites;
  try {
    createSecureContext(options); // validates the key pair and PEM contents now, not at first handshake
  } catch (e) {
    throw new WebConfigError(`invalid TLS certificate or key: ${(e as Error).message}`);
  }
  return { options, clientAuth, allowedSans: t.client_allowed_sans ?? [] };
}

export function isBcryptHash(h: string): boolean {
  return /^\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}$/.test(h);
}

export function loadWebConfig(path: string): WebConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WebConfigError(
      `cannot read web config file '${path}': ${(e as NodeJS.ErrnoException).code ?? e}`,
    );
  }
  try {
    return parseWebConfig(text, dirname(resolve(path)));
  } catch (e) {
    throw new WebConfigError(`web config file '${path}': ${(e as Error).message}`);
  }
}

/**
 * The web config file and the files its `tls_server_config` names (certificate, key, client CA), as
 * absolute paths: what a process must still be able to read after switching user, since the file is
 * re-read when it changes. A file that cannot be parsed yields just itself.
 */
export function webConfigFiles(path: string): string[] {
  const file = resolve(path);
  let doc: unknown;
  try {
    doc = YAML.parse(readFileSync(file, 'utf8'));
  } catch {
    return [file];
  }
  const tls = (doc as { tls_server_config?: Record<string, unknown> } | null)?.tls_server_config ?? {};
  const named = ['cert_file', 'key_file', 'client_ca_file']
    .map((k) => tls[k])
    .filter((f): f is string => typeof f === 'string' && f !== '');
  return [file, ...named.map((f) => resolve(dirname(file), f))];
}

/** Checks the TLS client certificate rules that Node's handshake options cannot express; returns an error or null. */
export function checkClientCert(tls: TlsSettings, socket: TLSSocket): string | null {
  const cert = socket.getPeerCertificate?.();
  const present = cert !== undefined && cert !== null && Object.keys(cert).length > 0;
  if (tls.clientAuth === 'RequireAnyClientCert' && !present) return 'client certificate required';
  if (tls.clientAuth === 'VerifyClientCertIfGiven' && present && !socket.authorized) {
    return `client certificate not verified: ${socket.authorizationError}`;
  }
  if (tls.allowedSans.length > 0 && present) {
    const sans = (cert.subjectaltname ?? '').split(/,\s*/).map((s) => s.replace(/^[A-Za-z ]+:/, ''));
    if (!sans.some((s) => tls.allowedSans.includes(s))) return 'client certificate SAN not allowed';
  }
  return null;
}

/**
 * Basic-auth verification with a cache of bcrypt results (bcrypt is deliberately slow; exporter-toolkit
 * caches too). The cache key includes the hash so that a changed password invalidates old entries.
 */
export class BasicAuthVerifier {
  private readonly cache = new Map<string, boolean>();
  private static readonly MAX_CACHE = 1024;

  async verify(users: Map<string, string>, header: string | undefined): Promise<boolean> {
    if (!header?.startsWith('Basic ')) return false;
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const pass = decoded.slice(colon + 1);
    const hash = users.get(user);
    if (hash === undefined || !isBcryptHash(hash)) return false;
    const key = `${user}\0${hash}\0${pass}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    let ok = false;
    try {
      ok = await bcrypt.compare(pass, hash);
    } catch {
      ok = false;
    }
    if (this.cache.size >= BasicAuthVerifier.MAX_CACHE) this.cache.clear();
    this.cache.set(key, ok);
    return ok;
  }
}

/** Web config reloaded when the file changes (exporter-toolkit re-reads it on every request). */
export class WebConfigSource {
  private current: WebConfig;
  private mtimeMs: number;
  private lastCheck = 0;

  constructor(
    readonly path: string,
    private readonly onError: (err: Error) => void,
    private readonly onReload: (cfg: WebConfig) => void = () => {},
  ) {
    this.current = loadWebConfig(path);
    this.mtimeMs = statSync(path).mtimeMs;
  }

  get(): WebConfig {
    const now = Date.now();
    if (now - this.lastCheck < 1000) return this.current;
    this.lastCheck = now;
    try {
      const m = statSync(this.path).mtimeMs;
      if (m !== this.mtimeMs) {
        this.mtimeMs = m;
        this.current = loadWebConfig(this.path);
        this.onReload(this.current);
      }
    } catch (e) {
      this.onError(e as Error); // keep serving with the last good configuration
    }
    return this.current;
  }
}
