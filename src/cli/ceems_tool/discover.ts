// What a running Prometheus scrapes, turned into rule plans (cli.md §2.3): per CEEMS exporter job the node
// power source of the highest priority, per GPU exporter job the vendor template, and the emission factors.

import { createRequire } from 'node:module';
import { CliError } from '../http.js';
import type { LabelSet, Prometheus } from './prometheus.js';
import {
  AMD_DEVICE_PROFILING,
  DCGM_PROFILING,
  type EmissionFactor,
  type GpuPlan,
  type GpuVendor,
  type HostPlan,
  type HostSource,
} from './rules.js';

const require = createRequire(import.meta.url);

/** GPU power series per exporter. */
const GPU_POWER: { vendor: GpuVendor; metric: string }[] = [
  { vendor: 'nvidia', metric: 'DCGM_FI_DEV_POWER_USAGE_INSTANT' },
  { vendor: 'amd-smi', metric: 'amd_gpu_power' },
  { vendor: 'amd-device-metrics', metric: 'gpu_power_usage' },
];

/** Usage/memory/profiling series per vendor (their presence decides which GPU records are generated). */
const GPU_EXTRA: Record<GpuVendor, { usage: string; memory: string; profiling: readonly string[] }> = {
  nvidia: { usage: 'DCGM_FI_DEV_GPU_UTIL', memory: 'DCGM_FI_DEV_FB_USED', profiling: DCGM_PROFILING },
  'amd-smi': { usage: 'amd_gpu_use_percent', memory: 'amd_gpu_memory_use_percent', profiling: [] },
  'amd-device-metrics': {
    usage: 'gpu_gfx_activity',
    memory: 'gpu_used_vram',
    profiling: AMD_DEVICE_PROFILING,
  },
};

/** Host part of `instance`: how the original pairs a GPU exporter job with the CEEMS job of the same nodes. */
const instanceHost = (s: LabelSet) => (s.instance ?? '').split(':')[0] ?? '';

/** The labels a GPU exporter's series need (from the relabel configs) to join the units' GPU mapping. */
const JOIN_LABELS: Record<GpuVendor, string> = {
  nvidia: 'gpuuuid',
  'amd-smi': 'index',
  'amd-device-metrics': 'index',
};

/**
 * Identity of a GPU shared by the exporter series and the unit GPU mapping: the UUID for NVIDIA; host and
 * ordinal for AMD (the AMD SMI exporter has no node label, so the host part of `instance` stands in).
 */
function gpuKey(vendor: GpuVendor, s: LabelSet): string | undefined {
  if (vendor === 'nvidia') return s.gpuuuid;
  const host = s.hostname ?? (s.instance ?? '').replace(/:[0-9]+$/, '');
  return `${host}/${s.index ?? ''}`;
}

export interface RulesOptions {
  pue: number;
  emissionFactor: number;
  countryCode: string;
  evalIntervalMs?: number;
  /** Emission providers to ignore, or all of them. */
  disableProviders: string[] | 'all';
  /** Asks the operator to pick one of several values (Redfish chassis). */
  choose: (question: string, choices: string[]) => Promise<string>;
  warn: (message: string) => void;
  /** A line of information (not a warning). */
  say: (message: string) => void;
}

export interface Plans {
  hosts: HostPlan[];
  gpus: GpuPlan[];
}

const byJob = (series: LabelSet[]) => {
  const m = new Map<string, LabelSet[]>();
  for (const s of series) {
    const job = s.job ?? '';
    if (!m.has(job)) m.set(job, []);
    m.get(job)!.push(s);
  }
  return m;
};

const sel = (metric: string) => `{__name__=${JSON.stringify(metric)}}`;

/** Static per-country carbon intensity (gCO2e/kWh) of the @tgwf/co2 average-intensity data set. */
export function staticCountryFactor(countryCode: string): number | undefined {
  const countries = require('i18n-iso-countries') as { alpha2ToAlpha3(code: string): string | undefined };
  const alpha3 = countries.alpha2ToAlpha3(countryCode.toUpperCase());
  if (!alpha3) return undefined;
  const { averageIntensity } = require('@tgwf/co2/data') as {
    averageIntensity: { data: Record<string, number> };
  };
  const v = averageIntensity.data[alpha3];
  return typeof v === 'number' && v > 0 ? v : undefined;
}

