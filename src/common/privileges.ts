// Least privilege for every server (spec exporter.md §15 and D-EXP-17, api-server.md §4, lb.md §2): a process
// started as root switches to --security.run-as-user keeping exactly the capabilities its enabled features
// need; one started unprivileged with capabilities already granted (systemd AmbientCapabilities=) keeps the
// needed ones and drops the rest. Nothing stays root, and a failed switch stops start-up. Design and measured
// sets per program: docs/privileges.md.
//
// Capabilities are per thread in Linux, and capset(2) only acts on the calling thread. The switch runs on the
// main thread: glibc applies setgroups/setgid/setuid to every thread, but only the main thread set
// PR_SET_KEEPCAPS, so the main thread ends with the kept capabilities and every other thread (V8 platform
// workers, the libuv pool, worker_threads started before the switch) with none. That is on purpose and
// stricter: every privileged action of these programs runs on the main thread (collectors read files
// synchronously, see fsread.ts; child processes are forked from it; perf_event_open is called from it). The
// libuv pool is started before the switch so that this holds on every run: an asynchronous fs call on a
// root-only file fails with EACCES, always. A thread started after the switch would inherit the main
// thread's set, so none of these programs starts one afterwards.
//
// Tools that need root (IPMI DCMI tools, rdma, sacct) are spawned from the main thread as uid 0 through
// cap_setuid/cap_setgid (rootCommandOptions). A uid-0 program gets the whole bounding set at exec, so the
// bounding set is limited to the union of what this process and those tools need. No child tool runs
// unprivileged with capabilities, so the ambient and inheritable sets are always emptied.

import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { AclLease, type AclTarget, pathAccessTargets } from './acl.js';
import type { Logger } from './logger.js';
import {
  capabilityMask,
  capabilityNames,
  getAmbientSet,
  getBoundingSet,
  getCapabilities,
  groupList,
  limitBoundingSet,
  lookupUser,
  setAmbientSet,
  setCapabilities,
  setGid,
  setGroups,
  setKeepCapabilities,
  setUid,
} from './syscall.js';

export interface RunAsUser {
  name: string;
  uid: number;
  gid: number;
}

/** Capability names by feature (collector, sub-collector, resource manager…). */
export type CapabilityNeeds = Readonly<Record<string, readonly string[]>>;

export interface DropOptions {
  dropPrivileges: boolean;
  /** Capabilities the enabled features need in this process, by feature name. */
  needed: CapabilityNeeds;
  /**
   * Capabilities that tools run as uid 0 need beyond `needed`, by feature: kept in the bounding set only
   * (e.g. cap_net_admin for `rdma statistic qp set`), never in this process.
   */
  children?: CapabilityNeeds;
  logger: Logger;
}

export class PrivilegeError extends Error {
  override name = 'PrivilegeError';
}

/** The user to switch to, resolved before the server starts so that a typo fails start-up cleanly. */
export function resolveRunAsUser(runAsUser: string): RunAsUser | undefined {
  if (process.geteuid?.() !== 0) return undefined;
  const target = runAsUser || 'nobody';
  const entry = lookupUser(target);
  if (!entry) throw new Error(`--security.run-as-user: user '${target}' not found`);
  return { name: entry.name, uid: entry.uid, gid: entry.gid };
}

/** The non-root user a root process will switch to, or undefined when it keeps its user. */
export function dropTarget(entry: RunAsUser | undefined, dropEnabled: boolean): RunAsUser | undefined {
  return entry && dropEnabled && entry.uid !== 0 ? entry : undefined;
}

const union = (needs: CapabilityNeeds | undefined) => capabilityMask(Object.values(needs ?? {}).flat());
const list = (mask: bigint) => capabilityNames(mask).join(',') || 'none';

/** Warns once per feature that needs capabilities this process cannot have. */
function warnMissing(needs: CapabilityNeeds, available: bigint, how: string, log: Logger): void {
  for (const [feature, caps] of Object.entries(needs)) {
    const missing = capabilityNames(capabilityMask(caps) & ~available);
    if (missing.length > 0)
      log.warn(
        { feature, missing: missing.join(',') },
        `Feature ${feature} lacks capabilities it needs and will fail where it uses them; ${how}`,
      );
  }
}

/** What the process runs with once privileges are settled. */
export interface PrivilegeState {
  user: string;
  uid: number;
  /** Effective = permitted set of the main thread. */
  capabilities: bigint;
}

