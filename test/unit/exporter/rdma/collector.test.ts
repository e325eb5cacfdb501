// The rdma sub-collector inside the slurm and k8s collectors, against a fake `rdma` tool that prints real
// iproute2 output (test/fixtures/rdma) and a sysfs tree with two HCAs.

import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { encode, formatFloat } from '../../../../src/common/exposition.js';
import { parseFlags } from '../../../../src/common/flags.js';
import { createLogger } from '../../../../src/common/logger.js';
import { type CollectorContext, FamilySet } from '../../../../src/exporter/collector.js';
import { slurm } from '../../../../src/exporter/collectors/slurm.js';
import { allFlags } from '../../../../src/exporter/main.js';
import { RdmaCollector } from '../../../../src/exporter/rdma/collector.js';
import { RDMA_FLAGS, rdmaCapabilities } from '../../../../src/exporter/rdma/flags.js';
import { QP_HW_COUNTERS } from '../../../../src/exporter/rdma/parse.js';
import { K8sCollector } from '../../../../src/exporter/units/k8s.js';
import { SlurmCollector } from '../../../../src/exporter/units/slurm.js';

const FIX = resolve(import.meta.dirname, '../../../fixtures');
const RDMA_FIX = join(FIX, 'rdma');
const SYSFS = join(RDMA_FIX, 'sys');
const PROCFS = join(FIX, 'cgroup/proc');

const tmp = mkdtempSync(join(tmpdir(), 'rdma-collector-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A private copy of the fake tool and its outputs, so each test has its own calls.log and switches. */
function fakeTool(name: string, overrides: Record<string, string> = {}): { cmd: string; calls(): string[] } {
  const dir = join(tmp, name);
  cpSync(RDMA_FIX, dir, { recursive: true, filter: (src) => !src.startsWith(SYSFS) });
  for (const [file, content] of Object.entries(overrides)) writeFileSync(join(dir, file), content);
  const log = join(dir, 'calls.log');
  return {
    cmd: join(dir, 'rdma'),
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trimEnd().split('\n') : []),
  };
}

type LogRecord = { level: string; msg: string; [k: string]: unknown };

function context(
  args: string[],
  o: { cgroupfs?: string; sysfs?: string; version?: 'v1' | 'v2'; flags?: typeof slurm.flags } = {},
): CollectorContext & { logs: LogRecord[] } {
  const logs: LogRecord[] = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    write: (l: string) => logs.push(JSON.parse(l)),
  });
  return {
    hostname: 'node1',
    procfs: PROCFS,
    sysfs: o.sysfs ?? SYSFS,
    cgroupfs: o.cgroupfs ?? join(FIX, 'cgroup/v2'),
    flags: parseFlags(
      o.flags ?? slurm.flags,
      [`--collector.cgroups.force-version=${o.version ?? 'v2'}`, '--collector.gpu.type=nogpu', ...args],
      { env: {} },
    ).flags,
    logger,
    logs,
  };
}

async function scrapeLines(c: { update(out: FamilySet, s: AbortSignal): Promise<void> }): Promise<string[]> {
  const out = new FamilySet();
  await c.update(out, new AbortController().signal);
  assert.deepEqual(out.duplicates, []);
  return encode(out.families.values())
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'));
}

const rdmaSamples = (lines: string[], perUnit: boolean) =>
  lines.filter((l) => l.startsWith('ceems_rdma_') && l.includes('uuid="') === perUnit).sort();

const fixtureLines = (file: string) => readFileSync(join(RDMA_FIX, file), 'utf8').split('\n');
const match = (line: string, re: RegExp) => re.exec(line)?.[1];

/**
 * The per-unit samples the fixture outputs should give by the original's rule, straight from the text with
 * plain regular expressions: per unit and family one series, labelled with the device (and port) of the
 * unit's first line (QP counters: of its first QP), values counted or summed over all its lines; lines
 * lacking a numeric pid or field do not count.
 */