async function emissionFactors(prom: Prometheus, o: RulesOptions): Promise<EmissionFactor[]> {
  if (o.countryCode !== '') {
    const series = await prom.series(
      `ceems_emissions_gCo2_kWh{country_code=${JSON.stringify(o.countryCode)}}`,
    );
    const providers = [...new Set(series.map((s) => s.provider ?? ''))]
      .filter((p) => p !== '' && o.disableProviders !== 'all' && !o.disableProviders.includes(p))
      .sort();
    if (providers.length > 0) return providers.map((provider) => ({ provider, countryCode: o.countryCode }));
    const v = staticCountryFactor(o.countryCode);
    if (v !== undefined) {
      o.say(`static emission factor ${v} g/kWh from OWID data will be used`); // the original's line
      return [{ provider: 'owid', gramsPerKwh: v }];
    }
    o.warn(`no emission factor known for country code ${o.countryCode}`);
  }
  if (o.emissionFactor > 0) return [{ provider: 'custom', gramsPerKwh: o.emissionFactor }];
  o.warn('no emission factor (set --country-code or --emission-factor): emission rules are not generated');
  return [];
}

export async function discoverPlans(prom: Prometheus, o: RulesOptions): Promise<Plans> {
  const global = await prom.globalIntervals();
  const scrape = await prom.jobScrapeIntervals();
  const evalIntervalMs = o.evalIntervalMs ?? global.evaluationMs;
  const rateFor = (job: string) => 4 * (scrape.get(job) ?? global.scrapeMs);

  const ceemsJobs = [
    ...byJob(await prom.series(sel('ceems_compute_unit_cpu_user_seconds_total'))).keys(),
  ].sort();
  if (ceemsJobs.length === 0) {
    throw new CliError(
      'no ceems_compute_unit_cpu_user_seconds_total series found in the window: is a CEEMS exporter with a ' +
        'resource manager collector (slurm, libvirt, k8s) scraped by this Prometheus?',
    );
  }
  const found = async (metric: string) => byJob(await prom.series(sel(metric)));
  /** Which of `metrics` the job has, in the order given. */
  const present = async (job: string, metrics: readonly string[]) => {
    const names = new Set(
      (await prom.series(metrics.map((m) => `${m}{job=${JSON.stringify(job)}}`))).map((s) => s.__name__),
    );
    return metrics.filter((m) => names.has(m));
  };
  const [cray, redfish, ipmi, rapl, dram, estimated, flags] = await Promise.all([
    found('ceems_cray_pm_counters_power_watts'),
    found('ceems_redfish_current_watts'),
    found('ceems_ipmi_dcmi_current_watts'),
    found('ceems_rapl_package_joules_total'),
    found('ceems_rapl_dram_joules_total'),
    found('ceems_estimated_power_watts'),
    prom.series(sel('ceems_compute_unit_gpu_index_flag')),
  ]);
  const emissions = await emissionFactors(prom, o);

  // GPU exporter jobs whose devices appear in the units' GPU mapping
  const gpus: GpuPlan[] = [];
  const gpuOfCeemsJob = new Map<string, GpuPlan>();
  for (const g of GPU_POWER) {
    for (const [gpuJob, series] of await found(g.metric)) {
      const keys = new Set(series.map((s) => gpuKey(g.vendor, s)));
      let users = flags.filter((f) => keys.has(gpuKey(g.vendor, f)));
      if (users.length === 0) {
        // not relabelled yet: pair by node as the original does, the rules return data once relabelled
        const hosts = new Set(series.map(instanceHost));
        users = flags.filter((f) => hosts.has(instanceHost(f)));
        if (users.length === 0) {
          o.warn(`job ${gpuJob}: no ${g.metric} series on a node whose units use GPUs; skipped`);
          continue;
        }
        o.warn(
          `job ${gpuJob}: ${g.metric} series have no ${JOIN_LABELS[g.vendor]} label matching the units' GPUs: ` +
            'the GPU rules return data only once the relabel configs of `ceems_tool tsdb create-relabel-configs` ' +
            'are in its scrape config',
        );
      }
      const counts = byJob(users);
      const ceemsJob = [...counts.keys()].sort((a, b) => counts.get(b)!.length - counts.get(a)!.length)[0]!;
      const extra = GPU_EXTRA[g.vendor];
      const has = async (m: string) => (await present(gpuJob, [m])).length > 0;
      const plan: GpuPlan = {
        gpuJob,
        ceemsJob,
        vendor: g.vendor,
        usage: await has(extra.usage),
        memory: await has(extra.memory),
        profiling: extra.profiling.length > 0 ? await present(gpuJob, extra.profiling) : [],
        evalIntervalMs,
        pue: o.pue,
        emissions,
      };
      gpus.push(plan);
      if (!gpuOfCeemsJob.has(ceemsJob)) gpuOfCeemsJob.set(ceemsJob, plan);
    }
  }

  const hosts: HostPlan[] = [];
  for (const job of ceemsJobs) {
    let source: HostSource;
    let chassis: string | undefined;
    if (cray.has(job)) source = 'cray';
    else if (redfish.has(job)) {
      source = 'redfish';
      const all = [...new Set(redfish.get(job)!.map((s) => s.chassis ?? ''))].sort();
      chassis =
        all.length === 1
          ? all[0]
          : await o.choose(
              `Multiple chassis found for ceems_redfish_current_watts for job ${job}\n` +
                'Choose the chassis that reports host power usage',
              all,
            );
    } else if (ipmi.has(job)) source = 'ipmi';
    else if (rapl.has(job)) source = 'rapl';
    else if (estimated.has(job)) source = 'estimated';
    else {
      o.warn(
        `job ${job}: no node power series (Cray PM counters, Redfish, IPMI DCMI, RAPL or estimated); skipped`,
      );
      continue;
    }
    const plan: HostPlan = {
      job,
      source,
      chassis,
      rapl: { package: rapl.has(job), dram: rapl.has(job) && dram.has(job) },
      rateIntervalMs: rateFor(job),
      evalIntervalMs,
      pue: o.pue,
      emissions,
    };
    const gpu = gpuOfCeemsJob.get(job);
    if (gpu && (source === 'ipmi' || source === 'redfish')) {
      const includes = await bmcIncludesGpuPower(prom, plan, gpu, global.scrapeMs);
      if (includes) plan.subtractGpu = { job: gpu.gpuJob, vendor: gpu.vendor };
    }
    hosts.push(plan);
  }
  return { hosts, gpus };
}