/** A capability set of the main thread from /proc, read without loading the FFI library. */
function procCapabilities(set: 'CapPrm' | 'CapEff'): bigint {
  const m = new RegExp(`^${set}:\\s*([0-9a-f]+)$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

function current(): PrivilegeState {
  return {
    user: lookupUser(String(process.getuid?.()))?.name ?? String(process.getuid?.()),
    uid: process.getuid?.() ?? -1,
    capabilities: getCapabilities().effective,
  };
}

/** Names the failing call and errno; start-up then stops instead of running with the wrong privileges. */
function step<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new PrivilegeError(`${what}: ${(e as Error).message}`);
  }
}

/**
 * Root → `target`, keeping `keep` in the main thread and `keep | children` in the bounding set (see the
 * header comment for why the other threads end with nothing).
 */
async function switchUser(target: RunAsUser, keep: bigint, children: bigint): Promise<void> {
  await stat('/'); // starts the libuv pool now, so its threads never hold a capability
  const what = `cannot switch to user ${target.name} (uid ${target.uid})`;
  const groups = step(what, () => groupList(target.name, target.gid));
  step(what, () => limitBoundingSet(keep | children));
  step(what, () => setKeepCapabilities(true));
  step(what, () => setGroups(groups));
  step(what, () => setGid(target.gid));
  step(what, () => setUid(target.uid));
  step(what, () => setKeepCapabilities(false));
  step(what, () => setCapabilities({ effective: keep, permitted: keep, inheritable: 0n }));
  const now = getCapabilities();
  if (process.getuid?.() !== target.uid || process.geteuid?.() !== target.uid || now.effective !== keep)
    throw new PrivilegeError(
      `${what}: running as uid ${process.geteuid?.()} with ${list(now.effective)} afterwards`,
    );
}

/** Unprivileged start: keeps `keep` (already checked to be permitted) and drops every other capability. */
function reduceCapabilities(keep: bigint, children: bigint): bigint {
  const now = getCapabilities();
  const what = 'cannot drop the capabilities no enabled feature needs';
  if ((now.effective >> 8n) & 1n) step(what, () => limitBoundingSet(keep | children)); // cap_setpcap
  if (getAmbientSet() !== 0n) step(what, () => setAmbientSet(0n));
  if (now.effective !== keep || now.permitted !== keep || now.inheritable !== 0n)
    step(what, () => setCapabilities({ effective: keep, permitted: keep, inheritable: 0n }));
  return now.permitted & ~keep;
}

/**
 * Settles the privileges of a server after start-up (ports bound, files read, ACLs granted): the one place
 * where any program of the stack switches user or changes its capabilities. Throws a PrivilegeError naming
 * the failed call and errno when the switch cannot be made as asked.
 */
export async function dropPrivileges(
  entry: RunAsUser | undefined,
  opts: DropOptions,
): Promise<PrivilegeState> {
  const log = opts.logger;
  const want = union(opts.needed);
  const children = union(opts.children);
  const euid = process.geteuid?.();
  if (euid === 0 && !dropTarget(entry, opts.dropPrivileges)) {
    log.warn(
      { user: 'root', capabilities: list(getCapabilities().effective) },
      opts.dropPrivileges
        ? 'Running as root: --security.run-as-user names root'
        : 'Running as root: --no-security.drop-privileges',
    );
    return current();
  }
  const how = 'grant them to the service (AmbientCapabilities=) or start it as root';
  if (euid !== 0 && procCapabilities('CapPrm') === 0n) {
    // an ordinary unprivileged process: nothing to keep or drop, and no FFI library to load
    warnMissing(opts.needed, 0n, how, log);
    return { user: userInfo().username, uid: process.getuid?.() ?? -1, capabilities: 0n };
  }
  const permitted = getCapabilities().permitted;
  const keep = want & permitted;
  if (euid === 0) {
    const target = dropTarget(entry, opts.dropPrivileges)!;
    warnMissing(opts.needed, permitted, 'root lacks them here (container or bounding set)', log);
    await switchUser(target, keep, children & getBoundingSet());
    const state = current();
    log.info(
      { user: state.user, uid: state.uid, capabilities: list(keep), bounding: list(getBoundingSet()) },
      'Dropped root privileges',
    );
    return state;
  }
  warnMissing(opts.needed, permitted, how, log);
  const dropped = reduceCapabilities(keep, children);
  const state = current();
  if (want !== 0n || dropped !== 0n)
    log.info(
      { user: state.user, capabilities: list(keep), dropped: list(dropped) },
      'Running with the capabilities the enabled features need',
    );
  return state;
}

/**
 * How a child tool that needs root is run from this process (called on the main thread, whose sets
 * /proc/self/status shows): `{}` when this process is root, as uid 0
 * (`{ uid: 0, gid: 0 }`) when it holds cap_setuid and cap_setgid, undefined when it can do neither (callers
 * then fall back to `sudo -n` or run the tool unprivileged). Decided at each call: collectors are created
 * before the switch.
 */
export function rootCommandOptions(): { uid?: number; gid?: number } | undefined {
  if (process.geteuid?.() === 0) return {};
  const setId = capabilityMask(['cap_setuid', 'cap_setgid']);
  return (procCapabilities('CapEff') & setId) === setId ? { uid: 0, gid: 0 } : undefined;
}

/**
 * Access for the run-as user, through POSIX ACLs set while still root (spec exporter.md §15, api-server.md §4),
 * to what the process uses after switching: `read` files (the web config and the TLS files it names are
 * reloaded when they change) and `write` directories (the API server's data paths), with search access on
 * every directory above them. Only when the switch will happen. Failures are logged, not fatal: what was
 * opened at start-up stays usable. Release the lease at shutdown.
 */
export async function grantRunAsAccess(
  entry: RunAsUser | undefined,
  access: { read?: readonly string[]; write?: readonly string[] },
  opts: Pick<DropOptions, 'dropPrivileges' | 'logger'>,
): Promise<AclLease | undefined> {
  const target = dropTarget(entry, opts.dropPrivileges);
  const files = [...(access.read ?? []), ...(access.write ?? [])];
  if (!target || files.length === 0) return;
  try {
    const targets = new Map<string, AclTarget>();
    const wanted = [
      ...(access.read ?? []).flatMap((f) => pathAccessTargets(f, 'r')),
      ...(access.write ?? []).flatMap((f) => pathAccessTargets(f, 'rwx')),
    ];
    for (const t of wanted) targets.set(`${t.path}\0${t.perms}`, t);
    const lease = await AclLease.grant(target.uid, [target.gid], [...targets.values()]);
    if (lease.changes.length > 0)
      opts.logger.info(
        { user: target.name, files: files.join(','), acl_entries_added: lease.changes.length },
        (access.write?.length ?? 0) > 0
          ? 'Run-as user can use these files and directories through ACLs'
          : 'Run-as user can read these files through ACLs',
      );
    return lease;
  } catch (e) {
    opts.logger.warn(
      { user: target.name, files: files.join(','), err: (e as Error).message },
      'Cannot grant the run-as user access to these files; using them after the switch will fail',
    );
    return undefined;
  }
}

/** Read access to `files` for the run-as user (grantRunAsAccess). */
export function grantRunAsReadAccess(
  entry: RunAsUser | undefined,
  files: readonly string[],
  opts: Pick<DropOptions, 'dropPrivileges' | 'logger'>,
): Promise<AclLease | undefined> {
  return grantRunAsAccess(entry, { read: files }, opts);
}

/**
 * The end of the start-up of a server that needs no capability once its ports are bound (LB, redfish_proxy,
 * admission controller): `listen`, then read access for the run-as user to `readFiles` (its web config and
 * the TLS files it names, re-read when they change), then the switch to that user keeping nothing. Resolves
 * to the server's stop: `close`, then that access taken back; a failure on the way runs it before throwing.
 */
export async function listenThenDrop(opts: {
  listen: () => Promise<unknown>;
  close: () => Promise<unknown>;
  runAs: RunAsUser | undefined;
  readFiles: readonly string[];
  dropEnabled: boolean;
  log: Logger;
}): Promise<{ stop(): Promise<void> }> {
  const { runAs, log } = opts;
  let lease: AclLease | undefined;
  const stop = async () => {
    await opts.close();
    await releaseAccess(lease, 'web config', log);
  };
  try {
    await opts.listen();
    const drop = { dropPrivileges: opts.dropEnabled, needed: {}, logger: log };
    lease = await grantRunAsReadAccess(runAs, opts.readFiles, drop);
    await dropPrivileges(runAs, drop);
  } catch (e) {
    await stop();
    throw e;
  }
  return { stop };
}

/** Restores what a lease granted (at shutdown); a failure is logged, not thrown. */
export async function releaseAccess(lease: AclLease | undefined, what: string, log: Logger): Promise<void> {
  await lease
    ?.release()
    .catch((e) => log.warn({ err: (e as Error).message }, `Removing the ${what} ACLs failed`));
}