function expectedUnitSamples(pidUnit: Map<number, string>, manager: string): string[] {
  const totals = new Map<string, { device: string; port: string; value: number; counter: boolean }>();
  const add = (kind: string, name: string, device: string, port: string, pid: string, value: number) => {
    const uuid = pidUnit.get(Number(pid));
    if (uuid === undefined) return;
    const first = [...totals.entries()].find(([k]) => k.startsWith(`${kind}/${uuid}/`))?.[1];
    const key = `${kind}/${uuid}/${name}`;
    const t = totals.get(key) ?? {
      device: first?.device ?? device,
      port: first?.port ?? port,
      value: 0,
      counter: kind === 'qp' && name !== 'qps_active',
    };
    totals.set(key, { ...t, value: t.value + value });
  };
  for (const l of fixtureLines('resource-mr.txt')) {
    const [dev, pid, len] = [match(l, /^dev (\S+)/), match(l, / pid (\d+) /), match(l, / mrlen (\d+) /)];
    if (!dev || !pid || !len) continue;
    add('mr', 'mrs_active', dev, '', pid, 1);
    add('mr', 'mrs_len_active', dev, '', pid, Number(len));
  }
  for (const l of fixtureLines('resource-cq.txt')) {
    const [dev, pid, cqe] = [match(l, /^dev (\S+)/), match(l, / pid (\d+) /), match(l, / cqe (\d+) /)];
    if (!dev || !pid || !cqe) continue;
    add('cq', 'cqs_active', dev, '', pid, 1);
    add('cq', 'cqe_len_active', dev, '', pid, Number(cqe));
  }
  for (const l of fixtureLines('resource-qp.txt')) {
    const link = /^link (\S+)\/(\d+) /.exec(l);
    const pid = match(l, / pid (\d+) /);
    if (link && pid) add('qp', 'qps_active', link[1]!, link[2]!, pid, 1);
  }
  for (const l of fixtureLines('statistic-qp.txt')) {
    const link = /^link (\S+)\/(\d+) /.exec(l);
    const pid = match(l, / pid (\d+) /);
    if (!link || !pid) continue;
    for (const name of QP_HW_COUNTERS)
      add('qp', name, link[1]!, link[2]!, pid, Number(match(l, new RegExp(` ${name} (\\d+)`))));
  }
  return [...totals]
    .filter(([, t]) => !t.counter || t.value > 0)
    .map(([key, t]) => {
      const [, uuid, name] = key.split('/');
      const labels = `{device="${t.device}",hostname="node1",manager="${manager}",port="${t.port}",uuid="${uuid}"}`;
      return `ceems_rdma_${name}${labels} ${formatFloat(t.value)}`;
    })
    .sort();
}

/** The system-wide samples the sysfs fixture should give (non-zero state and port counters only). */
function expectedPortSamples(manager: string): string[] {
  const files: Record<string, [string, number]> = {
    port_rcv_constraint_errors: ['port_constraint_errors_received_total', 1],
    port_xmit_constraint_errors: ['port_constraint_errors_transmitted_total', 1],
    port_rcv_data: ['port_data_received_bytes_total', 4],
    port_xmit_data: ['port_data_transmitted_bytes_total', 4],
    port_rcv_discards: ['port_discards_received_total', 1],
    port_xmit_discards: ['port_discards_transmitted_total', 1],
    port_rcv_errors: ['port_errors_received_total', 1],
    port_rcv_packets: ['port_packets_received_total', 1],
    port_xmit_packets: ['port_packets_transmitted_total', 1],
  };
  const lines: string[] = [];
  const root = join(SYSFS, 'class/infiniband');
  for (const dev of readdirSync(root))
    for (const port of readdirSync(join(root, dev, 'ports'))) {
      const dir = join(root, dev, 'ports', port);
      const l = `{device="${dev}",hostname="node1",manager="${manager}",port="${port}"}`;
      const state = Number.parseInt(readFileSync(join(dir, 'state'), 'utf8'), 10);
      if (state > 0) lines.push(`ceems_rdma_state_id${l} ${state}`);
      for (const [file, [metric, factor]] of Object.entries(files)) {
        const path = join(dir, 'counters', file);
        const text = existsSync(path) ? readFileSync(path, 'utf8').trim() : '';
        if (/^\d+$/.test(text) && Number(text) > 0)
          lines.push(`ceems_rdma_${metric}${l} ${formatFloat(Number(text) * factor)}`);
      }
    }
  return lines.sort();
}

