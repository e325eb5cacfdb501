// A fake sysfs with the node energy counters the exporter reads at unit start and end (issue 20, B9),
// in the kernel's formats: powercap RAPL zones (package-0 with its core subzone, dram; energy_uj wraps
// at max_energy_range_uj), Cray pm_counters `energy` ("<J> J <µs> us") and an hwmon energy1_input (µJ).
// Tests advance the counters by hand or at a fixed rate.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

export interface EnergyCounters {
  /** µJ of each counter now. */
  packageUj: number;
  dramUj: number;
  crayJ: number;
  hwmonUj: number;
}

/** Where RAPL's package counter wraps: a real package zone's max_energy_range_uj (262 kJ). */
export const RAPL_MAX_UJ = 262_143_328_850;

export class FakeEnergySysfs {
  readonly counters: EnergyCounters = { packageUj: 0, dramUj: 0, crayJ: 0, hwmonUj: 0 };
  private writer: Worker | undefined;
  private writeGap: Int32Array | undefined;

  /** Builds the tree under `sysfs` with `cpus` online CPUs and which counters to include. */
  constructor(
    readonly sysfs: string,
    cpus: number,
    private readonly kinds: { rapl?: boolean; cray?: boolean; hwmon?: boolean } = { rapl: true },
  ) {
    const zone = (dir: string, name: string) => {
      mkdirSync(join(this.powercap, dir), { recursive: true });
      writeFileSync(join(this.powercap, dir, 'name'), `${name}\n`);
      writeFileSync(join(this.powercap, dir, 'max_energy_range_uj'), `${RAPL_MAX_UJ}\n`);
    };
    mkdirSync(join(sysfs, 'devices/system/cpu'), { recursive: true });
    writeFileSync(join(sysfs, 'devices/system/cpu/online'), `0-${cpus - 1}\n`);
    if (kinds.rapl) {
      zone('intel-rapl:0', 'package-0');
      zone('intel-rapl:0:0', 'core'); // part of the package: never added
      writeFileSync(join(this.powercap, 'intel-rapl:0:0', 'energy_uj'), '123\n');
      zone('intel-rapl:0:1', 'dram');
    }
    if (kinds.cray) mkdirSync(join(sysfs, 'cray/pm_counters'), { recursive: true });
    if (kinds.hwmon) {
      mkdirSync(join(sysfs, 'class/hwmon/hwmon0'), { recursive: true });
      writeFileSync(join(sysfs, 'class/hwmon/hwmon0/name'), 'power_meter\n');
    }
    this.write();
  }

  private get powercap(): string {
    return join(this.sysfs, 'class/powercap');
  }

  /** Writes the counters as the kernel shows them (RAPL modulo its range). */
  write(): void {
    const c = this.counters;
    if (this.kinds.rapl) {
      writeFileSync(join(this.powercap, 'intel-rapl:0/energy_uj'), `${c.packageUj % RAPL_MAX_UJ}\n`);
      writeFileSync(join(this.powercap, 'intel-rapl:0:1/energy_uj'), `${c.dramUj % RAPL_MAX_UJ}\n`);
    }
    if (this.kinds.cray)
      writeFileSync(join(this.sysfs, 'cray/pm_counters/energy'), `${c.crayJ} J 1733270000000000 us\n`);
    if (this.kinds.hwmon)
      writeFileSync(join(this.sysfs, 'class/hwmon/hwmon0/energy1_input'), `${c.hwmonUj}\n`);
  }

  advance(d: Partial<EnergyCounters>): void {
    for (const [k, v] of Object.entries(d)) this.counters[k as keyof EnergyCounters] += v;
    this.write();
  }

  /**
   * Runs the package counter at `watts` from now (the others stay): rewritten every 50 ms from the clock,
   * so that a late timer under load delays a value but never loses energy. The writer is a worker
   * thread: a test's synchronous commands (sbatch, squeue) block its own event loop for a second or more,
   * and a counter frozen meanwhile is read stale at a job's start (11 % too much energy in CI). A write
   * can still stall (a disk busy with other tests): `maxWriteGapMs` says how stale the file ever was.
   * `counters.packageUj` keeps the value the writer started from.
   */
  runAt(watts: number): void {
    const file = join(this.powercap, 'intel-rapl:0/energy_uj');
    this.writeGap = new Int32Array(new SharedArrayBuffer(4));
    this.writer = new Worker(
      `const { writeFileSync } = require('node:fs');
       const { file, base, watts, max, gap } = require('node:worker_threads').workerData;
       const t0 = Date.now();
       let last = t0;
       setInterval(() => {
         writeFileSync(file, \`\${(base + watts * (Date.now() - t0) * 1000) % max}\\n\`);
         const now = Date.now();
         if (now - last > Atomics.load(gap, 0)) Atomics.store(gap, 0, now - last);
         last = now;
       }, 50);`,
      {
        eval: true,
        workerData: { file, base: this.counters.packageUj, watts, max: RAPL_MAX_UJ, gap: this.writeGap },
      },
    );
  }

  /** The longest time between two completed writes of `runAt`'s writer: how stale a reading could be. */
  maxWriteGapMs(): number {
    return this.writeGap ? Atomics.load(this.writeGap, 0) : 0;
  }

  async stop(): Promise<void> {
    await this.writer?.terminate();
  }
}
