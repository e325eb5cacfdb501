// The exporter's own metrics without prom-client: prom-client's default metric names, types, HELP texts and
// labels, and the event-loop-delay timer running only around requests (its 10 ms ticks were most of an idle
// exporter's CPU).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode } from '../../../src/common/exposition.js';
import { SelfMetrics } from '../../../src/exporter/selfmetrics.js';

/** prom-client 15's collectDefaultMetrics() on Linux, plus the two promhttp families. */
const EXPECTED: [string, string, string][] = [
  [
    'nodejs_active_handles',
    'gauge',
    'Number of active libuv handles grouped by handle type. Every handle type is C++ class name.',
  ],
  ['nodejs_active_handles_total', 'gauge', 'Total number of active handles.'],
  ['nodejs_active_requests_total', 'gauge', 'Total number of active requests.'],
  [
    'nodejs_active_resources',
    'gauge',
    'Number of active resources that are currently keeping the event loop alive, grouped by async resource type.',
  ],
  ['nodejs_active_resources_total', 'gauge', 'Total number of active resources.'],
  ['nodejs_eventloop_lag_max_seconds', 'gauge', 'The maximum recorded event loop delay.'],
  ['nodejs_eventloop_lag_mean_seconds', 'gauge', 'The mean of the recorded event loop delays.'],
  ['nodejs_eventloop_lag_min_seconds', 'gauge', 'The minimum recorded event loop delay.'],
  ['nodejs_eventloop_lag_p50_seconds', 'gauge', 'The 50th percentile of the recorded event loop delays.'],
  ['nodejs_eventloop_lag_p90_seconds', 'gauge', 'The 90th percentile of the recorded event loop delays.'],
  ['nodejs_eventloop_lag_p99_seconds', 'gauge', 'The 99th percentile of the recorded event loop delays.'],
  ['nodejs_eventloop_lag_seconds', 'gauge', 'Lag of event loop in seconds.'],
  [
    'nodejs_eventloop_lag_stddev_seconds',
    'gauge',
    'The standard deviation of the recorded event loop delays.',
  ],
  ['nodejs_external_memory_bytes', 'gauge', 'Node.js external memory size in bytes.'],
  [
    'nodejs_gc_duration_seconds',
    'histogram',
    'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
  ],
  ['nodejs_heap_size_total_bytes', 'gauge', 'Process heap size from Node.js in bytes.'],
  ['nodejs_heap_size_used_bytes', 'gauge', 'Process heap size used from Node.js in bytes.'],
  [
    'nodejs_heap_space_size_available_bytes',
    'gauge',
    'Process heap space size available from Node.js in bytes.',
  ],
  ['nodejs_heap_space_size_total_bytes', 'gauge', 'Process heap space size total from Node.js in bytes.'],
  ['nodejs_heap_space_size_used_bytes', 'gauge', 'Process heap space size used from Node.js in bytes.'],
  ['nodejs_version_info', 'gauge', 'Node.js version info.'],
  ['process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.'],
  ['process_cpu_system_seconds_total', 'counter', 'Total system CPU time spent in seconds.'],
  ['process_cpu_user_seconds_total', 'counter', 'Total user CPU time spent in seconds.'],
  ['process_heap_bytes', 'gauge', 'Process heap size in bytes.'],
  ['process_max_fds', 'gauge', 'Maximum number of open file descriptors.'],
  ['process_open_fds', 'gauge', 'Number of open file descriptors.'],
  ['process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.'],
  ['process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.'],
  ['process_virtual_memory_bytes', 'gauge', 'Virtual memory size in bytes.'],
  ['promhttp_metric_handler_requests_in_flight', 'gauge', 'Current number of scrapes being served.'],
  ['promhttp_metric_handler_requests_total', 'counter', 'Total number of scrapes by HTTP status code.'],
];

