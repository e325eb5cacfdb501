// The ebpf sub-collector on this machine's kernel, with cgroup v2 ids (the SLURM testbed test covers v1):
// a process in a child cgroup of a unit is counted for the unit on the right mount point, the count stays
// when that child cgroup is removed, and the removed cgroup's key leaves the map. Also the pure parts: flags,
// capabilities, the /proc/cgroups index. And TCP retransmissions, which the testbed's loopback never has.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, statfsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseFlags } from '../../../../src/common/flags.js';
import { createLogger } from '../../../../src/common/logger.js';
import type { CgroupUnit } from '../../../../src/exporter/cgroup/walk.js';
import { FamilySet } from '../../../../src/exporter/collector.js';
import { EbpfCollector, subsystemIndex } from '../../../../src/exporter/ebpf/collector.js';
import { ebpfCapabilities, ebpfGroups } from '../../../../src/exporter/ebpf/flags.js';
import { lookupAll } from '../../../../src/exporter/ebpf/libbpf.js';
import { LoadedPrograms } from '../../../../src/exporter/ebpf/loader.js';
import { allFlags, neededCapabilities } from '../../../../src/exporter/main.js';
import { mountOf } from '../../../helpers/mounts.js';

const CGROUP2_SUPER_MAGIC = 0x63677270;
const RETRANSMIT_PY = join(import.meta.dirname, '../../../fixtures/ebpf/retransmit.py');
const flags = (...args: string[]) => parseFlags(allFlags(), args, { env: {} }).flags;

