// The perf sub-collector on this machine's kernel (root, software events; hardware and cache events where
// a PMU exists): counts of real processes, totals that never go back while processes churn, no descriptor
// left behind over 1,000 scrapes; flags, capabilities and the start-up report of unsupported events.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseFlags } from '../../../../src/common/flags.js';
import { createLogger, type Logger } from '../../../../src/common/logger.js';
import { SyscallError } from '../../../../src/common/syscall.js';
import type { CgroupUnit } from '../../../../src/exporter/cgroup/walk.js';
import { FamilySet } from '../../../../src/exporter/collector.js';
import {
  checkParanoid,
  PerfCollector,
  selectedEvents,
  supportedEvents,
} from '../../../../src/exporter/perf/collector.js';
import { LINUX, type PerfKernel } from '../../../../src/exporter/perf/counters.js';
import { PERF_EVENTS } from '../../../../src/exporter/perf/events.js';
import { PERF_FLAGS, perfCapabilities, perfEnabled } from '../../../../src/exporter/perf/flags.js';
import { waitFor } from '../../../helpers/wait.js';

const SOFTWARE = PERF_EVENTS.filter((e) => e.kind === 'software');
const flags = (args: string[]) => parseFlags(PERF_FLAGS, args, { env: {} }).flags;

function capture(): { logger: Logger; lines: Record<string, string>[] } {
  const lines: Record<string, string>[] = [];
  return {
    logger: createLogger({
      level: 'info',
      format: 'json',
      write: (l: string) => lines.push(JSON.parse(l)),
    }) as Logger,
    lines,
  };
}

const unit = (uuid: string, pids: number[]): CgroupUnit => ({
  id: uuid,
  uuid,
  cgrouphostname: '',
  rel: `/job_${uuid}`,
  children: [],
  pids,
});

function collector(logger = capture().logger): PerfCollector {
  return new PerfCollector({
    manager: 'slurm',
    hostname: 'node1',
    procfs: '/proc',
    logger,
    events: SOFTWARE,
    envVars: [],
  });
}

/** Samples of one scrape as `name{uuid}` → value, and the families' HELP and TYPE. */
async function scrape(c: PerfCollector, units: CgroupUnit[]) {
  const out = new FamilySet();
  await c.update(out, units);
  const values = new Map<string, number>();
  for (const f of out.families.values())
    for (const s of f.samples) {
      assert.deepEqual(Object.keys(s.labels).sort(), ['hostname', 'manager', 'uuid']);
      assert.equal(f.type, 'counter');
      values.set(`${f.name}{${s.labels.uuid}}`, s.value);
    }
  return { values, families: out.families };
}

/** Perf event descriptors of this process. */
function perfFds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[perf_event]') n++;
    } catch {
      // the directory's own descriptor, closed by now
    }
  }
  return n;
}

// Touches N fresh pages of an anonymous mapping per line read (huge pages off: one fault per 4 KiB page).
const TOUCHER = `
import mmap, sys
n = int(sys.argv[1])
print('ready', flush=True)
for line in sys.stdin:
    m = mmap.mmap(-1, n * 4096)
    if hasattr(m, 'madvise') and hasattr(mmap, 'MADV_NOHUGEPAGE'): m.madvise(mmap.MADV_NOHUGEPAGE)
    for i in range(0, n * 4096, 4096): m[i] = 1
    m.close()
    print('done', flush=True)
`;

/** Waits until the child has printed `want` (a failed wait says what it printed). */
function printed(p: ChildProcess, want: string): Promise<true> {
  let out = '';
  p.stdout!.on('data', (d) => {
    out += d;
  });
  return waitFor(`child to print '${want}'`, 20_000, () => {
    if (out.includes(want)) return true;
    throw new Error(`printed so far: ${JSON.stringify(out)}`);
  });
}

