import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseFlags } from '../../../../src/common/flags.js';
import { createLogger } from '../../../../src/common/logger.js';
import { type CollectorContext, FamilySet, NoDataError } from '../../../../src/exporter/collector.js';
import {
  createIpmiDcmiCollector,
  findIpmiCommand,
  invocation,
  ipmiDcmi,
  parseCapmc,
  parseDcmiText,
} from '../../../../src/exporter/collectors/ipmi_dcmi.js';

const FIX = resolve(import.meta.dirname, '../../../fixtures/ipmi');
const BIN = join(FIX, 'bin');
const fixture = (f: string) => readFileSync(join(FIX, f), 'utf8');
const quiet = createLogger({ level: 'silent' });

const work = mkdtempSync(join(tmpdir(), 'ceems-ipmi-'));
const modeFile = join(work, 'mode');
process.env.FAKE_IPMI_MODE_FILE = modeFile;
const setMode = (m: string) => writeFileSync(modeFile, m);
after(() => rmSync(work, { recursive: true, force: true }));

function ctx(args: string[]): CollectorContext {
  return {
    hostname: 'node1',
    procfs: '/proc',
    sysfs: '/sys',
    cgroupfs: '/sys/fs/cgroup',
    flags: parseFlags(ipmiDcmi.flags, args).flags,
    logger: quiet,
  };
}

function lines(set: FamilySet): string[] {
  const out: string[] = [];
  for (const f of set.families.values())
    for (const s of f.samples) out.push(`${f.name}{hostname="${s.labels.hostname}"} ${s.value}`);
  return out.sort();
}

/** A directory holding only the named fake tools. */
function binDir(...tools: string[]): string {
  const d = mkdtempSync(join(work, 'bin-'));
  for (const t of tools) symlinkSync(join(BIN, 'fake-ipmi-tool'), join(d, t));
  return d;
}

describe('ipmi_dcmi parsers (real tool output)', () => {
  it('FreeIPMI ipmi-dcmi --get-system-power-statistics', () => {
    assert.deepEqual(parseDcmiText(fixture('freeipmi.txt')), { current: 152, min: 4, max: 336, avg: 150 });
  });
  it('ipmitool dcmi power reading', () => {
    assert.deepEqual(parseDcmiText(fixture('ipmitool.txt')), { current: 250, min: 48, max: 446, avg: 245 });
  });
  it('ipmiutil dcmi power', () => {
    assert.deepEqual(parseDcmiText(fixture('ipmiutil.txt')), { current: 210, min: 6, max: 304, avg: 204 });
  });
  it('capmc get_system_power JSON: current := avg', () => {
    assert.deepEqual(parseCapmc(fixture('capmc.json')), { current: 350, min: 300, max: 400, avg: 350 });
  });
  it('rejects inactive measurements, missing readings, capmc errors and garbage', () => {
    assert.throws(
      () => parseDcmiText(fixture('freeipmi-inactive.txt')),
      /not active \(state 'Not Available'\)/,
    );
    assert.throws(() => parseDcmiText('Power Measurement : Active\n'), /no current power reading/);
    assert.throws(() => parseDcmiText('Current Power : 100 Watts\n'), /no power measurement state/);
    assert.throws(() => parseCapmc(fixture('capmc-error.json')), /capmc error 52: Invalid nid specified/);
    assert.throws(() => parseCapmc('<html>'), /not JSON/);
    assert.throws(() => parseCapmc('{"e":0,"min":1,"max":2}'), /no numeric 'avg'/);
  });
});

describe('ipmi_dcmi command selection', () => {
  it('prefers tools in the spec order and searches PATH before the sbin directories', () => {
    const onlyIpmitool = binDir('ipmitool');
    const all = binDir('capmc', 'ipmiutil', 'ipmi-dcmi', 'ipmitool');
    assert.deepEqual(findIpmiCommand(onlyIpmitool, []), [
      join(onlyIpmitool, 'ipmitool'),
      'dcmi',
      'power',
      'reading',
    ]);
    assert.deepEqual(findIpmiCommand(`/nonexistent:${all}`, []), [
      join(all, 'ipmi-dcmi'),
      '--get-system-power-statistics',
    ]);
    const capmcOnly = binDir('capmc');
    assert.deepEqual(findIpmiCommand('', [capmcOnly]), [
      join(capmcOnly, 'capmc'),
      'get_system_power',
      '-w',
      '600',
    ]);
    assert.equal(findIpmiCommand('/nonexistent', []), undefined);
  });

  it('runs as uid 0 when it can (root, or cap_setuid/cap_setgid), directly in test mode, else through sudo -n', () => {
    const cmd = ['ipmitool', 'dcmi'];
    assert.deepEqual(invocation(cmd, { testMode: false, root: undefined }), {
      argv: ['sudo', '-n', 'ipmitool', 'dcmi'],
    });
    assert.deepEqual(invocation(cmd, { testMode: false, root: {} }), { argv: cmd });
    assert.deepEqual(invocation(cmd, { testMode: false, root: { uid: 0, gid: 0 } }), {
      argv: cmd,
      uid: 0,
      gid: 0,
    });
    assert.deepEqual(invocation(cmd, { testMode: true, root: { uid: 0, gid: 0 } }), { argv: cmd });
  });

  it('start-up errors: native mode forced, no tool found', () => {
    assert.throws(
      () =>
        createIpmiDcmiCollector(
          ctx(['--collector.ipmi_dcmi.force-native-mode', '--collector.ipmi_dcmi.dev-num=2']),
        ),
      /--collector.ipmi_dcmi.force-native-mode: native IPMI mode \(ioctl on \/dev\/ipmi2\) is not available/,
    );
    assert.throws(
      () => createIpmiDcmiCollector(ctx([]), { pathEnv: '/nonexistent', sbinDirs: [] }),
      /no IPMI DCMI tool \(ipmi-dcmi, ipmitool, ipmiutil, capmc\) found/,
    );
  });

  it('the deprecated --collector.ipmi.dcmi.cmd alias sets the command', () => {
    const p = parseFlags(ipmiDcmi.flags, [`--collector.ipmi.dcmi.cmd=${BIN}/ipmiutil dcmi power`]);
    assert.equal(p.flags.string('collector.ipmi_dcmi.cmd'), `${BIN}/ipmiutil dcmi power`);
    assert.deepEqual(p.flags.usedAliases, ['collector.ipmi.dcmi.cmd']);
  });
});

