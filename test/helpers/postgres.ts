// A real PostgreSQL 15 (Debian's package) for the tests of the API server's PostgreSQL backend: one
// throw-away cluster per test file in a temp dir, on 127.0.0.1:<port>, stopped by pid.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { waitFor } from './wait.js';

const BIN = '/usr/lib/postgresql/15/bin';
/** initdb refuses to run as root: the cluster belongs to Debian's `postgres` user. */
const OWNER = 'postgres';
const ownerId = (flag: '-u' | '-g') => Number(execFileSync('id', [flag, OWNER], { encoding: 'utf8' }).trim());

export interface PostgresServer {
  /** libpq URL of database `db` (superuser `postgres`, password `test`). */
  url(db?: string): string;
  /** Creates an empty database (a fresh one per test keeps tests apart). */
  createDatabase(name: string): Promise<void>;
  /** pid of the postmaster (tests that kill it). */
  pid: number;
  /** Everything the server logged so far. */
  log(): string;
  stop(): Promise<void>;
}

const PASSWORD = 'test';

/**
 * Starts a fresh cluster on 127.0.0.1:`port`; resolves once it accepts connections. `tls`: the server's
 * certificate and key (PEM files), TLS then offered on the same port.
 */
export async function startPostgres(opts: {
  port: number;
  tls?: { cert: string; key: string };
}): Promise<PostgresServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-pg-'));
  const data = join(dir, 'data');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, PASSWORD);
  // Run as the owner directly (spawn's uid/gid, like runuser) so that the pid we hold is the postmaster's.
  const owner = { uid: ownerId('-u'), gid: ownerId('-g') };
  chownSync(dir, owner.uid, owner.gid);
  chownSync(pwfile, owner.uid, owner.gid);
  try {
    execFileSync(
      `${BIN}/initdb`,
      [
        '-D',
        data,
        '-U',
        'postgres',
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
      ],
      { ...owner, stdio: 'pipe', cwd: dir },
    );
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`initdb failed: ${err.stderr?.toString() ?? err.message}`);
  }
  const args = [
    '-D',
    data,
    '-h',
    '127.0.0.1',
    '-p',
    String(opts.port),
    '-k',
    dir,
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=100',
  ];
  if (opts.tls) {
    // PostgreSQL wants the key owned by its user and not readable by others
    for (const [from, name] of [
      [opts.tls.cert, 'server.crt'],
      [opts.tls.key, 'server.key'],
    ] as const) {
      copyFileSync(from, join(dir, name));
      chownSync(join(dir, name), owner.uid, owner.gid);
      chmodSync(join(dir, name), 0o600);
    }
    args.push('-c', 'ssl=on', '-c', `ssl_cert_file=${join(dir, 'server.crt')}`);
    args.push('-c', `ssl_key_file=${join(dir, 'server.key')}`);
  }
  const proc: ChildProcess = spawn(`${BIN}/postgres`, args, {
    ...owner,
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (log += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = once(proc, 'exit');
  const url = (db = 'postgres') => `postgres://postgres:${PASSWORD}@127.0.0.1:${opts.port}/${db}`;
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      // SIGQUIT: immediate shutdown (nothing to keep), the postmaster takes its children down.
      proc.kill('SIGQUIT');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const admin = postgres(url(), { max: 1, onnotice: () => {}, connect_timeout: 2 });
  try {
    await waitFor(
      `PostgreSQL on 127.0.0.1:${opts.port}`,
      30_000,
      async () => {
        if (proc.exitCode !== null) throw new Error(`postgres exited (${proc.exitCode}):\n${log}`);
        await admin`select 1`;
        return true;
      },
      200,
    );
  } catch (e) {
    await admin.end({ timeout: 0 });
    await stop();
    throw new Error(`${(e as Error).message}\nserver log:\n${log}`);
  }
  return {
    url,
    pid: proc.pid!,
    log: () => log,
    async createDatabase(name) {
      await admin.unsafe(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    },
    async stop() {
      await admin.end({ timeout: 0 });
      await stop();
    },
  };
}
