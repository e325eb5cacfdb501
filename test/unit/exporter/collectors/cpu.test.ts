import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cpu, parseProcStat, physicalCores } from '../../../../src/exporter/collectors/cpu.js';
import { collect, context, family, writeTree } from './node-context.js';

const STAT_TAIL = 'intr 1 2 3\nctxt 99\nbtime 1732520000\n';
const statFile = (agg: string, cpus = 2) =>
  `cpu  ${agg}\n${Array.from({ length: cpus }, (_, i) => `cpu${i} 1 1 1 1 1 0 0 0 0 0\n`).join('')}${STAT_TAIL}`;

describe('cpu collector', () => {
  const trees: { cleanup(): void }[] = [];
  after(() => {
    for (const t of trees) t.cleanup();
  });

  it('exports CPU counts and seconds per mode from /proc/stat and /proc/cpuinfo (2 sockets)', async () => {
    assert.equal(
      await collect(await cpu.create(context(cpu))),
      [
        '# HELP ceems_cpu_count Number of CPUs.',
        '# TYPE ceems_cpu_count gauge',
        'ceems_cpu_count{hostname="node1"} 8',
        // 2 packages × 2 cores = 4 physical cores for 8 logical CPUs
        '# HELP ceems_cpu_per_core_count Number of logical CPUs per physical core.',
        '# TYPE ceems_cpu_per_core_count gauge',
        'ceems_cpu_per_core_count{hostname="node1"} 2',
        '# HELP ceems_cpu_seconds_total Seconds the CPUs spent in each mode.',
        '# TYPE ceems_cpu_seconds_total counter',
        'ceems_cpu_seconds_total{hostname="node1",mode="idle"} 987654.32',
        'ceems_cpu_seconds_total{hostname="node1",mode="iowait"} 123.45',
        'ceems_cpu_seconds_total{hostname="node1",mode="irq"} 0',
        'ceems_cpu_seconds_total{hostname="node1",mode="nice"} 89.01',
        'ceems_cpu_seconds_total{hostname="node1",mode="softirq"} 67.89',
        'ceems_cpu_seconds_total{hostname="node1",mode="steal"} 0',
        'ceems_cpu_seconds_total{hostname="node1",mode="system"} 2345.67',
        'ceems_cpu_seconds_total{hostname="node1",mode="user"} 12345.67',
        '',
      ].join('\n'),
    );
  });

  it('counts physical cores per distinct physical id', () => {
    const block = (id: number, cores: number) =>
      `processor\t: 0\nphysical id\t: ${id}\ncpu cores\t: ${cores}\n`;
    assert.equal(physicalCores([block(0, 4), block(0, 4), block(1, 4)].join('\n')), 8);
    assert.equal(physicalCores('processor\t: 0\nmodel name\t: ARMv8\n'), 0);
  });

  it('uses logical CPUs as physical cores when cpuinfo has no topology', async () => {
    const t = writeTree({
      'proc/stat': statFile('100 0 100 1000 0 0 0 0 0 0', 4),
      'proc/cpuinfo': 'processor\t: 0\nBogoMIPS\t: 50.00\n\n',
    });
    trees.push(t);
    const text = await collect(await cpu.create(context(cpu, [], t.root)));
    assert.deepEqual(family(text, 'ceems_cpu_per_core_count').slice(2), [
      'ceems_cpu_per_core_count{hostname="node1"} 1',
    ]);
    assert.deepEqual(family(text, 'ceems_cpu_count').slice(2), ['ceems_cpu_count{hostname="node1"} 4']);
  });

  it('rejects a malformed /proc/stat with a clear error', async () => {
    assert.throws(
      () => parseProcStat('cpu  1 2 3\n'),
      /malformed aggregate cpu line in stat file: 'cpu {2}1 2 3'/,
    );
    assert.throws(
      () => parseProcStat('cpu  1 2 x 4 5 6 7 8 0 0\n'),
      /malformed system value 'x' in cpu line/,
    );
    assert.throws(() => parseProcStat('cpu0 1 2 3 4 5 6 7 8\n'), /no aggregate cpu line in stat file/);
    const t = writeTree({ 'proc/stat': 'cpu  1 2 three 4 5 6 7 8\n', 'proc/cpuinfo': '' });
    trees.push(t);
    await assert.rejects(
      collect(await cpu.create(context(cpu, [], t.root))),
      /malformed system value 'three'/,
    );
  });

  it('never lets a mode go backwards, and resets on an idle drop of 3 s or more (CPU hot-plug)', async () => {
    const t = writeTree({ 'proc/stat': statFile('1000 0 500 100000 0 0 0 0 0 0'), 'proc/cpuinfo': '' });
    trees.push(t);
    const stat = join(t.root, 'proc/stat');
    const c = await cpu.create(context(cpu, [], t.root));
    const seconds = async () =>
      Object.fromEntries(
        family(await collect(c), 'ceems_cpu_seconds_total')
          .slice(2)
          .map((l) => [/mode="(\w+)"/.exec(l)![1], Number(l.split(' ')[1])]),
      );
    assert.deepEqual(await seconds(), {
      idle: 1000,
      iowait: 0,
      irq: 0,
      nice: 0,
      softirq: 0,
      steal: 0,
      system: 5,
      user: 10,
    });
    // user and system drop a little (counter glitch), idle drops by 2 s (< 3 s): previous values kept
    writeFileSync(stat, statFile('900 0 400 99800 0 0 0 0 0 0'));
    const glitch = await seconds();
    assert.deepEqual([glitch.user, glitch.system, glitch.idle], [10, 5, 1000]);
    // forward movement is taken mode by mode
    writeFileSync(stat, statFile('1100 0 450 100100 0 0 0 0 0 0'));
    const forward = await seconds();
    assert.deepEqual([forward.user, forward.system, forward.idle], [11, 5, 1001]);
    // idle drops by 3 s or more: hot-plug, the state restarts from the new values
    writeFileSync(stat, statFile('200 0 100 99800 0 0 0 0 0 0'));
    const reset = await seconds();
    assert.deepEqual([reset.user, reset.system, reset.idle], [2, 1, 998]);
  });
});
