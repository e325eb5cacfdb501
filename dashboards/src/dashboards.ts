// The four CEEMS dashboards as code. Each is built for its reader: a user's own units (My units), one
// unit in depth (Single unit), the operator's cluster (Cluster overview) and the grid emission factors
// (Emissions). PromQL goes to ceems_lb, which lets a user read only the series of their own units; the
// API server's JSON goes through the Infinity data source, which sends the Grafana user's login.

import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { type Built, datasourceVariables, INFINITY_PLUGIN, type QueryLog as Log, QueryLog, textVariable, WINDOW } from './model.js';

const SINGLE_UNIT_UID = 'ceems-single-unit';
const TAGS = ['ceems'];
const U = '{uuid="$uuid"}';
/** Grids compared by default: a low-carbon, two coal-heavy, a hydro and a mixed one. */
const COUNTRIES = 'FR|DE|PL|SE|US';

function base(uid: string, title: string, description: string): dashboard.DashboardBuilder {
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

function series(log: Log, title: string, unit: string, queries: [string, string][], opts: { optional?: 'gpu' | 'perf' | 'ebpf'; description?: string } = {}) {
  const p = new timeseries.PanelBuilder().title(title).unit(unit).lineWidth(2).fillOpacity(10).height(8).span(12);
  if (opts.description) p.description(opts.description);
  for (const [i, [expr, legend]] of queries.entries()) p.withTarget(log.prom(title, expr, legend, opts).refId(String.fromCharCode(65 + i)));
  return p;
}

const unitLink = () =>
  new dashboard.DashboardLinkBuilder('Open this unit')
    .type(dashboard.DashboardLinkType.Link)
    .url(`/d/${SINGLE_UNIT_UID}?var-uuid=\${__value.raw}&var-cluster_id=\${cluster_id}&\${${'ds_ceems_lb'}:queryparam}&\${${'ds_ceems_api'}:queryparam}`)
    .icon('dashboard')
    .tooltip('Single unit dashboard')
    .tags([])
    .asDropdown(false)
    .targetBlank(false)
    .includeVars(false)
    .keepTime(false);

/** Unit columns of the API's Unit model (api-server.md §8.1) shown in the tables. */
const UNIT_COLUMNS = [
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
  { selector: 'total_cpu_energy_usage_kwh.total', text: 'Host energy (kWh)', type: 'number' as const },
  { selector: 'total_gpu_energy_usage_kwh.total', text: 'GPU energy (kWh)', type: 'number' as const },
  { selector: 'total_cpu_emissions_gms.owid_total', text: 'Emissions OWID (g)', type: 'number' as const },
  { selector: 'total_cpu_emissions_gms.rte_total', text: 'Emissions RTE (g)', type: 'number' as const },
  { selector: 'total_cpu_emissions_gms.emaps_total', text: 'Emissions Electricity Maps (g)', type: 'number' as const },
];

const USAGE_COLUMNS = [
  { selector: 'project', text: 'Project', type: 'string' as const },
  { selector: 'username', text: 'User', type: 'string' as const },
  { selector: 'num_units', text: 'Units', type: 'number' as const },
  { selector: 'total_cpu_energy_usage_kwh.total', text: 'Host energy (kWh)', type: 'number' as const },
  { selector: 'total_gpu_energy_usage_kwh.total', text: 'GPU energy (kWh)', type: 'number' as const },
  { selector: 'total_cpu_emissions_gms.owid_total', text: 'Emissions OWID (g)', type: 'number' as const },
  { selector: 'total_cpu_emissions_gms.rte_total', text: 'Emissions RTE (g)', type: 'number' as const },
  { selector: 'total_cpu_emissions_gms.emaps_total', text: 'Emissions Electricity Maps (g)', type: 'number' as const },
];
const USAGE_FIELDS: [string, string][] = USAGE_COLUMNS.map((c) => ['field', c.selector.split('.')[0]!]);

/** 1 = estimated, 2 = measured: the power source of the nodes each unit ran on. */
export const ENERGY_SOURCE_EXPR = [
  '(',
  '  max by (uuid) (',
  '    last_over_time(uuid:ceems_host_power_watts:pue{uuid=~"${uuids:pipe}"}[$__range]) * 0',
  '      * on (hostname) group_left ()',
  '    max by (hostname) (last_over_time(ceems_estimated_power_watts[$__range]))',
  '  ) + 1',
  ')',
  'or',
  'max by (uuid) (last_over_time(uuid:ceems_host_power_watts:pue{uuid=~"${uuids:pipe}"}[$__range]) * 0) + 2',
].join('\n');

export function myUnits(): Built {
  const log = new QueryLog('My units');
  const units = new table.PanelBuilder()
    .title('My units')
    .description('Units of the selected period (and running ones), with their energy, emissions and averages, from the CEEMS API server.')
    .height(12)
    .span(24)
    .withTarget(
      log
        .api('My units', '/api/v1/units', [['cluster_id', '${cluster_id}'], ...WINDOW, ['running', 'true']], UNIT_COLUMNS)
        .refId('A'),
    )
    .overrideByName('Unit', [{ id: 'links', value: [unitLink().build()] }]);
  const totals = new table.PanelBuilder()
    .title('Project totals')
    .description('Energy and emissions of every member of your projects in the selected period.')
    .height(8)
    .span(12)
    .withTarget(
      log.api('Project totals', '/api/v1/usage/current', [['cluster_id', '${cluster_id}'], ...WINDOW, ...USAGE_FIELDS], USAGE_COLUMNS).refId('A'),
    );
  const source = new table.PanelBuilder()
    .title('Is my energy measured or estimated?')
    .description(
      'Measured: the nodes report their power (IPMI, Redfish, Cray PM counters, RAPL). Estimated: CEEMS estimates node power from CPU load. Needs ceems_estimated_power_watts in ceems_lb unrestricted_metrics.',
    )
    .height(8)
    .span(12)
    .mappings([
      {
        type: dashboard.MappingType.ValueToText,
        options: { '1': { text: 'estimated', color: 'orange', index: 0 }, '2': { text: 'measured', color: 'green', index: 1 } },
      },
    ])
    .withTarget(log.prom('Is my energy measured or estimated?', ENERGY_SOURCE_EXPR, '{{uuid}}', { instant: true, table: true }).refId('A'));
  const power = series(log, 'Power of my units', 'watt', [[`sum by (uuid) (uuid:ceems_host_power_watts:pue{uuid=~"\${uuids:pipe}"})`, '{{uuid}}']]);
  const b = base('ceems-my-units', 'CEEMS / My units', 'Your compute units: energy, emissions and usage, and whether the energy was measured or estimated.')
    .withVariable(datasourceVariables()[0]!)
    .withVariable(datasourceVariables()[1]!)
    .withVariable(textVariable('cluster_id', 'Cluster ID', 'default'))
    .withVariable(
      new dashboard.CustomVariableBuilder('uuids')
        .label('Units (for the series panels)')
        .description('Ids of your units to plot, comma separated; the table lists them.')
        .multi(true)
        .values('0')
        .current({ text: '0', value: '0' }),
    )
    .withRow(new dashboard.RowBuilder('Units'))
    .withPanel(units)
    .withRow(new dashboard.RowBuilder('Totals and energy source'))
    .withPanel(totals)
    .withPanel(source)
    .withPanel(power);
  return { uid: 'ceems-my-units', file: 'my-units.json', json: b.build(), queries: log.records, plugins: [INFINITY_PLUGIN] };
}

export function singleUnit(): Built {
  const log = new QueryLog('Single unit');
  const summary = new table.PanelBuilder()
    .title('Unit')
    .description('The unit as the API server stores it: totals for its whole life.')
    .height(5)
    .span(24)
    .withTarget(log.api('Unit', '/api/v1/units', [['cluster_id', '${cluster_id}'], ['uuid', '${uuid}']], UNIT_COLUMNS).refId('A'));
  const b = base(SINGLE_UNIT_UID, 'CEEMS / Single unit', 'One compute unit of any resource manager: power, energy, emissions, CPU, memory, IO, network, GPU, perf and eBPF.')
    .withVariable(datasourceVariables()[0]!)
    .withVariable(datasourceVariables()[1]!)
    .withVariable(textVariable('cluster_id', 'Cluster ID', 'default'))
    .withVariable(textVariable('uuid', 'Unit', '0'))
    .withVariable(textVariable('countries', 'Grids (country codes, regex)', COUNTRIES))
    .withRow(new dashboard.RowBuilder('Unit $uuid'))
    .withPanel(summary)
    .withRow(new dashboard.RowBuilder('Power, energy and emissions'))
    .withPanel(series(log, 'Host power', 'watt', [[`sum(uuid:ceems_host_power_watts:pue${U})`, 'host']]))
    .withPanel(
      series(log, 'Energy per interval', 'watth', [[`sum(avg_over_time(uuid:ceems_host_power_watts:pue${U}[$__interval])) * $__interval_ms / 3.6e6`, 'host']]).drawStyle(
        common.GraphDrawStyle.Bars,
      ),
    )
    .withPanel(series(log, 'Emissions', 'massg', [[`sum by (provider) (uuid:ceems_host_emissions_g_s:pue${U}) * 3600`, '{{provider}} (g/h)']]))
    .withPanel(
      series(log, 'Emission factor during the unit', 'none', [['max by (provider, country_code) (ceems_emissions_gCo2_kWh{country_code=~"$countries"})', '{{provider}} {{country_code}} (g/kWh)']]),
    )
    .withRow(new dashboard.RowBuilder('CPU, memory, IO'))
    .withPanel(series(log, 'CPU usage', 'percent', [[`avg(uuid:ceems_cpu_usage:ratio_irate${U})`, 'CPU']]))
    .withPanel(
      series(log, 'Memory', 'bytes', [
        [`sum(ceems_compute_unit_memory_used_bytes${U})`, 'used'],
        [`sum(ceems_compute_unit_memory_total_bytes${U})`, 'limit'],
      ]),
    )
    .withPanel(
      series(
        log,
        'IO',
        'Bps',
        [
          [`sum(rate(ceems_ebpf_read_bytes_total${U}[$__rate_interval]))`, 'read (eBPF)'],
          [`sum(rate(ceems_ebpf_write_bytes_total${U}[$__rate_interval]))`, 'write (eBPF)'],
          [`sum(rate(ceems_compute_unit_blkio_read_total_bytes${U}[$__rate_interval]))`, 'read (cgroup)'],
          [`sum(rate(ceems_compute_unit_blkio_write_total_bytes${U}[$__rate_interval]))`, 'write (cgroup)'],
        ],
        {
          optional: 'ebpf',
          description:
            'File IO of SLURM jobs and pods comes from the eBPF collector; block IO of libvirt VMs from their cgroup (--collector.libvirt.blkio-metrics). The exporter never reads block IO of SLURM jobs.',
        },
      ),
    )
    .withPanel(
      series(
        log,
        'Network (eBPF)',
        'Bps',
        [
          [`sum(rate(ceems_ebpf_ingress_bytes_total${U}[$__rate_interval]))`, 'in'],
          [`sum(rate(ceems_ebpf_egress_bytes_total${U}[$__rate_interval]))`, 'out'],
        ],
        { optional: 'ebpf' },
      ),
    )
    .withPanel(
      series(
        log,
        'Instructions per cycle (perf)',
        'none',
        [[`sum(rate(ceems_perf_instructions_total${U}[$__rate_interval])) / sum(rate(ceems_perf_cpucycles_total${U}[$__rate_interval]))`, 'IPC']],
        { optional: 'perf' },
      ),
    )
    .withRow(new dashboard.RowBuilder('GPU'))
    .withPanel(
      new table.PanelBuilder()
        .title('GPUs of the unit')
        .description('Index and UUID of each GPU (or GPU instance) bound to the unit.')
        .height(6)
        .span(12)
        .withTarget(
          log
            .prom('GPUs of the unit', `max by (index, gpuuuid, gpuiid, hostname) (ceems_compute_unit_gpu_index_flag${U})`, '{{index}}', {
              optional: 'gpu',
              instant: true,
              table: true,
            })
            .refId('A'),
        ),
    )
    .withPanel(series(log, 'GPU power', 'watt', [[`sum(uuid:ceems_gpu_power_watts:pue${U})`, 'GPU']], { optional: 'gpu', description: 'Needs a DCGM or AMD exporter scraped by the same Prometheus.' }))
    .withPanel(series(log, 'GPU usage', 'percent', [[`avg(uuid:ceems_gpu_usage:ratio${U})`, 'GPU']], { optional: 'gpu' }));
  return { uid: SINGLE_UNIT_UID, file: 'single-unit.json', json: b.build(), queries: log.records, plugins: [INFINITY_PLUGIN] };
}

export function clusterOverview(): Built {
  const log = new QueryLog('Cluster overview', true);
  const topColumns = [
    { selector: 'username', text: 'User', type: 'string' as const },
    { selector: 'project', text: 'Project', type: 'string' as const },
    { selector: 'num_units', text: 'Units', type: 'number' as const },
    { selector: 'total_cpu_energy_usage_kwh.total', text: 'Host energy (kWh)', type: 'number' as const },
    { selector: 'total_cpu_emissions_gms.owid_total', text: 'Emissions OWID (g)', type: 'number' as const },
    { selector: 'total_cpu_emissions_gms.rte_total', text: 'Emissions RTE (g)', type: 'number' as const },
  ];
  const top = (title: string, by: string) =>
    new table.PanelBuilder()
      .title(title)
      .height(9)
      .span(12)
      .withTarget(
        log
          .api(
            title,
            '/api/v1/usage/current/admin',
            [['cluster_id', '${cluster_id}'], ...WINDOW, ['groupby', by], ...USAGE_FIELDS],
            topColumns,
          )
          .refId('A'),
      )
      .withTransformation({ id: 'sortBy', options: { sort: [{ field: 'Host energy (kWh)', desc: true }] } });
  const b = base('ceems-cluster-overview', 'CEEMS / Cluster overview', 'For operators: node power against the power attributed to units, top users and projects, units running, collector and service health.')
    .withVariable(datasourceVariables()[0]!)
    .withVariable(datasourceVariables()[1]!)
    .withVariable(textVariable('cluster_id', 'Cluster ID', 'default'))
    .withRow(new dashboard.RowBuilder('Power'))
    .withPanel(
      series(log, 'Node power and power attributed to units', 'watt', [
        [
          'sum(instance:ceems_cpu_power_watts:pue) + (sum(instance:ceems_memory_power_watts:pue) or vector(0)) + (sum(instance:ceems_misc_power_watts:pue) or vector(0))',
          'nodes',
        ],
        ['sum(uuid:ceems_host_power_watts:pue)', 'attributed to units'],
      ]).span(16),
    )
    .withPanel(
      new stat.PanelBuilder()
        .title('Units running')
        .height(8)
        .span(8)
        .withTarget(log.prom('Units running', 'sum(ceems_compute_units)', 'units').refId('A')),
    )
    .withRow(new dashboard.RowBuilder('Top users and projects'))
    .withPanel(top('Top users by energy', 'username'))
    .withPanel(top('Top projects by energy', 'project'))
    .withRow(new dashboard.RowBuilder('Health'))
    .withPanel(
      new table.PanelBuilder()
        .title('Collector health')
        .description('ceems_scrape_collector_success per collector and node: 0 = the last scrape of that collector failed.')
        .height(8)
        .span(12)
        .withTarget(log.prom('Collector health', 'min by (hostname, collector) (ceems_scrape_collector_success)', '{{collector}}', { instant: true, table: true }).refId('A')),
    )
    .withPanel(
      new table.PanelBuilder()
        .title('Exporters up')
        .height(8)
        .span(6)
        .withTarget(log.prom('Exporters up', 'up', '{{instance}}', { instant: true, table: true }).refId('A')),
    )
    .withPanel(
      new table.PanelBuilder()
        .title('API server')
        .description('Per-cluster statistics from the API server: an answer here means it is up and its DB readable.')
        .height(8)
        .span(6)
        .withTarget(
          log
            .api('API server', '/api/v1/stats/current/admin', [['cluster_id', '${cluster_id}'], ...WINDOW], [
              { selector: 'cluster_id', text: 'Cluster', type: 'string' },
              { selector: 'num_units', text: 'Units', type: 'number' },
              { selector: 'num_active_units', text: 'Running', type: 'number' },
              { selector: 'num_users', text: 'Users', type: 'number' },
              { selector: 'num_projects', text: 'Projects', type: 'number' },
            ])
            .refId('A'),
        ),
    );
  return { uid: 'ceems-cluster-overview', file: 'cluster-overview.json', json: b.build(), queries: log.records, plugins: [INFINITY_PLUGIN] };
}

export function emissions(): Built {
  const log = new QueryLog('Emissions');
  const b = base('ceems-emissions', 'CEEMS / Emissions', 'Grid emission factors per provider and country, and what the energy of a unit would have emitted at another time or on another grid.')
    .time({ from: 'now-7d', to: 'now' })
    .withVariable(datasourceVariables()[0]!)
    .withVariable(textVariable('uuid', 'Unit', '0'))
    .withVariable(textVariable('energy_kwh', 'Energy to compare (kWh)', '1'))
    .withVariable(textVariable('countries', 'Grids (country codes, regex)', COUNTRIES))
    .withRow(new dashboard.RowBuilder('Emission factors'))
    .withPanel(
      series(log, 'Emission factor per provider and country', 'none', [['max by (provider, country_code) (ceems_emissions_gCo2_kWh{country_code=~"$countries"})', '{{provider}} {{country_code}}']], {
        description: 'g CO₂e per kWh; live providers (RTE, Electricity Maps) move with the grid, OWID is a yearly average.',
      }).span(24),
    )
    .withRow(new dashboard.RowBuilder('Another time, another grid'))
    .withPanel(
      series(log, 'The same energy at another time', 'massg', [['max by (provider, country_code) (ceems_emissions_gCo2_kWh{country_code=~"$countries"}) * $energy_kwh', '{{provider}} {{country_code}}']], {
        description: 'What $energy_kwh kWh (e.g. a unit’s total energy from My units) emits when drawn at each moment of the period, per grid.',
      }),
    )
    .withPanel(
      series(
        log,
        'Unit $uuid on each grid',
        'massg',
        [[`sum(uuid:ceems_host_power_watts:pue${U}) / 3.6e6 * 3600 * on () group_right () max by (provider, country_code) (ceems_emissions_gCo2_kWh{country_code=~"$countries"})`, '{{provider}} {{country_code}} (g/h)']],
        { description: 'The unit’s power as it ran, times the factor of each grid at that moment.' },
      ),
    );
  return { uid: 'ceems-emissions', file: 'emissions.json', json: b.build(), queries: log.records, plugins: [] };
}

/** Every dashboard, in the order of the README. */
export function allDashboards(): Built[] {
  return [myUnits(), singleUnit(), clusterOverview(), emissions()];
}

/** The JSON text checked in under dashboards/ (the builders' key order is stable). */
export function dashboardText(b: Built): string {
  return `${JSON.stringify(b.json, null, 2)}\n`; // functions (the SDK's query markers) are left out
}