describe('ipmi_dcmi collector with fake tools', () => {
  const cases = [
    ['ipmi-dcmi', [152, 4, 336, 150]],
    ['ipmitool', [250, 48, 446, 245]],
    ['ipmiutil', [210, 6, 304, 204]],
    ['capmc', [350, 300, 400, 350]],
  ] as const;
  for (const [tool, [cur, min, max, avg]] of cases) {
    it(`auto-detected ${tool} gives the four gauges`, async () => {
      setMode('ok');
      const c = createIpmiDcmiCollector(ctx(['--collector.ipmi_dcmi.test-mode']), {
        pathEnv: binDir(tool),
        sbinDirs: [],
      });
      const set = new FamilySet();
      await c.update(set, new AbortController().signal);
      assert.deepEqual(lines(set), [
        `ceems_ipmi_dcmi_avg_watts{hostname="node1"} ${avg}`,
        `ceems_ipmi_dcmi_current_watts{hostname="node1"} ${cur}`,
        `ceems_ipmi_dcmi_max_watts{hostname="node1"} ${max}`,
        `ceems_ipmi_dcmi_min_watts{hostname="node1"} ${min}`,
      ]);
      assert.equal(
        set.families.get('ceems_ipmi_dcmi_current_watts')?.help,
        'Current Power consumption in watts',
      );
    });
  }

  it('no cache yet: failure is "no data"; then failures, hangs, garbage and zero readings re-export the cache', async () => {
    const c = createIpmiDcmiCollector(
      ctx([
        '--collector.ipmi_dcmi.test-mode',
        `--collector.ipmi_dcmi.cmd=${BIN}/ipmitool dcmi power reading`,
      ]),
      {
        timeoutMs: 300,
      },
    );
    const run = async () => {
      const set = new FamilySet();
      await c.update(set, new AbortController().signal);
      return lines(set);
    };
    setMode('fail');
    await assert.rejects(
      run(),
      (e: Error) =>
        e instanceof NoDataError &&
        /exited with status 1: ipmitool: could not find inband device/.test(e.message),
    );
    setMode('ok');
    const good = await run();
    assert.equal(good.length, 4);
    for (const mode of ['fail', 'garbage', 'zero', 'hang']) {
      setMode(mode);
      const t0 = Date.now();
      assert.deepEqual(await run(), good, mode);
      if (mode === 'hang') assert.ok(Date.now() - t0 < 2000, 'hung command is killed at the timeout');
    }
  });

  it('a hung command is killed when the scrape aborts', async () => {
    setMode('hang');
    const c = createIpmiDcmiCollector(
      ctx([
        '--collector.ipmi_dcmi.test-mode',
        `--collector.ipmi_dcmi.cmd=${BIN}/ipmi-dcmi --get-system-power-statistics`,
      ]),
      {
        timeoutMs: 10_000,
      },
    );
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t0 = Date.now();
    await assert.rejects(c.update(new FamilySet(), ac.signal), /aborted/);
    assert.ok(Date.now() - t0 < 2000);
  });

  it('capmc error object and unexpected arguments fail the call', async () => {
    setMode('capmc-error');
    const c = createIpmiDcmiCollector(
      ctx([
        '--collector.ipmi_dcmi.test-mode',
        `--collector.ipmi_dcmi.cmd=${BIN}/capmc get_system_power -w 600`,
      ]),
    );
    await assert.rejects(c.update(new FamilySet(), new AbortController().signal), /capmc error 52/);
    setMode('ok');
    const bad = createIpmiDcmiCollector(
      ctx(['--collector.ipmi_dcmi.test-mode', `--collector.ipmi_dcmi.cmd=${BIN}/capmc get_power`]),
    );
    await assert.rejects(
      bad.update(new FamilySet(), new AbortController().signal),
      /exited with status 2: capmc: unexpected arguments: get_power/,
    );
  });
});
