// The exporter's own metrics (spec D-EXP-14): process_* and nodejs_* under the names, types, HELP texts and
// labels of prom-client's default metrics (instead of Go's go_*), plus client_golang's promhttp_* handler
// families. Read at scrape time without prom-client, which cost 20 MB of RSS at start; its event-loop-delay
// histogram timer (every 10 ms: 0.6 % CPU of an otherwise idle exporter here) runs only while requests are
// served and shortly after, when there is delay to see.

import type { MetricFamily, Sample } from '../common/exposition.js';

const G = 'gauge';
const C = 'counter';
/** prom-client's default buckets of nodejs_gc_duration_seconds. */
const GC_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5];
/** How long the event-loop-delay timer keeps running after the last request (its late ticks land then). */
const MONITOR_LINGER_MS = 1000;

/** Counter with one label, pre-initialised values kept. */
class CodeCounter {
  readonly values = new Map<string, number>();
  inc(labels: { code: string }, by = 1): void {
    this.values.set(labels.code, (this.values.get(labels.code) ?? 0) + by);
  }
}

class InFlight {
  value = 0;
  inc(): void {
    this.value++;
  }
  dec(): void {
    this.value--;
  }
}

interface DelayHistogram {
  enable(): boolean;
  disable(): boolean;
  reset(): void;
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly stddev: number;
  percentile(p: number): number;
}

/** GC durations per kind, cumulative buckets as prom-client keeps them. */
class GcHistogram {
  readonly kinds = new Map<string, { buckets: number[]; sum: number; count: number }>();
  observe(kind: string, seconds: number): void {
    let h = this.kinds.get(kind);
    if (!h) {
      h = { buckets: GC_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.kinds.set(kind, h);
    }
    for (let i = 0; i < GC_BUCKETS.length; i++) if (seconds <= GC_BUCKETS[i]!) h.buckets[i]!++;
    h.sum += seconds;
    h.count++;
  }
}

function family(name: string, type: MetricFamily['type'], help: string, samples: Sample[]): MetricFamily {
  return { name, type, help, samples };
}

const one = (value: number): Sample[] => [{ labels: {}, value }];

/** Counts of `names` (resource types, constructor names) as `{type}` samples. */
function byType(names: Iterable<string>): Sample[] {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  return [...counts].map(([type, value]) => ({ labels: { type }, value }));
}

function constructorNames(list: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const o of list) {
    const name = (o as { constructor?: { name?: string } } | null)?.constructor?.name;
    if (name !== undefined) out.push(name);
  }
  return out;
}

/** VmSize, VmRSS and VmData of /proc/self/status in bytes. */
function procStatus(): { VmSize?: number; VmRSS?: number; VmData?: number } {
  const out: Record<string, number> = {};
  try {
    const text = process.getBuiltinModule('node:fs').readFileSync('/proc/self/status', 'utf8');
    for (const key of ['VmSize', 'VmRSS', 'VmData']) {
      const m = new RegExp(`^${key}:\\s*(\\d+) kB`, 'm').exec(text);
      if (m) out[key] = Number(m[1]) * 1024;
    }
  } catch {
    // not Linux: the families stay empty
  }
  return out;
}

function maxFds(): number | undefined {
  try {
    const limits = process.getBuiltinModule('node:fs').readFileSync('/proc/self/limits', 'utf8');
    const line = limits.split('\n').find((l) => l.startsWith('Max open files'));
    return line === undefined ? undefined : Number(line.split(/ {2,}/)[1]);
  } catch {
    return undefined;
  }
}

export class SelfMetrics {
  readonly requests = new CodeCounter();
  readonly inFlight = new InFlight();
  private readonly enabled: boolean;
  private readonly startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  private readonly maxFds: number | undefined;
  private delay: DelayHistogram | undefined;
  private delayOff: NodeJS.Timeout | undefined;
  private delayOn = false;
  private lagSeconds = 0;
  private readonly gc = new GcHistogram();
  private gcObserver: { disconnect(): void } | undefined;

