// POSIX ACLs that let the unprivileged run-as user reach a root-only file (spec exporter.md §6, §15: the
// kubelet pod-resources socket). Node.js has no acl(5) API, so the `setfacl`/`getfacl` tools of the `acl`
// package do the work while the process is still root. Removal has to happen after the process has given
// up root, and also when it is killed or crashes, so a small root-held shell "watchdog" does it: it blocks
// reading a pipe whose only writer is this process and restores the ACLs when that pipe reaches EOF.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { realpathSync } from 'node:fs';
import type { Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { CommandError, runCommand } from './command.js';

export const ACL_COMMAND_TIMEOUT_MS = 5000;

export class AclError extends Error {
  override name = 'AclError';
}

/** A file and the access (subset of `rwx`) the user needs on it. */
export interface AclTarget {
  path: string;
  perms: string;
}

/** The parts of `getfacl -n -p` output the access check needs. */
export interface Acl {
  owner: number;
  group: number;
  /** `user:`, `user:<uid>`, `group:`, `group:<gid>`, `mask:`, `other:` → permissions such as `r-x`. */
  entries: Map<string, string>;
}

export function parseGetfacl(text: string): Acl {
  const acl: Acl = { owner: Number.NaN, group: Number.NaN, entries: new Map() };
  for (const raw of text.split('\n')) {
    const header = /^# (owner|group): (\d+)$/.exec(raw);
    if (header) acl[header[1] as 'owner' | 'group'] = Number(header[2]);
    const line = raw.replace(/\s*#.*$/, '');
    const m = /^(user|group|mask|other):([^:]*):([r-][w-][x-])$/.exec(line);
    if (m) acl.entries.set(`${m[1]}:${m[2]}`, m[3]!);
  }
  if (Number.isNaN(acl.owner) || Number.isNaN(acl.group) || !acl.entries.has('other:'))
    throw new AclError(`unexpected getfacl output: ${JSON.stringify(text.slice(0, 200))}`);
  return acl;
}

const has = (granted: string, wanted: string) => [...wanted].every((p) => granted.includes(p));
const and = (a: string, b: string) => [...a].map((c, i) => (c !== '-' && b[i] === c ? c : '-')).join('');
const union = (a: string, wanted: string) =>
  ['r', 'w', 'x'].map((c, i) => (a[i] === c || wanted.includes(c) ? c : '-')).join('');

/** The acl(5) access check algorithm for a process with this uid and these groups. */
export function hasAccess(acl: Acl, uid: number, gids: readonly number[], perms: string): boolean {
  const e = acl.entries;
  const mask = e.get('mask:') ?? 'rwx';
  if (uid === acl.owner) return has(e.get('user:')!, perms);
  const named = e.get(`user:${uid}`);
  if (named !== undefined) return has(and(named, mask), perms);
  const groups = [
    ...(gids.includes(acl.group) ? [e.get('group:')!] : []),
    ...gids.flatMap((g) => e.get(`group:${g}`) ?? []),
  ];
  if (groups.length > 0) return groups.some((g) => has(and(g, mask), perms));
  return has(e.get('other:')!, perms);
}

/** One `setfacl` invocation: option (`-m`, `-x`, `-nm`, `-nx`), ACL spec, path. */
export type SetfaclStep = readonly [option: string, spec: string, path: string];

export interface AclChange {
  path: string;
  grant: SetfaclStep;
  /** Steps that restore exactly what was there before `grant`. */
  undo: SetfaclStep[];
}

/**
 * What to change so that `uid` gets `perms` on `path`, or undefined when it already has them.
 * An existing entry of the user is widened (and restored at undo), never removed. A minimal ACL gets the
 * mask setfacl computes and loses it again at undo; an existing mask is only widened when it would hide
 * the new permissions (which also widens what named groups get through it, as with any ACL mask) and is
 * otherwise left untouched (`-n`: no recalculation).
 */
export function planChange(
  acl: Acl,
  path: string,
  uid: number,
  gids: readonly number[],
  perms: string,
): AclChange | undefined {
  if (hasAccess(acl, uid, gids, perms)) return undefined;
  const previous = acl.entries.get(`user:${uid}`);
  const entry = `u:${uid}:${union(previous ?? '---', perms)}`;
  const restoreEntry: SetfaclStep = previous
    ? ['-nm', `u:${uid}:${previous}`, path]
    : [acl.entries.has('mask:') ? '-nx' : '-x', `u:${uid}`, path];
  const mask = acl.entries.get('mask:');
  if (mask === undefined)
    return { path, grant: ['-m', entry, path], undo: [restoreEntry, ['-x', 'm::', path]] };
  if (has(mask, perms)) return { path, grant: ['-nm', entry, path], undo: [restoreEntry] };
  return {
    path,
    grant: ['-nm', `${entry},m::${union(mask, perms)}`, path],
    undo: [restoreEntry, ['-nm', `m::${mask}`, path]],
  };
}

/** The file itself with `perms` and `x` on every directory above it, also those behind symlinks. */
export function pathAccessTargets(file: string, perms: string): AclTarget[] {
  const abs = resolve(file);
  let real: string;
  try {
    real = realpathSync(abs);
  } catch (e) {
    throw new AclError(`cannot grant access to '${abs}': ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  const dirs = new Set<string>();
  for (const start of [abs, real]) {
    for (let d = dirname(start); ; d = dirname(d)) {
      dirs.add(realpathSync(d));
      if (d === dirname(d)) break;
    }
  }
  return [{ path: real, perms }, ...[...dirs].map((path) => ({ path, perms: 'x' }))];
}

export interface AclToolOptions {
  /** Defaults to `setfacl`/`getfacl` from $PATH. */
  setfacl?: string;
  getfacl?: string;
  timeoutMs?: number;
}

async function acltool(tool: string, args: string[], path: string, timeoutMs: number): Promise<string> {
  try {
    return (await runCommand([tool, ...args], { timeoutMs, env: { ...process.env, LC_ALL: 'C' } })).stdout;
  } catch (e) {
    if (e instanceof CommandError && e.startErrorCode === 'ENOENT')
      throw new AclError(`${tool} not found; install the acl package`);
    throw new AclError(`cannot change ACL of '${path}': ${(e as Error).message}`);
  }
}

const runStep = (setfacl: string, [option, spec, path]: SetfaclStep, timeoutMs: number) =>
  acltool(setfacl, [option, spec, '--', path], path, timeoutMs);

/**
 * Gives `uid` (running with groups `gids`) the access each target needs, adding only what it lacks.
 * On failure the changes made so far are undone and an AclError names the path and the tool's message.
 */
export async function grantAccess(
  uid: number,
  gids: readonly number[],
  targets: readonly AclTarget[],
  opts: AclToolOptions = {},
): Promise<AclChange[]> {
  const setfacl = opts.setfacl ?? 'setfacl';
  const getfacl = opts.getfacl ?? 'getfacl';
  const timeoutMs = opts.timeoutMs ?? ACL_COMMAND_TIMEOUT_MS;
  const done: AclChange[] = [];
  try {
    for (const t of targets) {
      const acl = parseGetfacl(await acltool(getfacl, ['-n', '-p', '--', t.path], t.path, timeoutMs));
      const change = planChange(acl, t.path, uid, gids, t.perms);
      if (!change) continue;
      await runStep(setfacl, change.grant, timeoutMs);
      done.push(change);
    }
    return done;
  } catch (e) {
    await revertAccess(done, opts).catch(() => undefined);
    throw e;
  }
}

/** Undoes `changes` (last first) directly; needs the privileges that made them. */
export async function revertAccess(changes: readonly AclChange[], opts: AclToolOptions = {}): Promise<void> {
  for (const c of [...changes].reverse())
    for (const step of c.undo)
      await runStep(opts.setfacl ?? 'setfacl', step, opts.timeoutMs ?? ACL_COMMAND_TIMEOUT_MS);
}

// Signals are ignored so that neither a Ctrl-C nor a kill of the exporter's group stops the restore; `read`
// returns at EOF, i.e. when the exporter closed the pipe or died. Paths arrive as positional arguments.
const RESTORE_SCRIPT = `trap '' INT TERM HUP
while read -r _; do :; done
setfacl=$1; shift
status=0
while [ $# -ge 3 ]; do
  "$setfacl" "$1" "$2" -- "$3" || status=1
  shift 3
done
exit $status`;

/** Keeps the ACL changes until `release()` or until this process exits, whichever comes first. */
export class AclLease {
  private released: Promise<void> | undefined;

  private constructor(
    readonly changes: readonly AclChange[],
    private readonly watchdog: ChildProcess | undefined,
  ) {}

  /**
   * Grants `targets` to `uid` and hands the removal to a root-held watchdog process (own session, not
   * waited for by Node.js) that restores the ACLs when this process closes the pipe or exits for any reason.
   */
  static async grant(
    uid: number,
    gids: readonly number[],
    targets: readonly AclTarget[],
    opts: AclToolOptions = {},
  ): Promise<AclLease> {
    const changes = await grantAccess(uid, gids, targets, opts);
    if (changes.length === 0) return new AclLease(changes, undefined);
    const args = [opts.setfacl ?? 'setfacl', ...[...changes].reverse().flatMap((c) => c.undo.flat())];
    const watchdog = spawn('/bin/sh', ['-c', RESTORE_SCRIPT, 'ceems-acl-restore', ...args], {
      detached: true,
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    try {
      await Promise.race([once(watchdog, 'spawn'), once(watchdog, 'error').then(([e]) => Promise.reject(e))]);
    } catch (e) {
      await revertAccess(changes, opts).catch(() => undefined);
      throw new AclError(`cannot start the ACL restore process: ${(e as Error).message}`);
    }
    watchdog.stdin!.on('error', () => undefined);
    (watchdog.stdin as Socket).unref();
    watchdog.unref();
    return new AclLease(changes, watchdog);
  }

  /** Pid of the restore process (undefined when nothing had to be granted). */
  get watchdogPid(): number | undefined {
    return this.watchdog?.pid;
  }

  /** Restores the ACLs now and waits (at most `timeoutMs`) until the restore process has finished. */
  release(timeoutMs = 2 * ACL_COMMAND_TIMEOUT_MS): Promise<void> {
    const w = this.watchdog;
    if (!w) return Promise.resolve();
    this.released ??= new Promise<void>((res, rej) => {
      const timer = setTimeout(
        () => rej(new AclError(`ACL restore process ${w.pid} did not finish in ${timeoutMs} ms`)),
        timeoutMs,
      );
      const finished = (code: number | null) => {
        clearTimeout(timer);
        if (code === 0) res();
        else rej(new AclError(`restoring ACLs failed (status ${code}); setfacl's message is logged above`));
      };
      if (w.exitCode !== null || w.signalCode !== null) finished(w.exitCode);
      else w.once('exit', finished);
      w.stdin!.destroy();
    });
    return this.released;
  }
}
