// ceems_exporter entry point: flags, collector set-up, HTTP server, graceful shutdown.

import { existsSync } from 'node:fs';
import { hostname as osHostname, release } from 'node:os';
import { join, resolve } from 'node:path';
import { AclLease, pathAccessTargets } from '../common/acl.js';
import { buildInfo } from '../common/buildinfo.js';
import type { MetricFamily } from '../common/exposition.js';
import type { FlagSpec, ParsedFlags } from '../common/flags.js';
import type { PlainServer } from '../common/httpserver.js';
import type { Logger } from '../common/logger.js';
import {
  type CapabilityNeeds,
  dropPrivileges,
  dropTarget,
  grantRunAsReadAccess,
  type RunAsUser,
  releaseAccess,
  resolveRunAsUser,
} from '../common/privileges.js';
import { DEBUG_SERVER_FLAG, PRIVILEGE_FLAGS, runServerProgram, SERVER_FLAGS } from '../common/program.js';
import type { CollectorContext, CollectorDefinition } from './collector.js';
import { COLLECTORS } from './collectors/index.js';
import { createTargetDiscoverer, DISCOVERER_FLAGS } from './discoverer.js';
import { ebpfCapabilities } from './ebpf/flags.js';
import { serveExporter } from './http.js';
import { podResourcesSocket, podResourcesSocketsInUse } from './k8s/flags.js';
import { perfCapabilities } from './perf/flags.js';
import { rdmaCapabilities } from './rdma/flags.js';
import { type NamedCollector, scrape } from './scrape.js';
import { SelfMetrics } from './selfmetrics.js';
import { refuseUnavailable, UNAVAILABLE_FLAGS } from './unavailable.js';

const PROGRAM = 'ceems_exporter';
const DESCRIPTION =
  'Prometheus Exporter to export compute (job, VM, pod) resource usage, energy and emission metrics.';

export const CORE_FLAGS: readonly FlagSpec[] = [
  ...SERVER_FLAGS,
  DEBUG_SERVER_FLAG,
  ...PRIVILEGE_FLAGS,
  {
    name: 'web.listen-address',
    type: 'string',
    repeatable: true,
    default: [':9010'],
    help: 'Addresses on which to expose metrics and web interface. Repeatable for multiple addresses.',
  },
  {
    name: 'web.config.file',
    type: 'string',
    default: '',
    env: 'CEEMS_EXPORTER_WEB_CONFIG_FILE',
    help: 'Path to configuration file that can enable TLS or authentication.',
  },
  {
    name: 'web.telemetry-path',
    type: 'string',
    default: '/metrics',
    help: 'Path under which to expose metrics.',
  },
  {
    name: 'web.targets-path',
    type: 'string',
    default: '/alloy-targets',
    help: 'Path under which to expose Grafana Alloy targets.',
  },
  {
    name: 'web.disable-exporter-metrics',
    type: 'bool',
    default: false,
    help: 'Exclude metrics about the exporter itself (process_*, nodejs_*, promhttp_*).',
  },
  {
    name: 'web.max-requests',
    type: 'int',
    default: '40',
    help: 'Maximum number of parallel scrape requests. Use 0 to disable.',
  },
  {
    name: 'security.run-as-user',
    type: 'string',
    default: '',
    help: 'User to run the exporter as after start-up (default: nobody when started as root).',
  },
  {
    name: 'collector.disable-defaults',
    type: 'bool',
    default: false,
    help: 'Set all collectors to disabled by default.',
  },
  {
    name: 'collector.timeout',
    type: 'duration',
    default: '10s',
    help: "Longest time one collector may take in a scrape (capped by the scraper's X-Prometheus-Scrape-Timeout-Seconds).",
  },
  {
    name: 'collector.empty-hostname-label',
    type: 'bool',
    default: false,
    hidden: true,
    help: 'Use an empty hostname label on every metric.',
  },
  { name: 'path.procfs', type: 'string', default: '/proc', hidden: true, help: 'procfs mountpoint.' },
  { name: 'path.sysfs', type: 'string', default: '/sys', hidden: true, help: 'sysfs mountpoint.' },
  {
    name: 'path.cgroupfs',
    type: 'string',
    default: '/sys/fs/cgroup',
    hidden: true,
    help: 'cgroupfs mountpoint.',
  },
];

function collectorFlag(def: CollectorDefinition): FlagSpec {
  return {
    name: `collector.${def.name}`,
    type: 'bool',
    default: def.defaultEnabled,
    help: `Enable the ${def.name} collector (default: ${def.defaultEnabled ? 'enabled' : 'disabled'}).`,
  };
}

export function allFlags(defs: readonly CollectorDefinition[] = COLLECTORS): FlagSpec[] {
  return [
    ...CORE_FLAGS,
    ...DISCOVERER_FLAGS,
    ...defs.map(collectorFlag),
    ...defs.flatMap((d) => d.flags),
    ...UNAVAILABLE_FLAGS,
  ];
}

