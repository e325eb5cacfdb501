// The dashboards of a unit's owner: My units (their units, project totals, measured or estimated energy)
// and Single unit (one unit in depth). Every PromQL selector pins the unit ids, so ceems_lb lets the owner
// (and members of the unit's project) read them and nobody else.

import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as table from '@grafana/grafana-foundation-sdk/table';
import { type Built, datasourceVariables, INFINITY_PLUGIN, QueryLog, textVariable, WINDOW } from './model.js';

import {
  base,
  COUNTRIES,
  ENERGY_SOURCE_EXPR,
  SINGLE_UNIT_UID,
  series,
  U,
  UNIT_COLUMNS,
  USAGE_COLUMNS,
  USAGE_FIELDS,
  unitLink,
} from './panels.js';

export function myUnits(): Built {
  const log = new QueryLog('My units');
  const units = new table.PanelBuilder()
    .title('My units')
    .description(
      'Units of the selected period (and running ones), with their energy, emissions and averages, from the CEEMS API server.',
    )
    .height(12)
    .span(24)
    .withTarget(
      log
        .api(
          'My units',
          '/api/v1/units',
          [['cluster_id', '${cluster_id}'], ...WINDOW, ['running', 'true']],
          UNIT_COLUMNS,
        )
        .refId('A'),
    )
    .overrideByName('Unit', [{ id: 'links', value: [unitLink().build()] }]);
  const totals = new table.PanelBuilder()
    .title('Project totals')
    .description('Energy and emissions of every member of your projects in the selected period.')
    .height(8)
    .span(12)
    .withTarget(
      log
        .api(
          'Project totals',
          '/api/v1/usage/current',
          [['cluster_id', '${cluster_id}'], ...WINDOW, ...USAGE_FIELDS],
          USAGE_COLUMNS,
        )
        .refId('A'),
    );
  const source = new table.PanelBuilder()
    .title('Is my energy measured or estimated?')
    .description(
      'Measured: the nodes report their power (IPMI, Redfish, Cray PM counters, RAPL). Estimated: CEEMS estimates node power from CPU load. Read from the power_source label of the recording rules; rules generated before it need ceems_estimated_power_watts in ceems_lb unrestricted_metrics.',
    )
    .height(8)
    .span(12)
    .mappings([
      {
        type: dashboard.MappingType.ValueToText,
        options: {
          '1': { text: 'estimated', color: 'orange', index: 0 },
          '2': { text: 'measured', color: 'green', index: 1 },
        },
      },
    ])
    .withTarget(
      log
        .prom('Is my energy measured or estimated?', ENERGY_SOURCE_EXPR, '{{uuid}}', {
          instant: true,
          table: true,
        })
        .refId('A'),
    );
  const power = series(log, 'Power of my units', 'watt', [
    [`sum by (uuid) (uuid:ceems_host_power_watts:pue{uuid=~"\${uuids:pipe}"})`, '{{uuid}}'],
  ]);
  const b = base(
    'ceems-my-units',
    'CEEMS / My units',
    'Your compute units: energy, emissions and usage, and whether the energy was measured or estimated.',
  )
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
  return {
    uid: 'ceems-my-units',
    file: 'my-units.json',
    json: b.build(),
    queries: log.records,
    plugins: [INFINITY_PLUGIN],
  };
}

export function singleUnit(): Built {
  const log = new QueryLog('Single unit');
  const summary = new table.PanelBuilder()
    .title('Unit')
    .description('The unit as the API server stores it: totals for its whole life.')
    .height(5)
    .span(24)
    .withTarget(
      log
        .api(
          'Unit',
          '/api/v1/units',
          [
            ['cluster_id', '${cluster_id}'],
            ['uuid', '${uuid}'],
          ],
          UNIT_COLUMNS,
        )
        .refId('A'),
    );
  const b = base(
    SINGLE_UNIT_UID,
    'CEEMS / Single unit',
    'One compute unit of any resource manager: power, energy, emissions, CPU, memory, IO, network, GPU, perf and eBPF.',
  )
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
      series(log, 'Energy per interval', 'watth', [
        [
          `sum(avg_over_time(uuid:ceems_host_power_watts:pue${U}[$__interval])) * $__interval_ms / 3.6e6`,
          'host',
        ],
      ]).drawStyle(common.GraphDrawStyle.Bars),
    )
    .withPanel(
      series(log, 'Emissions', 'massg', [
        [`sum by (provider) (uuid:ceems_host_emissions_g_s:pue${U}) * 3600`, '{{provider}} (g/h)'],
      ]),
    )
    .withPanel(
      series(log, 'Emission factor during the unit', 'none', [
        [
          'max by (provider, country_code) (ceems_emissions_gCo2_kWh{country_code=~"$countries"})',
          '{{provider}} {{country_code}} (g/kWh)',
        ],
      ]),
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
        [
          [
            `sum(rate(ceems_perf_instructions_total${U}[$__rate_interval])) / sum(rate(ceems_perf_cpucycles_total${U}[$__rate_interval]))`,
            'IPC',
          ],
        ],
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
            .prom(
              'GPUs of the unit',
              `max by (index, gpuuuid, gpuiid, hostname) (ceems_compute_unit_gpu_index_flag${U})`,
              '{{index}}',
              {
                optional: 'gpu',
                instant: true,
                table: true,
              },
            )
            .refId('A'),
        ),
    )
    .withPanel(
      series(log, 'GPU power', 'watt', [[`sum(uuid:ceems_gpu_power_watts:pue${U})`, 'GPU']], {
        optional: 'gpu',
        description: 'Needs a DCGM or AMD exporter scraped by the same Prometheus.',
      }),
    )
    .withPanel(
      series(log, 'GPU usage', 'percent', [[`avg(uuid:ceems_gpu_usage:ratio${U})`, 'GPU']], {
        optional: 'gpu',
      }),
    );
  return {
    uid: SINGLE_UNIT_UID,
    file: 'single-unit.json',
    json: b.build(),
    queries: log.records,
    plugins: [INFINITY_PLUGIN],
  };
}
