// Power and energy sensors of hwmon chips (spec exporter.md §5.4).

import { readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isNotFound } from '../../common/errno.js';
import { type ReadFile, readFileFast } from '../../common/fsread.js';
import {
  type Collector,
  type CollectorContext,
  type CollectorDefinition,
  type Emitter,
  readOrNoData,
} from '../collector.js';

const SENSOR_FILE = /^(power|energy)([0-9]+)?(_(input_lowest|input_highest|average|input))?$/;

/** Metric per `<type>_<property>`; other combinations are not exported. */
const METRICS: Record<string, { name: string; help: string }> = {
  power_input: { name: 'ceems_hwmon_power_current_watts', help: 'Current Power consumption in watts' },
  power_input_lowest: { name: 'ceems_hwmon_power_min_watts', help: 'Minimum Power consumption in watts' },
  power_input_highest: { name: 'ceems_hwmon_power_max_watts', help: 'Maximum Power consumption in watts' },
  power_average: { name: 'ceems_hwmon_power_avg_watts', help: 'Average Power consumption in watts' },
  energy_input: { name: 'ceems_hwmon_energy_current_joules', help: 'Current Energy consumption in joules' },
};

/** A sysfs attribute is at most one page (PAGE_SIZE, 4 KiB): a longer file is not an hwmon attribute. */
const SYSFS_ATTRIBUTE_BYTES = 4096;

/** One hwmon attribute through the exporter's reader (regular files only, at most one page). */
export function readSysfsAttribute(path: string): string {
  return readFileFast(path, SYSFS_ATTRIBUTE_BYTES);
}

/** Lower-case; every character outside [a-z0-9:_] → `_`; leading/trailing `_` trimmed. */
export function cleanName(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9:_]/g, '_')
    .replace(/^_+|_+$/g, '');
}

export interface Sensor {
  /** `<type><num>`, e.g. `power1`. */
  sensor: string;
  metric: { name: string; help: string };
  file: string;
}

/** Sensor files of one directory that map to an exported metric. */
export function sensorFiles(dir: string): Sensor[] {
  const out: Sensor[] = [];
  for (const file of readdirSync(dir).sort()) {
    const m = SENSOR_FILE.exec(file);
    if (!m) continue;
    const metric = METRICS[`${m[1]}_${m[4] ?? ''}`];
    if (!metric) continue;
    out.push({ sensor: `${m[1]}${Number(m[2] ?? 0)}`, metric, file: join(dir, file) });
  }
  return out;
}

/**
 * Stable chip name: `<devtype>_<devname>` (or `<devname>`) of the resolved `device` link, else the cleaned
 * `name` file, else the resolved hwmonX directory name.
 */
export function chipName(dir: string, read: ReadFile): string {
  try {
    const device = realpathSync(join(dir, 'device'));
    const devName = cleanName(basename(device));
    const devType = cleanName(basename(dirname(device)));
    if (devType !== '' && devName !== '') return `${devType}_${devName}`;
    if (devName !== '') return devName;
  } catch {
    // no device link: fall through
  }
  const name = humanReadableName(dir, read);
  if (name !== '') return name;
  return cleanName(basename(realpathSync(dir)));
}

/** Cleaned content of the `name` file, `""` when there is none. */
export function humanReadableName(dir: string, read: ReadFile): string {
  try {
    return cleanName(read(join(dir, 'name')));
  } catch {
    return '';
  }
}

/** hwmonX directories (symlinks followed) in file-name order. */
export function hwmonDirs(root: string): string[] {
  const dirs: string[] = [];
  for (const entry of readdirSync(root).sort()) {
    const dir = join(root, entry);
    try {
      if (statSync(dir).isDirectory()) dirs.push(dir);
    } catch {
      // dangling link or removed meanwhile
    }
  }
  return dirs;
}

/** Sensors of a chip: its own directory, then its `device/` directory, which wins for the same file name. */
function chipSensors(dir: string): Sensor[] {
  const sensors = new Map<string, Sensor>();
  for (const s of sensorFiles(dir)) sensors.set(basename(s.file), s);
  try {
    for (const s of sensorFiles(join(dir, 'device'))) sensors.set(basename(s.file), s);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  return [...sensors.values()];
}

export class HwmonCollector implements Collector {
  private readonly root: string;

  constructor(
    private readonly ctx: CollectorContext,
    private readonly read: ReadFile = readSysfsAttribute,
  ) {
    this.root = join(ctx.sysfs, 'class', 'hwmon');
    let found = 0;
    try {
      for (const dir of hwmonDirs(this.root)) found += chipSensors(dir).length;
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    // An enabled hwmon collector without any power sensor is a misconfiguration worth failing on.
    if (found === 0) throw new Error(`no hwmon power or energy sensors found under ${this.root}`);
  }

  update(out: Emitter): void {
    const dirs = readOrNoData(this.root, hwmonDirs);
    for (const dir of dirs) {
      let sensors: Sensor[];
      let chip: string;
      try {
        sensors = chipSensors(dir);
        chip = chipName(dir, this.read);
      } catch (e) {
        if (!isNotFound(e)) throw e;
        this.ctx.logger.debug({ chip: dir }, 'hwmon: chip vanished during the scrape');
        continue;
      }
      const labels = { chip, chip_name: humanReadableName(dir, this.read), hostname: this.ctx.hostname };
      for (const s of sensors) {
        let text: string;
        try {
          text = this.read(s.file).trim();
        } catch (e) {
          this.ctx.logger.debug({ file: s.file, err: (e as Error).message }, 'hwmon: sensor unreadable');
          continue;
        }
        const value = Number(text);
        if (text === '' || !Number.isFinite(value)) {
          this.ctx.logger.warn({ file: s.file, value: text }, 'hwmon: sensor value is not a number, skipped');
          continue;
        }
        if (value > 0)
          out.emit(s.metric.name, 'gauge', s.metric.help, { ...labels, sensor: s.sensor }, value / 1e6);
      }
    }
  }
}

export const hwmon: CollectorDefinition = {
  name: 'hwmon',
  defaultEnabled: false,
  flags: [],
  create: (ctx) => new HwmonCollector(ctx),
};