/** This machine's cgroup v2 hierarchy: /sys/fs/cgroup itself, or the hybrid layout's unified/. */
function cgroup2Root(): string {
  for (const d of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'])
    if (existsSync(d) && statfsSync(d).type === CGROUP2_SUPER_MAGIC) return d;
  throw new Error('no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified');
}

describe('ebpf flags, capabilities and subsystem index', () => {
  it('io-metrics switches on file IO and file operations, network-metrics the network', () => {
    assert.deepEqual([...ebpfGroups(flags())], []);
    assert.deepEqual([...ebpfGroups(flags('--collector.ebpf.io-metrics'))], ['io', 'file']);
    assert.deepEqual([...ebpfGroups(flags('--collector.ebpf.network-metrics'))], ['network']);
  });
  it('needs cap_bpf and cap_perfmon from 5.8, cap_sys_admin before, nothing when off', () => {
    const on = flags('--collector.ebpf.network-metrics');
    assert.deepEqual(ebpfCapabilities(on, '6.18.44-fc-v1147'), ['cap_bpf', 'cap_perfmon']);
    assert.deepEqual(ebpfCapabilities(on, '5.8.0'), ['cap_bpf', 'cap_perfmon']);
    assert.deepEqual(ebpfCapabilities(on, '5.4.0-150-generic'), ['cap_sys_admin']);
    assert.deepEqual(ebpfCapabilities(flags(), '6.18.0'), []);
  });
  it('the exporter keeps them for ebpf when a unit collector runs it', () => {
    const ctx = (...args: string[]) => ({
      hostname: 'n',
      procfs: '/proc',
      sysfs: '/sys',
      cgroupfs: '/sys/fs/cgroup',
      flags: flags(...args),
      logger: createLogger({ level: 'silent' }),
    });
    assert.deepEqual(neededCapabilities(['slurm'], ctx('--collector.ebpf.io-metrics')).ebpf, [
      'cap_bpf',
      'cap_perfmon',
    ]);
    assert.equal(neededCapabilities(['slurm'], ctx()).ebpf, undefined);
  });
  it('a v1 subsystem index is its line in /proc/cgroups', () => {
    const procCgroups =
      '#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t2\t1\ncpu\t1\t1\t1\ncpuacct\t2\t2\t1\n';
    assert.equal(subsystemIndex(procCgroups, 'cpuacct'), 2);
    assert.throws(() => subsystemIndex(procCgroups, 'memory'), /'memory' is not in \/proc\/cgroups/);
  });
});

describe('ebpf programs on this kernel, cgroup v2', () => {
  const root = cgroup2Root();
  const unitDir = join(root, `ceems-ebpf-test-${process.pid}`);
  const stepDir = join(unitDir, 'step_0');
  const work = mkdtempSync(join(tmpdir(), 'ebpf-collector-'));
  let programs: LoadedPrograms;
  let collector: EbpfCollector;
  const unit: CgroupUnit = {
    id: 'unit1',
    uuid: 'unit1',
    cgrouphostname: '',
    rel: unitDir.slice(root.length),
    children: [stepDir.slice(root.length)],
    pids: [],
  };

  before(() => {
    mkdirSync(stepDir, { recursive: true });
    programs = LoadedPrograms.load({ groups: new Set(['io', 'file', 'network']), v1Subsystem: -1 });
    collector = new EbpfCollector({
      manager: 'slurm',
      hostname: 'h',
      procfs: '/proc',
      cgroupBase: root,
      programs,
      mountFilter: [],
    });
  });
  after(() => {
    collector?.stop();
    for (const d of [stepDir, unitDir]) if (existsSync(d)) rmdirSync(d);
    rmSync(work, { recursive: true, force: true });
  });

  /** One scrape: the unit's value of each write family on the work directory's mount. */
  const writes = async () => {
    const out = new FamilySet();
    await collector.update(out, [unit]);
    const value = (family: string) =>
      out.families
        .get(`ceems_ebpf_write_${family}_total`)
        ?.samples.find((x) => x.labels.uuid === 'unit1' && x.labels.mountpoint === mountOf(work))?.value;
    return { bytes: value('bytes'), requests: value('requests'), errors: value('errors') };
  };

  it('counts a process of a child cgroup for its unit, on the file mount point', async () => {
    // the shell moves itself into the step before dd writes: 16 × 64 KiB
    const r = spawnSync('sh', [
      '-c',
      `echo $$ > ${stepDir}/cgroup.procs && exec dd if=/dev/zero of=${work}/f bs=64k count=16 status=none`,
    ]);
    assert.equal(r.status, 0, String(r.stderr));
    assert.deepEqual(await writes(), { bytes: 16 * 65536, requests: 16, errors: 0 });
  });

  it('keeps only the mount points --collector.ebpf.fs-mount-point names (substrings)', async () => {
    // a second reader of the same maps, scraping once (its key rules never act on the first's keys then)
    const filtered = new EbpfCollector({
      manager: 'slurm',
      hostname: 'h',
      procfs: '/proc',
      cgroupBase: root,
      programs,
      mountFilter: ['/dev'],
    });
    const out = new FamilySet();
    await filtered.update(out, [unit]);
    const mounts = new Set(
      out.families.get('ceems_ebpf_read_bytes_total')?.samples.map((x) => x.labels.mountpoint),
    );
    assert.ok(mounts.has('/dev'), `dd read /dev/zero: ${[...mounts]}`);
    assert.deepEqual(
      [...mounts].filter((m) => !m?.includes('/dev')),
      [],
    );
  });

  it('keeps the count when the child cgroup is removed and deletes its key from the map', async () => {
    const stepId = statSync(stepDir, { bigint: true }).ino;
    rmdirSync(stepDir);
    unit.children.length = 0;
    assert.deepEqual(await writes(), { bytes: 16 * 65536, requests: 16, errors: 0 });
    const info = programs.maps.io_stats;
    const keys = Buffer.alloc(info.keySize * info.maxEntries);
    const n = lookupAll(info, keys, Buffer.alloc(info.valueSize * info.maxEntries));
    const ids = Array.from({ length: n }, (_, i) => keys.readBigUInt64LE(i * info.keySize));
    assert.ok(!ids.includes(stepId), 'the removed cgroup has no key left');
  });

  it('TCP retransmissions (sent from timer context) are counted for the cgroup that sent on the socket', async () => {
    // a network namespace of its own: taking its lo down drops what is in flight, the timer resends it
    const r = spawnSync('sh', [
      '-c',
      `echo $$ > ${unitDir}/cgroup.procs && exec unshare -n sh -c 'ip link set lo up && exec /usr/bin/python3 -B ${RETRANSMIT_PY} 1000000'`,
    ]);
    assert.equal(r.status, 0, String(r.stderr));
    const [sent = 0, segments = 0] = String(r.stdout).trim().split(' ').map(Number);
    assert.ok(segments > 0, `the kernel retransmitted nothing in ${sent / 1e6} transfers: ${r.stdout}`);
    const out = new FamilySet();
    await collector.update(out, [unit]);
    const tcp4 = (family: string) =>
      out.families
        .get(`ceems_ebpf_${family}_total`)
        ?.samples.find(
          (x) => x.labels.uuid === 'unit1' && x.labels.proto === 'tcp' && x.labels.family === 'ipv4',
        )?.value ?? 0;
    assert.equal(tcp4('egress_bytes'), sent);
    assert.equal(tcp4('ingress_bytes'), sent);
    // one event per retransmitted buffer, which may hold several of the kernel's segments; a retransmitted
    // FIN (the listener's side closing while lo is down) has no data bytes
    const packets = tcp4('retrans_packets');
    assert.ok(
      packets >= 1 && packets <= segments,
      `retransmitted packets: ${packets}, segments: ${segments}`,
    );
    assert.ok(tcp4('retrans_bytes') <= sent, `retransmitted bytes: ${tcp4('retrans_bytes')}`);
  });

  it('a unit directory made again at the same path (a requeued job) is followed to its new cgroup id', async () => {
    const dir = join(root, `ceems-ebpf-requeue-${process.pid}`);
    const requeued: CgroupUnit = {
      ...unit,
      id: 'unit2',
      uuid: 'unit2',
      rel: dir.slice(root.length),
      children: [],
    };
    /** A new directory at the path, dd writing `blocks` × 64 KiB in it. */
    const runIn = (blocks: number) => {
      mkdirSync(dir);
      const r = spawnSync('sh', [
        '-c',
        `echo $$ > ${dir}/cgroup.procs && exec dd if=/dev/zero of=${work}/g bs=64k count=${blocks} status=none`,
      ]);
      assert.equal(r.status, 0, String(r.stderr));
    };
    const written = async () => {
      const out = new FamilySet();
      await collector.update(out, [requeued]);
      return out.families
        .get('ceems_ebpf_write_bytes_total')
        ?.samples.find((x) => x.labels.uuid === 'unit2' && x.labels.mountpoint === mountOf(work))?.value;
    };
    try {
      runIn(4);
      assert.equal(await written(), 4 * 65536);
      rmdirSync(dir); // dd has exited: the cgroup is empty
      runIn(8);
      // the first run's cgroup is gone while the unit lives on: its count is kept, the new one's added
      assert.equal(await written(), 12 * 65536);
      assert.equal(await written(), 12 * 65536, 'the new cgroup stays counted');
    } finally {
      if (existsSync(dir)) rmdirSync(dir);
    }
  });

  it('the committed object is what its build.sh builds from its source', () => {
    execFileSync(join(import.meta.dirname, '../../../../src/exporter/ebpf/bpf/build.sh'), ['--check'], {
      stdio: 'pipe',
    });
  });
});