/**
 * Whether the BMC reading includes the GPUs: over the window, the BMC power of every host never falls below
 * the summed power of its GPUs. A BMC that excludes them (GPUs on their own supply) drops below that sum as
 * soon as the GPUs draw more than the rest of the node.
 */
async function bmcIncludesGpuPower(
  prom: Prometheus,
  host: HostPlan,
  gpu: GpuPlan,
  stepMs: number,
): Promise<boolean> {
  const series = host.source === 'redfish' ? 'ceems_redfish_current_watts' : 'ceems_ipmi_dcmi_current_watts';
  const matcher =
    host.source === 'redfish'
      ? `{job=${JSON.stringify(host.job)},chassis=${JSON.stringify(host.chassis ?? '')}}`
      : `{job=${JSON.stringify(host.job)}}`;
  const gpuPower: Record<GpuVendor, string> = {
    nvidia: `sum by (hostname) (label_replace(DCGM_FI_DEV_POWER_USAGE_INSTANT{job=${JSON.stringify(gpu.gpuJob)}}, "hostname", "$1", "Hostname", "(.+)"))`,
    'amd-device-metrics': `sum by (hostname) (gpu_power_usage{job=${JSON.stringify(gpu.gpuJob)}})`,
    'amd-smi': `sum by (hostname) (label_replace(amd_gpu_power{job=${JSON.stringify(gpu.gpuJob)}}, "hostname", "$1", "instance", "([^:]+)(?::[0-9]+)?")) / 1e6`,
  };
  const step = `${Math.max(1, Math.round(stepMs / 1000))}s`;
  const range = `${Math.max(1, Math.round((prom.window.end.getTime() - prom.window.start.getTime()) / 1000))}s`;
  const query = `min(min_over_time((sum by (hostname) (${series}${matcher}) - on (hostname) ${gpuPower[gpu.vendor]})[${range}:${step}]))`;
  const r = await prom.query(query);
  return r.length > 0 && r[0]!.value >= 0;
}
