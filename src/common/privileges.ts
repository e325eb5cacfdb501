// Dropping root after start-up (spec exporter.md §15, D-EXP-17). Keeping Linux capabilities across the user
// switch needs prctl(PR_SET_KEEPCAPS) and capset, which Node.js reaches only through an FFI library; until
// that system-call module exists, a process whose features need capabilities stays root and says so.

import { readFileSync } from 'node:fs';
import { AclLease, type AclTarget, pathAccessTargets } from './acl.js';
import type { Logger } from './logger.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

/** Looks a user up by name or numeric uid in /etc/passwd. */
export function lookupUser(nameOrUid: string, passwd = '/etc/passwd'): PasswdEntry | undefined {
  for (const line of readFileSync(passwd, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f.length < 4) continue;
    if (f[0] === nameOrUid || f[2] === nameOrUid)
      return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

export interface DropOptions {
  dropPrivileges: boolean;
  /** Capabilities the enabled features need, by feature name. */
  needed: Record<string, readonly string[]>;
  logger: Logger;
}

/** The user to switch to, resolved before the server starts so that a typo fails start-up cleanly. */
export function resolveRunAsUser(runAsUser: string): PasswdEntry | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const target = runAsUser || 'nobody';
  const entry = lookupUser(target);
  if (!entry) throw new Error(`--security.run-as-user: user '${target}' not found`);
  return entry;
}

/** The non-root user a root process will switch to, or undefined when it keeps its user. */
export function dropTarget(entry: PasswdEntry | undefined, dropEnabled: boolean): PasswdEntry | undefined {
  return entry && dropEnabled && entry.uid !== 0 ? entry : undefined;
}

/** Switches to `entry` unless a feature needs capabilities; returns the user the process runs as. */
export function dropPrivileges(entry: PasswdEntry | undefined, opts: DropOptions): string {
  const log = opts.logger;
  const target = dropTarget(entry, opts.dropPrivileges);
  if (!target) return String(process.getuid?.());
  const needing = Object.entries(opts.needed).filter(([, caps]) => caps.length > 0);
  if (needing.length > 0) {
    log.warn(
      {
        features: needing.map(([f]) => f).join(','),
        capabilities: [...new Set(needing.flatMap(([, c]) => c))].join(','),
      },
      `Keeping root privileges: these features need Linux capabilities, and keeping them across the switch to user ${target.name} (prctl/capset) is not implemented yet`,
    );
    return 'root';
  }
  process.setgroups?.([target.gid]);
  process.setgid?.(target.gid);
  process.setuid?.(target.uid);
  log.info({ user: target.name, uid: target.uid }, 'Dropped root privileges');
  return target.name;
}

/**
 * Read access for the run-as user, through POSIX ACLs set while still root (spec exporter.md §15), to files
 * the process re-reads after switching: the web config and the TLS files it names are reloaded when they
 * change. Only when the switch will happen (no feature needs capabilities). Failures are logged, not fatal:
 * the files were read at start-up, only a later reload would fail. Release the lease at shutdown.
 */
export async function grantRunAsReadAccess(
  entry: PasswdEntry | undefined,
  files: readonly string[],
  opts: DropOptions,
): Promise<AclLease | undefined> {
  const target = dropTarget(entry, opts.dropPrivileges);
  if (!target || files.length === 0 || Object.values(opts.needed).some((caps) => caps.length > 0)) return;
  try {
    const targets = new Map<string, AclTarget>();
    for (const t of files.flatMap((f) => pathAccessTargets(f, 'r'))) targets.set(`${t.path}\0${t.perms}`, t);
    const lease = await AclLease.grant(target.uid, [target.gid], [...targets.values()]);
    if (lease.changes.length > 0)
      opts.logger.info(
        { user: target.name, files: files.join(','), acl_entries_added: lease.changes.length },
        'Run-as user can read these files through ACLs',
      );
    return lease;
  } catch (e) {
    opts.logger.warn(
      { user: target.name, files: files.join(','), err: (e as Error).message },
      'Cannot grant the run-as user read access to these files; reloading them after the switch will fail',
    );
    return undefined;
  }
}

/** Restores what a lease granted (at shutdown); a failure is logged, not thrown. */
export async function releaseAccess(lease: AclLease | undefined, what: string, log: Logger): Promise<void> {
  await lease
    ?.release()
    .catch((e) => log.warn({ err: (e as Error).message }, `Removing the ${what} ACLs failed`));
}
