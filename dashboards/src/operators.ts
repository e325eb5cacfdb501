// The dashboards of operators and of everyone: Cluster overview (node power against the power attributed
// to units, top users and projects, health; admin routes and node-level series) and Emissions (grid
// factors, which ceems_lb lets any user read, and what a unit's energy would emit elsewhere).

import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import { type Built, datasourceVariables, INFINITY_PLUGIN, QueryLog, textVariable, WINDOW } from './model.js';

import { base, COUNTRIES, series, U, USAGE_FIELDS } from './panels.js';

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
  const b = base(
    'ceems-cluster-overview',
    'CEEMS / Cluster overview',
    'For operators: node power against the power attributed to units and the unattributed rest, top users and projects, units running, collector and service health.',
  )
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
        // what the rules gave no unit: idle nodes, daemons, memory of other processes (issue 20, B4)
        ['sum(instance:ceems_unattributed_power_watts:pue)', 'unattributed'],
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
        .description(
          'ceems_scrape_collector_success per collector and node: 0 = the last scrape of that collector failed.',
        )
        .height(8)
        .span(12)
        .withTarget(
          log
            .prom(
              'Collector health',
              'min by (hostname, collector) (ceems_scrape_collector_success)',
              '{{collector}}',
              { instant: true, table: true },
            )
            .refId('A'),
        ),
    )
    .withPanel(
      new table.PanelBuilder()
        .title('Exporters up')
        .height(8)
        .span(6)
        .withTarget(
          log.prom('Exporters up', 'up', '{{instance}}', { instant: true, table: true }).refId('A'),
        ),
    )
    .withPanel(
      new table.PanelBuilder()
        .title('API server')
        .description(
          'Per-cluster statistics from the API server: an answer here means it is up and its DB readable.',
        )
        .height(8)
        .span(6)
        .withTarget(
          log
            .api(
              'API server',
              '/api/v1/stats/current/admin',
              [['cluster_id', '${cluster_id}'], ...WINDOW],
              [
                { selector: 'cluster_id', text: 'Cluster', type: 'string' },
                { selector: 'num_units', text: 'Units', type: 'number' },
                { selector: 'num_active_units', text: 'Running', type: 'number' },
                { selector: 'num_users', text: 'Users', type: 'number' },
                { selector: 'num_projects', text: 'Projects', type: 'number' },
              ],
            )
            .refId('A'),
        ),
    );
  return {
    uid: 'ceems-cluster-overview',
    file: 'cluster-overview.json',
    json: b.build(),
    queries: log.records,
    plugins: [INFINITY_PLUGIN],
  };
}

export function emissions(): Built {
  const log = new QueryLog('Emissions');
  const b = base(
    'ceems-emissions',
    'CEEMS / Emissions',
    'Grid emission factors per provider and country, and what the energy of a unit would have emitted at another time or on another grid.',
  )
    .time({ from: 'now-7d', to: 'now' })
    .withVariable(datasourceVariables()[0]!)
    .withVariable(textVariable('uuid', 'Unit', '0'))
    .withVariable(textVariable('energy_kwh', 'Energy to compare (kWh)', '1'))
    .withVariable(textVariable('countries', 'Grids (country codes, regex)', COUNTRIES))
    .withRow(new dashboard.RowBuilder('Emission factors'))
    .withPanel(
      series(
        log,
        'Emission factor per provider and country',
        'none',
        [
          [
            'max by (provider, country_code) (ceems_emissions_gCo2_kWh{country_code=~"$countries"})',
            '{{provider}} {{country_code}}',
          ],
        ],
        {
          description:
            'g CO₂e per kWh; live providers (RTE, Electricity Maps) move with the grid, OWID is a yearly average.',
        },
      ).span(24),
    )
    .withRow(new dashboard.RowBuilder('Another time, another grid'))
    .withPanel(
      series(
        log,
        'The same energy at another time',
        'massg',
        [
          [
            'max by (provider, country_code) (ceems_emissions_gCo2_kWh{country_code=~"$countries"}) * $energy_kwh',
            '{{provider}} {{country_code}}',
          ],
        ],
        {
          description:
            'What $energy_kwh kWh (e.g. a unit’s total energy from My units) emits when drawn at each moment of the period, per grid.',
        },
      ),
    )
    .withPanel(
      series(
        log,
        'Unit $uuid on each grid',
        'massg',
        [
          [
            `sum(uuid:ceems_host_power_watts:pue${U}) / 3.6e6 * 3600 * on () group_right () max by (provider, country_code) (ceems_emissions_gCo2_kWh{country_code=~"$countries"})`,
            '{{provider}} {{country_code}} (g/h)',
          ],
        ],
        { description: 'The unit’s power as it ran, times the factor of each grid at that moment.' },
      ),
    );
  return {
    uid: 'ceems-emissions',
    file: 'emissions.json',
    json: b.build(),
    queries: log.records,
    plugins: [],
  };
}