/** Collectors switched on: defaults unless `--collector.disable-defaults`, then only explicit ones. */
export function enabledCollectors(
  flags: ParsedFlags,
  defs: readonly CollectorDefinition[] = COLLECTORS,
): CollectorDefinition[] {
  const disableDefaults = flags.bool('collector.disable-defaults');
  return defs.filter((d) => {
    const flag = `collector.${d.name}`;
    if (disableDefaults && !flags.isSet(flag)) return false;
    return flags.bool(flag);
  });
}

/** The kubelet pod-resources socket when a client (the k8s collector with GPUs, §6) uses it and it exists. */
export function kubeletSocketInUse(ctx: CollectorContext): string | undefined {
  const socket = resolve(podResourcesSocket(ctx.flags));
  return podResourcesSocketsInUse().has(socket) && existsSync(socket) ? socket : undefined;
}

/**
 * Capabilities each collector needs on this node (spec §15); empty when the data needs none here.
 * `kubeletAclGranted`: the run-as user already got ACLs on the kubelet socket.
 */
export function neededCapabilities(
  names: readonly string[],
  ctx: CollectorContext,
  kubeletAclGranted = false,
): Record<string, readonly string[]> {
  const [major = 0, minor = 0] = release().split('.').map(Number);
  const raplRootOnly =
    (major > 5 || (major === 5 && minor >= 10)) && existsSync(join(ctx.sysfs, 'class/powercap'));
  const table: Record<string, readonly string[]> = {
    slurm: ['cap_sys_ptrace', 'cap_dac_read_search'],
    libvirt: ['cap_dac_read_search'],
    rapl: raplRootOnly ? ['cap_dac_read_search'] : [],
    ipmi_dcmi: ['cap_setuid', 'cap_setgid'],
    // The root-only kubelet socket is reached through ACLs for the run-as user (§6); only when those could
    // not be set does the process keep DAC override.
    k8s: kubeletSocketInUse(ctx) && !kubeletAclGranted ? ['cap_dac_override'] : [],
  };
  const needs: Record<string, readonly string[]> = Object.fromEntries(names.map((n) => [n, table[n] ?? []]));
  // the rdma sub-collector runs inside the compute-unit collectors (it switches Mellanox QP counters on)
  if (names.some((n) => n === 'slurm' || n === 'libvirt' || n === 'k8s')) {
    needs.rdma = rdmaCapabilities(ctx.flags, ctx.sysfs);
    const perf = perfCapabilities(ctx.flags); // listed only when on: perf is off unless asked for
    if (perf.length > 0) needs.perf = perf;
    const ebpf = ebpfCapabilities(ctx.flags);
    if (ebpf.length > 0) needs.ebpf = ebpf;
  }
  return needs;
}

/**
 * What the tools run as uid 0 need beyond the exporter's own capabilities (bounding set only, see
 * privileges.ts): `rdma statistic qp set` is a netlink admin command (RDMA_NL_ADMIN_PERM: cap_net_admin).
 */
export function childCapabilities(needed: CapabilityNeeds): CapabilityNeeds {
  return (needed.rdma?.length ?? 0) > 0 ? { rdma: ['cap_net_admin'] } : {};
}

/**
 * Grants the run-as user access to the kubelet socket through ACLs (spec §6, §15) when root is about to be
 * dropped. On failure it warns and returns undefined: the process then keeps cap_dac_override instead.
 */
export async function grantKubeletSocketAccess(
  runAs: RunAsUser | undefined,
  ctx: CollectorContext,
): Promise<AclLease | undefined> {
  const target = dropTarget(runAs, ctx.flags.bool('security.drop-privileges'));
  const socket = kubeletSocketInUse(ctx);
  if (!target || !socket) return undefined;
  try {
    const lease = await AclLease.grant(target.uid, [target.gid], pathAccessTargets(socket, 'rw'));
    ctx.logger.info(
      { socket, user: target.name, acl_entries_added: lease.changes.length, restore_pid: lease.watchdogPid },
      'Run-as user has access to the kubelet pod-resources socket through ACLs',
    );
    return lease;
  } catch (e) {
    ctx.logger.warn(
      { socket, err: (e as Error).message },
      'Cannot grant the run-as user access to the kubelet pod-resources socket',
    );
    return undefined;
  }
}

export interface Exporter {
  server: PlainServer;
  addresses: string[];
  stop(): Promise<void>;
}

const LANDING = (telemetry: string, targets: string | undefined) => `<!DOCTYPE html>
<html lang="en">
<head><meta charset="UTF-8"><title>${PROGRAM}</title>
<style>body{font-family:sans-serif;margin:0}header{background:#3cc9beff;padding:1em}main{padding:1em}</style></head>
<body><header><h1>${PROGRAM}</h1></header><main>
<p>${DESCRIPTION}</p><p>Version: ${buildInfo.version} (revision ${buildInfo.revision})</p>
<ul><li><a href="${telemetry}">Metrics</a></li>${targets ? `<li><a href="${targets}">Grafana Alloy Targets</a></li>` : ''}</ul>
</main></body></html>
`;

