// Building blocks of the CEEMS dashboards (Grafana Foundation SDK): the two data sources every dashboard
// uses, the Infinity query the SDK has no builder for, and a record of every query a panel makes, which
// the tests read to parse, access-check and run each of them (test/unit/dashboards, test/integration).

import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';

/** Data source template variables: pick the cluster's ceems_lb source and the API server's Infinity one. */
export const PROM_VAR = 'ds_ceems_lb';
export const API_VAR = 'ds_ceems_api';
export const PROM_DS = { type: 'prometheus', uid: `\${${PROM_VAR}}` };
export const INFINITY_PLUGIN = 'yesoreyeram-infinity-datasource';
export const API_DS = { type: INFINITY_PLUGIN, uid: `\${${API_VAR}}` };

/** Panels whose data exists only with optional collectors or exporters; an empty answer is not a failure. */
export type Optional = 'gpu' | 'perf' | 'ebpf';

/** One query of one panel, as the tests see it. */
export type QueryRecord =
  | { kind: 'promql'; dashboard: string; panel: string; expr: string; optional?: Optional; admin?: boolean }
  | {
      kind: 'api';
      dashboard: string;
      panel: string;
      path: string;
      params: [string, string][];
      optional?: Optional;
      admin?: boolean;
    };

/** Query of the Infinity data source (JSON from a URL), shaped as the plugin stores it. */
export interface InfinityQuery {
  refId?: string;
  hide?: boolean;
  datasource?: { type: string; uid: string };
  type: 'json';
  source: 'url';
  parser: 'backend';
  format: 'table';
  url: string;
  url_options: { method: 'GET'; data: string; params: { key: string; value: string }[]; headers: never[] };
  root_selector: string;
  columns: { selector: string; text: string; type: 'string' | 'number' | 'timestamp_epoch' }[];
  filters: never[];
  _implementsDataqueryVariant(): void;
}

export class InfinityQueryBuilder implements cog.Builder<cog.Dataquery> {
  private readonly q: InfinityQuery;

  constructor(path: string, params: [string, string][], columns: InfinityQuery['columns']) {
    this.q = {
      datasource: API_DS,
      type: 'json',
      source: 'url',
      parser: 'backend',
      format: 'table',
      url: path,
      url_options: {
        method: 'GET',
        data: '',
        params: params.map(([key, value]) => ({ key, value })),
        headers: [],
      },
      root_selector: 'data',
      columns,
      filters: [],
      _implementsDataqueryVariant() {},
    };
  }

  refId(id: string): this {
    this.q.refId = id;
    return this;
  }

  build(): InfinityQuery {
    return this.q;
  }
}

/** Collects the queries of one dashboard while its panels are built. */
export class QueryLog {
  readonly records: QueryRecord[] = [];

  constructor(
    readonly dashboard: string,
    private readonly admin = false,
  ) {}

  /** A PromQL target through ceems_lb. */
  prom(
    panel: string,
    expr: string,
    legend: string,
    opts: { optional?: Optional; instant?: boolean; table?: boolean } = {},
  ) {
    this.records.push({
      kind: 'promql',
      dashboard: this.dashboard,
      panel,
      expr,
      ...(opts.optional ? { optional: opts.optional } : {}),
      ...(this.admin ? { admin: true } : {}),
    });
    const b = new prometheus.DataqueryBuilder().datasource(PROM_DS).expr(expr).legendFormat(legend);
    if (opts.instant) b.instant();
    if (opts.table) b.format(prometheus.PromQueryFormat.Table);
    return b;
  }

  /** An API server target through Infinity. */
  api(
    panel: string,
    path: string,
    params: [string, string][],
    columns: InfinityQuery['columns'],
    opts: { optional?: Optional } = {},
  ) {
    this.records.push({
      kind: 'api',
      dashboard: this.dashboard,
      panel,
      path,
      params,
      ...(opts.optional ? { optional: opts.optional } : {}),
      ...(this.admin ? { admin: true } : {}),
    });
    return new InfinityQueryBuilder(path, params, columns);
  }
}

/** The two data source variables (one value each in a single-cluster setup). */
export function datasourceVariables(): dashboard.DatasourceVariableBuilder[] {
  return [
    new dashboard.DatasourceVariableBuilder(PROM_VAR).label('Cluster (ceems_lb)').type('prometheus'),
    new dashboard.DatasourceVariableBuilder(API_VAR).label('CEEMS API').type(INFINITY_PLUGIN),
  ];
}

export function textVariable(name: string, label: string, value: string): dashboard.TextBoxVariableBuilder {
  return new dashboard.TextBoxVariableBuilder(name)
    .label(label)
    .defaultValue(value)
    .current({ text: value, value });
}

/** The query parameters of the API's time window (Unix seconds, spec D-API-4). */
export const WINDOW: [string, string][] = [
  ['from', '${__from:date:seconds}'],
  ['to', '${__to:date:seconds}'],
];

export interface Built {
  uid: string;
  file: string;
  json: dashboard.Dashboard;
  queries: QueryRecord[];
  /** Plugins a Grafana needs to show it, besides the core panels. */
  plugins: string[];
}