function families(text: string): [string, string, string][] {
  const help = new Map<string, string>();
  const out: [string, string, string][] = [];
  for (const line of text.split('\n')) {
    const h = /^# HELP (\S+) (.*)$/.exec(line);
    if (h) help.set(h[1]!, h[2]!);
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) out.push([t[1]!, t[2]!, help.get(t[1]!)!]);
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('exporter self metrics', () => {
  it('has the families of prom-client’s default metrics with their labels and values', async () => {
    const self = new SelfMetrics(true, 20);
    try {
      self.begin();
      // a garbage collection and some event loop turns to record
      (globalThis as { gc?: () => void }).gc?.();
      for (let i = 0; i < 5; i++) await sleep(15);
      Buffer.alloc(64 << 20).fill(1);
      await sleep(20);
      self.end();
      const text = encode(self.families());
      // nodejs_active_requests has no sample while no libuv request is pending, as with prom-client; one may be
      // pending at scrape time (an fs call of the test runner), then its samples add up to the total
      const varying = new Set(['nodejs_gc_duration_seconds', 'nodejs_active_requests']);
      assert.deepEqual(
        families(text).filter(([n]) => !varying.has(n)),
        EXPECTED.filter(([n]) => !varying.has(n)),
      );
      const byType = [...text.matchAll(/^nodejs_active_requests\{type="[^"]+"\} (\d+)$/gm)].map((m) =>
        Number(m[1]),
      );
      const total = Number(/^nodejs_active_requests_total (\d+)$/m.exec(text)?.[1]);
      assert.equal(
        byType.reduce((a, b) => a + b, 0),
        total,
        text.match(/^nodejs_active_requests.*$/gm)?.join('\n'),
      );
      assert.equal(/^# HELP nodejs_active_requests /m.test(text), byType.length > 0);
      assert.match(text, /^process_resident_memory_bytes [1-9][\d.]*e\+0[6-9]$/m);
      assert.match(text, /^promhttp_metric_handler_requests_total\{code="503"\} 0$/m);
      assert.match(text, /^promhttp_metric_handler_requests_in_flight 0$/m);
      assert.match(text, /^nodejs_heap_space_size_used_bytes\{space="old"\} [1-9][\d.e+]*$/m);
      const p99 = Number(/^nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(text)?.[1]);
      assert.ok(p99 > 0, `delay recorded while serving: p99 ${p99}`);
      const [major, minor, patch] = process.version.slice(1).split('.');
      assert.match(
        text,
        new RegExp(
          `^nodejs_version_info\\{major="${major}",minor="${minor}",patch="${patch}",version="${process.version}"\\} 1$`,
          'm',
        ),
      );
      const cpu = Number(/^process_cpu_seconds_total (\S+)$/m.exec(text)![1]);
      const used = process.cpuUsage();
      assert.ok(cpu > 0 && cpu <= (used.user + used.system) / 1e6);
    } finally {
      self.stop();
    }
  });

  it('runs the event-loop-delay timer only while serving and a moment after', async () => {
    const self = new SelfMetrics(true, 30);
    try {
      assert.equal(self.monitoring, false, 'idle from the start');
      self.begin();
      self.begin();
      assert.equal(self.monitoring, true);
      self.end();
      await sleep(60);
      assert.equal(self.monitoring, true, 'one request still in flight');
      self.end();
      assert.equal(self.monitoring, true, 'lingers for late ticks');
      await sleep(60);
      assert.equal(self.monitoring, false);
      // with nothing recorded since the last scrape the statistics are 0, not the histogram's sentinels
      self.families();
      assert.match(encode(self.families()), /^nodejs_eventloop_lag_min_seconds 0$/m);
    } finally {
      self.stop();
    }
  });

  it('exports nothing with --web.disable-exporter-metrics and starts no timer', () => {
    const self = new SelfMetrics(false);
    self.begin();
    self.requests.inc({ code: '200' });
    self.end();
    assert.deepEqual(self.families(), []);
    assert.equal(self.monitoring, false);
  });
});
