// Dropping root after start-up (spec exporter.md §15, D-EXP-17). Node.js cannot keep Linux capabilities
// across setuid (no prctl/capset), so a process whose features need capabilities stays root and says so.

import { readFileSync } from 'node:fs';
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
      `Keeping root privileges: these features need Linux capabilities, which Node.js cannot retain after switching to user ${target.name}`,
    );
    return 'root';
  }
  process.setgroups?.([target.gid]);
  process.setgid?.(target.gid);
  process.setuid?.(target.uid);
  log.info({ user: target.name, uid: target.uid }, 'Dropped root privileges');
  return target.name;
}
