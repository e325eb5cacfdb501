// Grafana Alloy targets discoverer (spec exporter.md §13): one target per process of every SLURM job or
// Kubernetes pod, served as JSON for Alloy's `discovery.http` → `pyroscope.ebpf`.

import type { FlagSpec } from '../common/flags.js';
import type { Logger } from '../common/logger.js';
import { type CgroupLayout, layoutOptions, managerLayout } from './cgroup/layout.js';
import { UnitWalker } from './cgroup/walk.js';
import type { CollectorContext } from './collector.js';
import { hasEnvVarPrefix } from './proc.js';

export const DISCOVERER_FLAGS: readonly FlagSpec[] = [
  {
    name: 'discoverer.alloy-targets',
    type: 'bool',
    default: false,
    help: 'Enable Grafana Alloy targets discoverer. Supported for SLURM and k8s.',
  },
  {
    name: 'discoverer.alloy-targets.env-var',
    type: 'string',
    repeatable: true,
    help: 'Enable continuous profiling by Grafana Alloy only on the processes having any of these environment variables.',
  },
  {
    name: 'discoverer.alloy-targets.self-profiler',
    type: 'bool',
    default: false,
    help: 'Enable continuous profiling by Grafana Alloy on current process.',
  },
];

export interface AlloyTarget {
  targets: string[];
  labels: Record<string, string>;
}

export const SELF_TARGET = '__internal_ceems_exporter';

export interface TargetDiscovererOptions {
  layout: CgroupLayout;
  procfs: string;
  /** Keep only processes having an environment variable with one of these name prefixes. */
  envVars: readonly string[];
  selfProfiler: boolean;
  logger: Logger;
}

export class TargetDiscoverer {
  /** Keeps the cgroup tree's directory structure between requests (created by the first). */
  private walker: UnitWalker | undefined;

  constructor(private readonly o: TargetDiscovererOptions) {}

  /** Reading other users' environ for the env-var filter needs these (spec §15). */
  get capabilities(): readonly string[] {
    return this.o.envVars.length > 0 ? ['cap_sys_ptrace', 'cap_dac_read_search'] : [];
  }

  /** Targets in discovery order; stale units have no processes, hence no targets. */
  discover(): AlloyTarget[] {
    const targets: AlloyTarget[] = [];
    this.walker ??= new UnitWalker(this.o.layout, this.o.procfs);
    for (const u of this.walker.walk()) {
      for (const pid of u.pids) {
        if (this.o.envVars.length > 0 && !this.selected(pid)) continue;
        targets.push({ targets: [u.id], labels: { __process_pid__: String(pid), service_name: u.uuid } });
      }
    }
    if (this.o.selfProfiler)
      targets.push({
        targets: [SELF_TARGET],
        labels: { __process_pid__: String(process.pid), service_name: SELF_TARGET },
      });
    return targets;
  }

  /** Env-var filter; unreadable processes (exited, no permission) are not selected. */
  private selected(pid: number): boolean {
    try {
      return hasEnvVarPrefix(this.o.procfs, pid, this.o.envVars, this.o.layout.manager === 'slurm');
    } catch (e) {
      this.o.logger.debug({ pid, err: (e as Error).message }, 'cannot read process; not a target');
      return false;
    }
  }

  /** HTTP answer of the targets path: JSON array (or `null`) + newline, or the error text with 500. */
  respond(): { status: number; type: string; body: string } {
    try {
      const t = this.discover();
      return { status: 200, type: 'application/json', body: `${JSON.stringify(t.length > 0 ? t : null)}\n` };
    } catch (e) {
      this.o.logger.error({ err: (e as Error).message }, 'cannot gather Alloy targets');
      return {
        status: 500,
        type: 'text/plain; charset=utf-8',
        body: `An error has occurred while gathering targets:\n\n${(e as Error).message}`,
      };
    }
  }
}

/**
 * The discoverer when `--discoverer.alloy-targets` is set and the slurm (preferred) or k8s collector is
 * enabled; otherwise undefined (silently disabled).
 */
export function createTargetDiscoverer(
  ctx: CollectorContext,
  enabledCollectors: readonly string[],
): TargetDiscoverer | undefined {
  if (!ctx.flags.bool('discoverer.alloy-targets')) return undefined;
  const manager = enabledCollectors.includes('slurm')
    ? 'slurm'
    : enabledCollectors.includes('k8s')
      ? 'k8s'
      : undefined;
  if (!manager) {
    ctx.logger.debug('Alloy targets discoverer needs the slurm or k8s collector; disabled');
    return undefined;
  }
  return new TargetDiscoverer({
    layout: managerLayout(manager, layoutOptions(ctx.cgroupfs, ctx.flags)),
    procfs: ctx.procfs,
    envVars: ctx.flags.strings('discoverer.alloy-targets.env-var'),
    selfProfiler: ctx.flags.bool('discoverer.alloy-targets.self-profiler'),
    logger: ctx.logger,
  });
}