  /** `enabled` false (`--web.disable-exporter-metrics`): no families at all, no timers. */
  constructor(
    enabled: boolean,
    private readonly lingerMs = MONITOR_LINGER_MS,
  ) {
    // client_golang pre-initialises these three codes
    for (const code of ['200', '500', '503']) this.requests.inc({ code }, 0);
    this.enabled = enabled;
    if (!enabled) return;
    this.maxFds = maxFds();
    const perf = process.getBuiltinModule('node:perf_hooks');
    this.delay = perf.monitorEventLoopDelay({ resolution: 10 });
    const kinds: Record<number, string> = {
      [perf.constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
      [perf.constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
      [perf.constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
      [perf.constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
    };
    const observer = new perf.PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = kinds[(e as { detail?: { kind?: number } }).detail?.kind ?? -1];
        if (kind !== undefined) this.gc.observe(kind, e.duration / 1000);
      }
    });
    observer.observe({ entryTypes: ['gc'] });
    this.gcObserver = observer;
  }

  /** A request is being served: the event-loop-delay timer runs (and the in-flight gauge counts it). */
  begin(): void {
    this.inFlight.inc();
    if (!this.delay) return;
    clearTimeout(this.delayOff);
    this.delayOff = undefined;
    this.delay.enable();
    this.delayOn = true;
  }

  /** A request is done; the timer stops a while after the last one. */
  end(): void {
    this.inFlight.dec();
    if (!this.delay || this.inFlight.value > 0) return;
    const delay = this.delay;
    this.delayOff = setTimeout(() => {
      delay.disable();
      this.delayOn = false;
    }, this.lingerMs);
    this.delayOff.unref();
  }

  /** Whether the event-loop-delay timer runs (for tests). */
  get monitoring(): boolean {
    return this.delayOn;
  }

  /** Stops the timers (at shutdown). */
  stop(): void {
    clearTimeout(this.delayOff);
    this.delay?.disable();
    this.delayOn = false;
    this.gcObserver?.disconnect();
  }

  families(): MetricFamily[] {
    if (!this.enabled) return [];
    return [
      family(
        'promhttp_metric_handler_requests_total',
        C,
        'Total number of scrapes by HTTP status code.',
        [...this.requests.values].map(([code, value]) => ({ labels: { code }, value })),
      ),
      family(
        'promhttp_metric_handler_requests_in_flight',
        G,
        'Current number of scrapes being served.',
        one(this.inFlight.value),
      ),
      ...this.process(),
      ...this.node(),
    ];
  }

  private process(): MetricFamily[] {
    const cpu = process.cpuUsage();
    const status = procStatus();
    const bytes = (v: number | undefined) => (v === undefined ? [] : one(v));
    let openFds: Sample[] = [];
    try {
      // minus the descriptor readdir itself held
      openFds = one(process.getBuiltinModule('node:fs').readdirSync('/proc/self/fd').length - 1);
    } catch {
      // not Linux
    }
    return [
      family(
        'process_cpu_user_seconds_total',
        C,
        'Total user CPU time spent in seconds.',
        one(cpu.user / 1e6),
      ),
      family(
        'process_cpu_system_seconds_total',
        C,
        'Total system CPU time spent in seconds.',
        one(cpu.system / 1e6),
      ),
      family(
        'process_cpu_seconds_total',
        C,
        'Total user and system CPU time spent in seconds.',
        one((cpu.user + cpu.system) / 1e6),
      ),
      family(
        'process_start_time_seconds',
        G,
        'Start time of the process since unix epoch in seconds.',
        one(this.startSeconds),
      ),
      family('process_resident_memory_bytes', G, 'Resident memory size in bytes.', bytes(status.VmRSS)),
      family('process_virtual_memory_bytes', G, 'Virtual memory size in bytes.', bytes(status.VmSize)),
      family('process_heap_bytes', G, 'Process heap size in bytes.', bytes(status.VmData)),
      family('process_open_fds', G, 'Number of open file descriptors.', openFds),
      family('process_max_fds', G, 'Maximum number of open file descriptors.', bytes(this.maxFds)),
    ];
  }

  private node(): MetricFamily[] {
    // measured now, reported by the next scrape (as prom-client does)
    const start = process.hrtime.bigint();
    setImmediate(() => {
      this.lagSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    });
    const d = this.delay!;
    const stat = (v: () => number) => one(d.count > 0 ? v() / 1e9 : 0);
    const lag = [
      family('nodejs_eventloop_lag_seconds', G, 'Lag of event loop in seconds.', one(this.lagSeconds)),
      family(
        'nodejs_eventloop_lag_min_seconds',
        G,
        'The minimum recorded event loop delay.',
        stat(() => d.min),
      ),
      family(
        'nodejs_eventloop_lag_max_seconds',
        G,
        'The maximum recorded event loop delay.',
        stat(() => d.max),
      ),
      family(
        'nodejs_eventloop_lag_mean_seconds',
        G,
        'The mean of the recorded event loop delays.',
        stat(() => d.mean),
      ),
      family(
        'nodejs_eventloop_lag_stddev_seconds',
        G,
        'The standard deviation of the recorded event loop delays.',
        stat(() => d.stddev),
      ),
      ...[50, 90, 99].map((p) =>
        family(
          `nodejs_eventloop_lag_p${p}_seconds`,
          G,
          `The ${p}th percentile of the recorded event loop delays.`,
          stat(() => d.percentile(p)),
        ),
      ),
    ];
    d.reset();
    const resources = process.getActiveResourcesInfo();
    const proc = process as unknown as { _getActiveHandles(): unknown[]; _getActiveRequests(): unknown[] };
    const handles = proc._getActiveHandles();
    const requests = proc._getActiveRequests();
    const mem = process.memoryUsage();
    const spaces = process.getBuiltinModule('node:v8').getHeapSpaceStatistics();
    const space = (pick: (s: (typeof spaces)[number]) => number) =>
      spaces.map((s) => ({
        labels: { space: s.space_name.slice(0, s.space_name.indexOf('_space')) },
        value: pick(s),
      }));
    const [major, minor, patch] = process.version.slice(1).split('.');
    return [
      ...lag,
      family(
        'nodejs_active_resources',
        G,
        'Number of active resources that are currently keeping the event loop alive, grouped by async resource type.',
        byType(resources),
      ),
      family('nodejs_active_resources_total', G, 'Total number of active resources.', one(resources.length)),
      family(
        'nodejs_active_handles',
        G,
        'Number of active libuv handles grouped by handle type. Every handle type is C++ class name.',
        byType(constructorNames(handles)),
      ),
      family('nodejs_active_handles_total', G, 'Total number of active handles.', one(handles.length)),
      family(
        'nodejs_active_requests',
        G,
        'Number of active libuv requests grouped by request type. Every request type is C++ class name.',
        byType(constructorNames(requests)),
      ),
      family('nodejs_active_requests_total', G, 'Total number of active requests.', one(requests.length)),
      family(
        'nodejs_heap_size_total_bytes',
        G,
        'Process heap size from Node.js in bytes.',
        one(mem.heapTotal),
      ),
      family(
        'nodejs_heap_size_used_bytes',
        G,
        'Process heap size used from Node.js in bytes.',
        one(mem.heapUsed),
      ),
      family('nodejs_external_memory_bytes', G, 'Node.js external memory size in bytes.', one(mem.external)),
      ...(['total', 'used', 'available'] as const).map((kind) =>
        family(
          `nodejs_heap_space_size_${kind}_bytes`,
          G,
          `Process heap space size ${kind} from Node.js in bytes.`,
          space((s) =>
            kind === 'total' ? s.space_size : kind === 'used' ? s.space_used_size : s.space_available_size,
          ),
        ),
      ),
      family('nodejs_version_info', G, 'Node.js version info.', [
        { labels: { version: process.version, major: major!, minor: minor!, patch: patch! }, value: 1 },
      ]),
      family(
        'nodejs_gc_duration_seconds',
        'histogram',
        'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
        this.gcSamples(),
      ),
    ];
  }

  /** Buckets (ascending, then +Inf), _sum and _count per kind, in prom-client's order. */
  private gcSamples(): Sample[] {
    const out: Sample[] = [];
    const name = 'nodejs_gc_duration_seconds';
    for (const [kind, h] of this.gc.kinds) {
      for (let i = 0; i < GC_BUCKETS.length; i++)
        out.push({
          name: `${name}_bucket`,
          labels: { le: String(GC_BUCKETS[i]), kind },
          value: h.buckets[i]!,
        });
      out.push({ name: `${name}_bucket`, labels: { le: '+Inf', kind }, value: h.count });
      out.push({ name: `${name}_sum`, labels: { kind }, value: h.sum });
      out.push({ name: `${name}_count`, labels: { kind }, value: h.count });
    }
    return out;
  }
}
