// Shared parts of the CEEMS dashboards: the dashboard defaults, a time series panel whose queries are
// logged for the tests, the link to the single-unit dashboard and the API columns shown in tables.

import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import type { QueryLog as Log } from './model.js';

export const SINGLE_UNIT_UID = 'ceems-single-unit';
export const TAGS = ['ceems'];
export const U = '{uuid="$uuid"}';
/** Grids compared by default: a low-carbon, two coal-heavy, a hydro and a mixed one. */
export const COUNTRIES = 'FR|DE|PL|SE|US';

export function base(uid: string, title: string, description: string): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(TAGS)
    .editable()
    .timezone('browser')
    .refresh('1m')
    .time({ from: 'now-24h', to: 'now' })
    .tooltip(dashboard.DashboardCursorSync.Crosshair);
}

export function series(
  log: Log,
  title: string,
  unit: string,
  queries: [string, string][],
  opts: { optional?: 'gpu' | 'perf' | 'ebpf'; description?: string } = {},
) {
  const p = new timeseries.PanelBuilder()
    .title(title)
    .unit(unit)
    .lineWidth(2)
    .fillOpacity(10)
    .height(8)
    .span(12);
  if (opts.description) p.description(opts.description);
  for (const [i, [expr, legend]] of queries.entries())
    p.withTarget(log.prom(title, expr, legend, opts).refId(String.fromCharCode(65 + i)));
  return p;
}

export const unitLink = () =>
  new dashboard.DashboardLinkBuilder('Open this unit')
    .type(dashboard.DashboardLinkType.Link)
    .url(
      `/d/${SINGLE_UNIT_UID}?var-uuid=\${__value.raw}&var-cluster_id=\${cluster_id}&\${${'ds_ceems_lb'}:queryparam}&\${${'ds_ceems_api'}:queryparam}`,
    )
    .icon('dashboard')
    .tooltip('Single unit dashboard')
    .tags([])
    .asDropdown(false)
    .targetBlank(false)
    .includeVars(false)
    .keepTime(false);

/** Energy and emissions columns, named alike in the API's Unit and Usage models. */
const ENERGY_COLUMNS = [
  { selector: 'total_cpu_energy_usage_kwh.total', text: 'Host energy (kWh)', type: 'number' as const },
  { selector: 'total_gpu_energy_usage_kwh.total', text: 'GPU energy (kWh)', type: 'number' as const },
  { selector: 'total_cpu_emissions_gms.owid_total', text: 'Emissions OWID (g)', type: 'number' as const },
  { selector: 'total_cpu_emissions_gms.rte_total', text: 'Emissions RTE (g)', type: 'number' as const },
  {
    selector: 'total_cpu_emissions_gms.emaps_total',
    text: 'Emissions Electricity Maps (g)',
    type: 'number' as const,
  },
];

/** Unit columns of the API's Unit model (api-server.md §8.1) shown in the tables. */
export const UNIT_COLUMNS = [
  { selector: 'uuid', text: 'Unit', type: 'string' as const },
  { selector: 'name', text: 'Name', type: 'string' as const },
  { selector: 'project', text: 'Project', type: 'string' as const },
  { selector: 'state', text: 'State', type: 'string' as const },
  { selector: 'started_at', text: 'Started', type: 'string' as const },
  { selector: 'ended_at', text: 'Ended', type: 'string' as const },
  { selector: 'elapsed', text: 'Elapsed', type: 'string' as const },
  { selector: 'avg_cpu_usage.global', text: 'CPU %', type: 'number' as const },
  { selector: 'avg_cpu_mem_usage.global', text: 'Memory %', type: 'number' as const },
  { selector: 'avg_gpu_usage.global', text: 'GPU %', type: 'number' as const },
  ...ENERGY_COLUMNS,
];

export const USAGE_COLUMNS = [
  { selector: 'project', text: 'Project', type: 'string' as const },
  { selector: 'username', text: 'User', type: 'string' as const },
  { selector: 'num_units', text: 'Units', type: 'number' as const },
  ...ENERGY_COLUMNS,
];
export const USAGE_FIELDS: [string, string][] = USAGE_COLUMNS.map((c) => [
  'field',
  c.selector.split('.')[0]!,
]);

/**
 * 1 = estimated, 2 = measured: the power source of the nodes each unit ran on, from the `power_source` label
 * of the per-unit power (issue 20); for rules without it, from a join with the nodes' estimated power.
 */
export const ENERGY_SOURCE_EXPR = [
  'max by (uuid) (last_over_time(uuid:ceems_host_power_watts:pue{uuid=~"${uuids:pipe}",power_source="estimated"}[$__range]) * 0) + 1',
  'or',
  'max by (uuid) (last_over_time(uuid:ceems_host_power_watts:pue{uuid=~"${uuids:pipe}",power_source!=""}[$__range]) * 0) + 2',
  'or',
  '(',
  '  max by (uuid) (',
  '    last_over_time(uuid:ceems_host_power_watts:pue{uuid=~"${uuids:pipe}",power_source=""}[$__range]) * 0',
  '      * on (hostname) group_left ()',
  '    max by (hostname) (last_over_time(ceems_estimated_power_watts[$__range]))',
  '  ) + 1',
  ')',
  'or',
  'max by (uuid) (last_over_time(uuid:ceems_host_power_watts:pue{uuid=~"${uuids:pipe}",power_source=""}[$__range]) * 0) + 2',
].join('\n');
