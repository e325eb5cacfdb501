// `config create-web-config` (cli.md §2.2): exporter-toolkit web config with a generated basic-auth password
// and, on request, a self-signed ECDSA P-256 certificate. Node's crypto cannot issue X.509 certificates, so
// the certificate is made by the `openssl` command (present on every distribution that ships Node).

import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import YAML from 'yaml';
import { loadWebConfig } from '../../common/webconfig.js';
import { CliError } from '../http.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
export const BASIC_AUTH_USER = 'ceems';

export function randomPassword(length = 24): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

export interface WebConfigOptions {
  basicAuth: boolean;
  tls: boolean;
  hosts: string[];
  validityMs: number;
  outputDir: string;
  openssl?: string;
}

export interface CreatedWebConfig {
  file: string;
  password?: string;
  certFile?: string;
  keyFile?: string;
}

function selfSignedCertificate(o: WebConfigOptions, certFile: string, keyFile: string): void {
  const san = o.hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  const days = Math.max(1, Math.ceil(o.validityMs / 86_400_000));
  const openssl = o.openssl ?? 'openssl';
  try {
    execFileSync(
      openssl,
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        String(days),
        '-subj',
        '/O=Acme Co',
        '-addext',
        `subjectAltName=${san}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,digitalSignature,keyCertSign',
        '-addext',
        'extendedKeyUsage=serverAuth',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 },
    );
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') {
      throw new CliError(
        `'${openssl}' not found: install OpenSSL to create TLS certificates (or run without --tls)`,
      );
    }
    throw new CliError(
      `openssl failed to create the certificate: ${err.stderr?.toString().trim() || err.message}`,
    );
  }
  chmodSync(keyFile, 0o600);
}

export function createWebConfig(o: WebConfigOptions): CreatedWebConfig {
  if (!o.basicAuth && !o.tls) throw new CliError('nothing to configure: enable --basic-auth and/or --tls');
  if (o.tls && o.hosts.length === 0) {
    throw new CliError(
      '--tls.host is required with --tls (repeat it for every host name or IP of the server)',
    );
  }
  mkdirSync(o.outputDir, { recursive: true });
  const config: Record<string, unknown> = {};
  const out: CreatedWebConfig = { file: join(o.outputDir, 'web-config.yml') };
  if (o.tls) {
    out.certFile = join(o.outputDir, 'cert.pem');
    out.keyFile = join(o.outputDir, 'key.pem');
    selfSignedCertificate(o, out.certFile, out.keyFile);
    config.tls_server_config = { cert_file: 'cert.pem', key_file: 'key.pem' };
  }
  if (o.basicAuth) {
    out.password = randomPassword();
    config.basic_auth_users = { [BASIC_AUTH_USER]: bcrypt.hashSync(out.password, 10) };
  }
  writeFileSync(out.file, YAML.stringify(config), { mode: 0o640 });
  loadWebConfig(out.file); // what we wrote must be what the servers accept
  return out;
}