describe('perf sub-collector on this kernel', () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  it('counts about N minor faults for a process touching N fresh pages', async () => {
    const N = 5000;
    const p = spawn('python3', ['-c', TOUCHER, String(N)], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(p);
    await printed(p, 'ready');
    const c = collector();
    const u = [unit('1', [p.pid!])];
    await scrape(c, u); // opens the counters
    const before = (await scrape(c, u)).values;
    const done = printed(p, 'done');
    p.stdin!.write('go\n');
    await done;
    const after = (await scrape(c, u)).values;
    const minor =
      (after.get('ceems_perf_minor_faults_total{1}') ?? 0) -
      (before.get('ceems_perf_minor_faults_total{1}') ?? 0);
    const all =
      (after.get('ceems_perf_page_faults_total{1}') ?? 0) -
      (before.get('ceems_perf_page_faults_total{1}') ?? 0);
    // the loop itself faults a little (interpreter heap, the mapping's bookkeeping): 2 % + 200 allowed
    assert.ok(minor >= N && minor <= N * 1.02 + 200, `minor faults grew by ${minor}, expected about ${N}`);
    assert.ok(all >= minor, `page faults ${all} ≥ minor faults ${minor}`);
    assert.equal(after.get('ceems_perf_major_faults_total{1}'), undefined, 'zero values are not emitted');
    c.stop();
  });

  it('keeps every total monotonic and leaves no descriptor behind over 1,000 scrapes of churning processes', async () => {
    // a shell whose short-lived children are counted through its inherited counters …
    const churner = spawn('sh', ['-c', 'while :; do sleep 0.005 & sleep 0.005 & wait; done'], {
      stdio: 'ignore',
    });
    children.push(churner);
    // … and processes started from outside the unit, which get counters of their own and end
    const live = new Set<ChildProcess>();
    const c = collector();
    const startFds = readdirSync('/proc/self/fd').length;
    const startPerf = perfFds();
    let last = new Map<string, number>();
    let endedWithCounters = 0;
    for (let i = 0; i < 1000; i++) {
      if (i % 4 === 0) {
        const p = spawn('sleep', ['0.03'], { stdio: 'ignore' });
        live.add(p);
        p.once('exit', () => live.delete(p));
      }
      const kids = childrenOf(churner.pid!);
      const pids = [churner.pid!, ...kids, ...[...live].map((p) => p.pid!)];
      const before = c.profiledProcesses;
      const { values } = await scrape(c, [unit('churn', pids)]);
      if (c.profiledProcesses < before) endedWithCounters++;
      for (const [k, v] of last)
        assert.ok((values.get(k) ?? 0) >= v, `scrape ${i}: ${k} went from ${v} to ${values.get(k)}`);
      last = values;
      assert.equal(
        perfFds() - startPerf,
        c.profiledProcesses * SOFTWARE.length,
        `scrape ${i}: one set per profiled process`,
      );
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(endedWithCounters > 50, `counters of ended processes were closed ${endedWithCounters} times`);
    const switches = last.get('ceems_perf_context_switches_total{churn}') ?? 0;
    // each round of the shell forks, waits for and reaps two sleeps: several switches, hundreds of rounds
    assert.ok(switches > 100, `the churn was counted: ${switches} context switches`);
    churner.kill('SIGKILL');
    for (const p of live) p.kill('SIGKILL');
    await once(churner, 'exit');
    await scrape(c, [unit('other', [])]); // the unit is gone: its counters close
    assert.equal(c.profiledProcesses, 0);
    assert.equal(perfFds(), startPerf, 'no perf descriptor left');
    assert.ok(readdirSync('/proc/self/fd').length <= startFds, 'no descriptor growth');
    c.stop();
  });
});

/** Children of a process (CONFIG_PROC_CHILDREN), empty once it is gone. */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
      try {
        return readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8')
          .split(' ')
          .filter(Boolean)
          .map(Number);
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

describe('unsupported events', () => {
  const failing: PerfKernel = {
    ...LINUX,
    open(attr, pid, cpu, group, f) {
      if (attr.readUInt32LE(0) !== 1) throw new SyscallError('perf_event_open', 2); // no PMU: ENOENT
      return LINUX.open(attr, pid, cpu, group, f);
    },
  };

  it('are reported in one line at start-up, once for all the unit collectors, and left out', () => {
    const { logger, lines } = capture();
    const reported = new Set<string>();
    const ok = supportedEvents(failing, PERF_EVENTS, logger, reported);
    assert.deepEqual(ok, SOFTWARE);
    assert.equal(lines.length, 1);
    assert.equal(
      lines[0]!.msg,
      'perf events not supported on this node (no hardware PMU here?); they are not collected',
    );
    assert.equal(lines[0]!.err, 'ENOENT (errno 2)');
    assert.equal(
      lines[0]!.events,
      PERF_EVENTS.filter((e) => e.kind !== 'software')
        .map((e) => e.name)
        .join(','),
    );
    // the libvirt or k8s collector probing the same events says nothing new
    assert.deepEqual(supportedEvents(failing, PERF_EVENTS, logger, reported), SOFTWARE);
    assert.equal(lines.length, 1);
  });

  it('on this machine: each event either opens or is named in the report', () => {
    const { logger, lines } = capture();
    const ok = supportedEvents(LINUX, PERF_EVENTS, logger, new Set());
    const named = new Set((lines[0]?.events ?? '').split(',').filter(Boolean));
    for (const e of PERF_EVENTS)
      assert.ok(ok.includes(e) !== named.has(e.name), `${e.name}: supported or reported`);
    for (const e of SOFTWARE) assert.ok(ok.includes(e), `software event ${e.name} works here`);
    assert.ok(lines.length <= 1);
  });
});

describe('flags and requirements', () => {
  it('is on with any of the three event flags', () => {
    assert.equal(perfEnabled(flags([])), false);
    assert.equal(perfEnabled(flags(['--collector.perf.hardware-cache-events'])), true);
  });

  it('selects the listed profilers of enabled kinds, all when none is listed [D-EXP-10]', () => {
    const names = (args: string[]) => selectedEvents(flags(args)).map((e) => e.name);
    assert.deepEqual(
      names(['--collector.perf.software-events']),
      SOFTWARE.map((e) => e.name),
    );
    assert.deepEqual(
      names([
        '--collector.perf.software-events',
        '--collector.perf.software-profilers=MinorFault',
        '--collector.perf.software-profilers=ContextSwitch',
        '--collector.perf.hardware-profilers=CpuCycles', // hardware events are off
      ]),
      ['ContextSwitch', 'MinorFault'],
    );
    assert.throws(
      () =>
        selectedEvents(
          flags(['--collector.perf.hardware-events', '--collector.perf.hardware-profilers=Cycles']),
        ),
      /unknown hardware profiler 'Cycles' \(valid: CpuCycles, CpuInstr, BranchInstr, BranchMisses, CacheRef, CacheMisses, RefCpuCycles\)/,
    );
  });

  it('needs cap_perfmon, and cap_sys_ptrace with cap_dac_read_search for the env-var filter (spec §15)', () => {
    assert.deepEqual(perfCapabilities(flags([])), []);
    assert.deepEqual(perfCapabilities(flags(['--collector.perf.software-events'])), ['cap_perfmon']);
    assert.deepEqual(
      perfCapabilities(flags(['--collector.perf.hardware-events', '--collector.perf.env-var=SLURM_'])),
      ['cap_perfmon', 'cap_sys_ptrace', 'cap_dac_read_search'],
    );
  });

  it('refuses perf_event_paranoid above 2 and a kernel without it', () => {
    const procfs = mkdtempSync(join(tmpdir(), 'ceems-perf-proc-'));
    assert.throws(
      () => checkParanoid(procfs),
      /cannot read .*perf_event_paranoid \(kernel without perf events\?\)/,
    );
    mkdirSync(join(procfs, 'sys/kernel'), { recursive: true });
    for (const level of ['-1', '2']) {
      writeFileSync(join(procfs, 'sys/kernel/perf_event_paranoid'), `${level}\n`);
      checkParanoid(procfs);
    }
    writeFileSync(join(procfs, 'sys/kernel/perf_event_paranoid'), '4\n');
    assert.throws(
      () => checkParanoid(procfs),
      /not possible with perf_event_paranoid=4; set it to 2 or lower/,
    );
  });
});