function buildInfoFamily(): MetricFamily {
  return {
    name: 'ceems_exporter_build_info',
    type: 'gauge',
    help: "A metric with a constant '1' value labeled by version, revision, branch, goversion from which ceems_exporter was built, and the goos and goarch for the build.",
    samples: [
      {
        labels: {
          branch: buildInfo.branch,
          goarch: buildInfo.goarch,
          goos: buildInfo.goos,
          goversion: buildInfo.goversion,
          revision: buildInfo.revision,
          tags: buildInfo.tags,
          version: buildInfo.version,
        },
        value: 1,
      },
    ],
  };
}

export async function startExporter(flags: ParsedFlags, log: Logger): Promise<Exporter> {
  refuseUnavailable(flags);
  const host = flags.bool('collector.empty-hostname-label') ? '' : process.env.NODE_NAME || osHostname();
  const ctx: CollectorContext = {
    hostname: host,
    procfs: flags.string('path.procfs'),
    sysfs: flags.string('path.sysfs'),
    cgroupfs: flags.string('path.cgroupfs'),
    flags,
    logger: log,
  };

  const runAs = resolveRunAsUser(flags.string('security.run-as-user'));
  const defs = enabledCollectors(flags);
  const collectors: NamedCollector[] = [];
  for (const d of defs) {
    try {
      collectors.push({
        name: d.name,
        collector: await d.create({ ...ctx, logger: log.child({ collector: d.name }) }),
      });
    } catch (e) {
      throw new Error(`couldn't create collector '${d.name}': ${(e as Error).message}`);
    }
    log.info({ collector: d.name }, 'Collector enabled');
  }
  const discoverer = createTargetDiscoverer(
    { ...ctx, logger: log.child({ component: 'discoverer' }) },
    defs.map((d) => d.name),
  );

  const self = new SelfMetrics(!flags.bool('web.disable-exporter-metrics'));
  const telemetryPath = flags.string('web.telemetry-path');
  const targetsPath = discoverer ? flags.string('web.targets-path') : undefined;
  // aborted at shutdown: scrapes in flight answer at once instead of holding back the server's close
  const stopping = new AbortController();
  const server = await serveExporter({
    listenAddresses: flags.strings('web.listen-address'),
    webConfigFile: flags.string('web.config.file') || undefined,
    logger: log,
    telemetryPath,
    targetsPath,
    maxRequests: flags.number('web.max-requests'),
    timeoutMs: flags.number('collector.timeout'),
    landing: telemetryPath === '/' ? undefined : LANDING(telemetryPath, targetsPath),
    self,
    async collect(budgetMs) {
      const families: MetricFamily[] = await scrape(collectors, budgetMs, log, stopping.signal);
      families.push(buildInfoFamily());
      return families;
    },
    ...(discoverer ? { targets: () => discoverer.respond() } : {}),
  });

  const addresses = await server.listen();
  const names = collectors.map((c) => c.name);
  const otherNeeds: Record<string, readonly string[]> = discoverer
    ? { discoverer: discoverer.capabilities }
    : {};
  // ACLs while still root, then the switch (spec §15)
  const kubeletAcl = await grantKubeletSocketAccess(runAs, ctx);
  const needed = { ...neededCapabilities(names, ctx, kubeletAcl !== undefined), ...otherNeeds };
  const drop = {
    dropPrivileges: flags.bool('security.drop-privileges'),
    needed,
    children: childCapabilities(needed),
    logger: log,
  };
  const webConfigFile = flags.string('web.config.file');
  const webConfigAcl = await grantRunAsReadAccess(
    runAs,
    // the web config reader (yaml, zod, bcrypt) loads only with a web config file
    webConfigFile ? (await import('../common/webconfig.js')).webConfigFiles(webConfigFile) : [],
    drop,
  );
  try {
    await dropPrivileges(runAs, drop);
  } catch (e) {
    await releaseAccess(kubeletAcl, 'kubelet socket', log);
    await releaseAccess(webConfigAcl, 'web config', log);
    await server.close();
    throw e;
  }
  return {
    server,
    addresses,
    async stop() {
      stopping.abort();
      await server.close();
      self.stop();
      for (const c of collectors) {
        try {
          await c.collector.stop?.();
        } catch (e) {
          log.warn({ collector: c.name, err: (e as Error).message }, 'collector stop failed');
        }
      }
      // after the collectors: the gRPC connection to the kubelet is closed by then (§12.2)
      await releaseAccess(kubeletAcl, 'kubelet socket', log);
      await releaseAccess(webConfigAcl, 'web config', log);
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  return runServerProgram(
    { name: PROGRAM, description: DESCRIPTION, flags: allFlags(), start: startExporter },
    argv,
  );
}