const SET_ON = (link: string) => `statistic qp set link ${link} auto type,pid on`;
const SET_OFF = (link: string) => `statistic qp set link ${link} auto off`;
const UNIT_COMMANDS = ['resource show mr', 'resource show cq', 'resource show qp', 'statistic qp show'];
const DURATION = /^ceems_scrape_collector_duration_seconds\{collector="slurm",subcollector="rdma"\} \d/;

describe('rdma sub-collector in the slurm collector', () => {
  it('emits per-job RDMA resources and QP counters, port counters, and its duration sample', async () => {
    const tool = fakeTool('full');
    const ctx = context(['--collector.rdma.stats', `--collector.rdma.cmd=${tool.cmd}`]);
    const c = (await slurm.create(ctx)) as SlurmCollector;
    const pidUnit = new Map(c.jobs().flatMap((j) => j.pids.map((p) => [p, j.uuid] as const)));
    assert.ok(!pidUnit.has(9999), 'the fixture has RDMA resources of a process outside every job');

    const lines = await scrapeLines(c);
    assert.deepEqual(rdmaSamples(lines, true), expectedUnitSamples(pidUnit, 'slurm'));
    assert.deepEqual(rdmaSamples(lines, false), expectedPortSamples('slurm'));
    assert.equal(lines.filter((l) => DURATION.test(l)).length, 1);
    // the cgroup metrics are all still there
    assert.equal(lines.filter((l) => l.startsWith('ceems_compute_unit_cpu_user_seconds_total')).length, 3);
    // every zero counter is left out, MR and CQ series have port "" (they belong to a device)
    assert.ok(rdmaSamples(lines, true).every((l) => !l.endsWith(' 0')));
    assert.ok(
      rdmaSamples(lines, true)
        .filter((l) => /_(mrs|cqs)_active|_len_active/.test(l))
        .every((l) => l.includes('port=""')),
    );

    // mode checked once; the two Mellanox links with `auto off` switched on, rxe0 and the link already on
    // left alone; each resource command runs once per scrape
    assert.deepEqual(tool.calls().slice(0, 3), ['statistic qp mode', SET_ON('mlx5_0/1'), SET_ON('mlx5_1/2')]);
    assert.deepEqual(tool.calls().slice(3).sort(), UNIT_COMMANDS.sort());

    await scrapeLines(c);
    assert.deepEqual(
      tool.calls().slice(7).sort(),
      UNIT_COMMANDS.sort(),
      'second scrape: no mode check, no set',
    );

    await c.stop();
    assert.deepEqual(tool.calls().slice(11), [SET_OFF('mlx5_0/1'), SET_OFF('mlx5_1/2')]);
    // malformed lines are skipped and counted per command
    const skipped = ctx.logs.filter((r) => r.msg === 'rdma: skipped output lines that could not be parsed');
    assert.deepEqual(
      skipped
        .slice(0, 4)
        .map((r) => `${r.command} ${r.count}`)
        .sort(),
      UNIT_COMMANDS.map((cmd) => `rdma ${cmd} 1`).sort(),
    );
  });

  it('retries switching per-PID counters on at each scrape until it succeeds', async () => {
    const tool = fakeTool('set-retry', { 'set-fails': '' });
    const ctx = context(['--collector.rdma.stats', `--collector.rdma.cmd=${tool.cmd}`]);
    const c = (await slurm.create(ctx)) as SlurmCollector;
    const first = await scrapeLines(c);
    // per-unit data is still collected while the mode cannot be set
    assert.ok(first.some((l) => l.startsWith('ceems_rdma_qps_active')));
    const failed = ctx.logs.filter((r) => r.msg.startsWith('rdma: cannot enable per-PID QP counters'));
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.link, 'mlx5_0/1');
    assert.match(String(failed[0]!.err), /exited with status 1: error: Operation not permitted/);

    await scrapeLines(c);
    const sets = tool.calls().filter((l) => l.startsWith('statistic qp set') || l.endsWith('mode'));
    assert.deepEqual(sets, ['statistic qp mode', SET_ON('mlx5_0/1'), SET_ON('mlx5_1/2'), SET_ON('mlx5_0/1')]);
    await c.stop();
    assert.deepEqual(tool.calls().slice(-2), [SET_OFF('mlx5_1/2'), SET_OFF('mlx5_0/1')]);
  });

  it('a hanging rdma tool is cut off by the scrape budget: cgroup and port metrics are still emitted', async () => {
    const tool = fakeTool('hang', { hang: 'statistic qp show\nresource show mr\n' });
    const ctx = context([]);
    const c = new SlurmCollector(ctx);
    await c.cgroups.enableSubCollectors(ctx, [
      {
        name: 'rdma',
        enabled: () => true,
        create: (cx, manager) =>
          new RdmaCollector({
            manager,
            hostname: cx.hostname,
            sysfs: cx.sysfs,
            logger: cx.logger,
            rdmaCmd: tool.cmd,
            timeoutMs: 300,
          }),
      },
    ]);
    const lines = await scrapeLines(c);
    assert.equal(lines.filter((l) => l.startsWith('ceems_compute_unit_cpu_user_seconds_total')).length, 3);
    assert.deepEqual(rdmaSamples(lines, false), expectedPortSamples('slurm'));
    const families = new Set(rdmaSamples(lines, true).map((l) => l.slice(0, l.indexOf('{'))));
    assert.deepEqual([...families].sort(), [
      'ceems_rdma_cqe_len_active',
      'ceems_rdma_cqs_active',
      'ceems_rdma_qps_active',
    ]);
    assert.equal(lines.filter((l) => DURATION.test(l)).length, 1);
    const errors = ctx.logs.filter((r) => r.msg === 'rdma: command failed; its metrics are skipped');
    assert.equal(errors.length, 2);
    errors.sort((a, b) => String(a.err).localeCompare(String(b.err)));
    ['resource show mr', 'statistic qp show'].forEach((args, i) => {
      // the budget of the scrape is shared: each run gets what is left of it
      assert.match(
        String(errors[i]!.err),
        new RegExp(`^command '${tool.cmd} ${args}' timed out after \\d+ ms$`),
      );
    });
  });

  it("reports QP counters of Mellanox links only, as the original: another HCA's statistic lines never", async () => {
    // the same outputs on a node whose only HCA is an Intel irdma (per-PID QP counters are a Mellanox feature)
    const sysfs = join(tmp, 'irdma-sys');
    cpSync(join(SYSFS, 'class/infiniband/mlx5_0'), join(sysfs, 'class/infiniband/irdma0'), {
      recursive: true,
    });
    const irdma = (file: string) =>
      readFileSync(join(RDMA_FIX, file), 'utf8').replace(/mlx5_[01]/g, 'irdma0');
    const tool = fakeTool('irdma', {
      'statistic-qp-mode.txt': 'link irdma0/1 mode qp auto type,pid on\n',
      ...Object.fromEntries(
        ['resource-mr.txt', 'resource-cq.txt', 'resource-qp.txt', 'statistic-qp.txt'].map((f) => [
          f,
          irdma(f),
        ]),
      ),
    });
    const ctx = context(['--collector.rdma.stats', `--collector.rdma.cmd=${tool.cmd}`], { sysfs });
    const lines = rdmaSamples(await scrapeLines((await slurm.create(ctx)) as SlurmCollector), true);
    assert.ok(
      lines.some((l) => l.startsWith('ceems_rdma_qps_active{device="irdma0"')),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => l.startsWith('ceems_rdma_mrs_active{device="irdma0"')),
      lines.join('\n'),
    );
    const counters = lines.filter((l) => QP_HW_COUNTERS.some((name) => l.startsWith(`ceems_rdma_${name}{`)));
    assert.deepEqual(counters, []);
    assert.ok(!tool.calls().includes('statistic qp show'), tool.calls().join('\n'));
  });

  it('a failing rdma tool (no netlink access) is logged; port counters are still emitted', async () => {
    const failing = join(tmp, 'rdma-no-netlink');
    writeFileSync(failing, '#!/bin/sh\necho "Failed to open NETLINK_RDMA socket" >&2\nexit 1\n', {
      mode: 0o755,
    });
    const ctx = context(['--collector.rdma.stats', `--collector.rdma.cmd=${failing}`]);
    const c = (await slurm.create(ctx)) as SlurmCollector;
    const lines = await scrapeLines(c);
    assert.deepEqual(rdmaSamples(lines, true), []);
    assert.deepEqual(rdmaSamples(lines, false), expectedPortSamples('slurm'));
    assert.ok(lines.some((l) => l.startsWith('ceems_compute_units{')));
    const logged = ctx.logs
      .filter((r) => r.level === 'ERROR' && r.subcollector === 'rdma')
      .map((r) => String(r.err));
    // the mode check and the three resource commands; no QP counters without a Mellanox link's mode
    assert.equal(logged.length, 4);
    assert.ok(logged.every((e) => e.includes('exited with status 1: Failed to open NETLINK_RDMA socket')));
  });

  it('without /sys/class/infiniband: no rdma family, no command run, only the duration sample', async () => {
    const tool = fakeTool('no-ib');
    const ctx = context(['--collector.rdma.stats', `--collector.rdma.cmd=${tool.cmd}`], { sysfs: PROCFS });
    const lines = await scrapeLines((await slurm.create(ctx)) as SlurmCollector);
    assert.deepEqual(
      lines.filter((l) => l.startsWith('ceems_rdma_')),
      [],
    );
    assert.equal(lines.filter((l) => DURATION.test(l)).length, 1);
    assert.deepEqual(tool.calls(), []);
    assert.ok(ctx.logs.some((r) => r.msg === 'sub-collector returned no data' && r.level === 'DEBUG'));
  });

  it('flag off: no rdma family, no duration sample, no command run', async () => {
    const tool = fakeTool('off');
    const ctx = context([`--collector.rdma.cmd=${tool.cmd}`]);
    const lines = await scrapeLines((await slurm.create(ctx)) as SlurmCollector);
    assert.deepEqual(
      lines.filter((l) => l.includes('rdma_') && !l.startsWith('ceems_compute_unit_rdma')),
      [],
    );
    assert.equal(lines.filter((l) => l.includes('subcollector="rdma"')).length, 0);
    assert.deepEqual(tool.calls(), []);
  });

  it('start-up fails clearly when --collector.rdma.cmd does not exist; a missing rdma on $PATH only warns', async () => {
    const missing = join(tmp, 'no-such-rdma');
    await assert.rejects(
      async () => slurm.create(context(['--collector.rdma.stats', `--collector.rdma.cmd=${missing}`])),
      new RegExp(`--collector.rdma.cmd: '${missing}' does not exist`),
    );
    const path = process.env.PATH;
    process.env.PATH = tmp; // no rdma there
    try {
      const ctx = context(['--collector.rdma.stats']);
      const c = (await slurm.create(ctx)) as SlurmCollector;
      assert.ok(ctx.logs.some((r) => r.level === 'WARN' && /rdma command not found/.test(r.msg)));
      const lines = await scrapeLines(c);
      assert.deepEqual(rdmaSamples(lines, true), []);
      assert.deepEqual(rdmaSamples(lines, false), expectedPortSamples('slurm'));
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('rdma sub-collector in the k8s collector', () => {
  it('maps the pods processes and labels the samples manager="k8s"', async () => {
    // pod processes of the k8s fixture: 6601 (pod 0f1e2d3c-…), 6602 (pod 7d6c5b4a-…)
    const tool = fakeTool('k8s', {
      'resource-mr.txt':
        'dev mlx5_0 mrn 4 rkey 0xa99a lkey 0xa99a mrlen 4194304 pdn 9 pid 6601 comm ib_write_bw\n',
      'resource-cq.txt': '',
      'resource-qp.txt':
        'link mlx5_1/2 lqpn 7 rqpn 0 type RC state RTS rq-psn 0 sq-psn 0 path-mig-state MIGRATED pid 6602 comm trainer\n',
      'statistic-qp.txt': '',
    });
    const ctx = context(['--collector.rdma.stats', `--collector.rdma.cmd=${tool.cmd}`], {
      cgroupfs: join(FIX, 'cgroup/k8s-v2'),
      flags: allFlags(),
    });
    const c = new K8sCollector(ctx);
    await c.cgroups.enableSubCollectors(ctx);
    const pidUnit = new Map(c.cgroups.discover().flatMap((u) => u.pids.map((p) => [p, u.uuid] as const)));
    const lines = await scrapeLines(c);
    const l = (device: string, port: string, pid: number) => {
      assert.ok(pidUnit.has(pid), `pid ${pid} belongs to a pod`);
      return `{device="${device}",hostname="node1",manager="k8s",port="${port}",uuid="${pidUnit.get(pid)}"}`;
    };
    assert.deepEqual(rdmaSamples(lines, true), [
      `ceems_rdma_mrs_active${l('mlx5_0', '', 6601)} 1`,
      `ceems_rdma_mrs_len_active${l('mlx5_0', '', 6601)} ${formatFloat(4194304)}`,
      `ceems_rdma_qps_active${l('mlx5_1', '2', 6602)} 1`,
    ]);
    assert.equal(
      lines.filter((l) =>
        l.startsWith('ceems_scrape_collector_duration_seconds{collector="k8s",subcollector="rdma"}'),
      ).length,
      1,
    );
    await c.stop();
  });
});

describe('rdma privileges', () => {
  it('needs cap_setuid/cap_setgid only when enabled and a Mellanox device exists', () => {
    const on = parseFlags(RDMA_FLAGS, ['--collector.rdma.stats']).flags;
    const off = parseFlags(RDMA_FLAGS, []).flags;
    assert.deepEqual(rdmaCapabilities(on, SYSFS), ['cap_setuid', 'cap_setgid']);
    assert.deepEqual(rdmaCapabilities(off, SYSFS), []);
    assert.deepEqual(rdmaCapabilities(on, PROCFS), []); // no class/infiniband
    assert.deepEqual(rdmaCapabilities(on, join(FIX, 'node/sys')), ['cap_setuid', 'cap_setgid']); // mlx4_0
  });

  it('a failing `auto off` at stop is logged as a warning, not thrown', async () => {
    const tool = fakeTool('stop-fails');
    const ctx = context(['--collector.rdma.stats', `--collector.rdma.cmd=${tool.cmd}`]);
    const c = (await slurm.create(ctx)) as SlurmCollector;
    await scrapeLines(c);
    writeFileSync(join(tmp, 'stop-fails', 'set-fails'), '');
    await c.stop();
    const warned = ctx.logs.filter((r) => r.msg === 'rdma: cannot disable per-PID QP counters');
    assert.deepEqual(
      warned.map((r) => r.link),
      ['mlx5_0/1'],
    );
    assert.deepEqual(tool.calls().slice(-2), [SET_OFF('mlx5_0/1'), SET_OFF('mlx5_1/2')]);
  });
});
