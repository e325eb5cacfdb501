// The CEEMS dashboards (dashboards/): the checked-in JSON is what the code builds; every dashboard
// type-checks against the Grafana Foundation SDK's schema types (tsc on the JSON as an object literal, so
// unknown keys and wrong enum values fail); every PromQL expression parses with the LB's parser and, with
// the template variables substituted, passes the LB's access check pinning exactly the owner's units;
// the provisioning files name the plugins and headers the dashboards need.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import YAML from 'yaml';
import { allDashboards, dashboardText } from '../../../dashboards/src/dashboards.js';
import { API_VAR, INFINITY_PLUGIN, PROM_VAR } from '../../../dashboards/src/model.js';
import { substitute } from '../../../dashboards/src/variables.js';
import { checkQueries } from '../../../src/lb/access.js';
import { parseQuery } from '../../../src/lb/promql.js';
import { ROOT } from '../../helpers/process.js';

const DIR = join(ROOT, 'dashboards');
const built = allDashboards();
const tmp = join(ROOT, '.tmp');
mkdirSync(tmp, { recursive: true });
const work = mkdtempSync(join(tmp, 'dashboards-schema-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('dashboards as code', () => {
  test('the JSON files under dashboards/ are exactly what the code builds (run dashboards/build.ts)', () => {
    const files = readdirSync(DIR)
      .filter((f) => f.endsWith('.json'))
      .sort();
    assert.deepEqual(files, built.map((b) => b.file).sort(), 'one JSON file per dashboard, no stale ones');
    for (const b of built) {
      const onDisk = readFileSync(join(DIR, b.file), 'utf8');
      assert.ok(
        onDisk === dashboardText(b),
        `${b.file} differs from the code: node --import tsx dashboards/build.ts`,
      );
    }
  });

  test('four dashboards with unique uids, each panel reading the chosen data sources', () => {
    assert.deepEqual(
      built.map((b) => b.json.title),
      ['CEEMS / My units', 'CEEMS / Single unit', 'CEEMS / Cluster overview', 'CEEMS / Emissions'],
    );
    assert.equal(new Set(built.map((b) => b.uid)).size, built.length);
    for (const b of built) {
      const text = dashboardText(b);
      for (const m of text.matchAll(/"uid": "(\$\{[^}]+\})"/g))
        assert.ok([`\${${PROM_VAR}}`, `\${${API_VAR}}`].includes(m[1]!), `${b.file}: ${m[1]}`);
      if (b.queries.some((q) => q.kind === 'api')) assert.deepEqual(b.plugins, [INFINITY_PLUGIN], b.file);
      assert.ok(b.queries.length > 0);
    }
  });
});

/** A TypeScript module stating that every dashboard JSON satisfies the SDK's types, made JSON-shaped. */
function schemaModule(dashboards: Record<string, unknown>): string {
  const sdk = '@grafana/grafana-foundation-sdk';
  return `import type * as dashboard from '${sdk}/dashboard';
import type * as prometheus from '${sdk}/prometheus';
import type * as stat from '${sdk}/stat';
import type * as table from '${sdk}/table';
import type * as timeseries from '${sdk}/timeseries';

type IsAny<T> = 0 extends 1 & T ? true : false;
/** What JSON can hold of a type: string enums as their values, no methods. */
type Json<T> = IsAny<T> extends true ? unknown : T extends (...a: never[]) => unknown ? never
  : T extends string ? \`\${T}\` : T extends number | boolean | null | undefined ? T
  : T extends readonly (infer E)[] ? Json<E>[]
  : T extends object ? { [K in keyof T as T[K] extends (...a: never[]) => unknown ? never : K]: Json<T[K]> } : T;

interface InfinityTarget {
  refId?: string; hide?: boolean; datasource?: { type: '${INFINITY_PLUGIN}'; uid: string };
  type: 'json'; source: 'url'; parser: 'backend'; format: 'table'; url: string;
  url_options: { method: 'GET'; data: string; params: { key: string; value: string }[]; headers: { key: string; value: string }[] };
  root_selector: string; columns: { selector: string; text: string; type: 'string' | 'number' | 'timestamp_epoch' }[];
  filters: unknown[];
}
type Target = Json<prometheus.Dataquery> | InfinityTarget;
type Defaults<F> = Omit<Json<dashboard.FieldConfig>, 'custom'> & { custom?: Json<F> };
type PanelOf<Type extends string, O, F> = Omit<Json<dashboard.Panel>, 'type' | 'options' | 'fieldConfig' | 'targets'> & {
  type: Type; options?: Json<O>; targets?: Target[];
  fieldConfig?: Omit<Json<dashboard.FieldConfigSource>, 'defaults'> & { defaults: Defaults<F> };
};
type AnyPanel = PanelOf<'timeseries', timeseries.Options, timeseries.FieldConfig> | PanelOf<'table', table.Options, table.FieldConfig>
  | PanelOf<'stat', stat.Options, Record<string, never>> | Json<dashboard.RowPanel>;
type DashboardJson = Omit<Json<dashboard.Dashboard>, 'panels'> & { panels?: AnyPanel[] };

${Object.entries(dashboards)
  .map(([name, d]) => `export const ${name} = ${JSON.stringify(d, null, 1)} satisfies DashboardJson;`)
  .join('\n')}
`;
}

/** tsc's error lines for a module (empty when it type-checks). */
function typeErrors(name: string, source: string): string[] {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'check.ts'), source);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        skipLibCheck: true,
        types: [],
      },
      files: ['check.ts'],
    }),
  );
  try {
    execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', dir], { encoding: 'utf8', timeout: 120_000 });
    return [];
  } catch (e) {
    const out = `${(e as { stdout?: string }).stdout ?? ''}${(e as { stderr?: string }).stderr ?? ''}`;
    return out.split('\n').filter((l) => /error TS/.test(l));
  }
}

describe('schema: the Grafana Foundation SDK types', () => {
  test('every dashboard JSON satisfies the SDK dashboard, panel, options and query types', () => {
    const all = Object.fromEntries(
      built.map((b, i) => [`d${i}`, JSON.parse(readFileSync(join(DIR, b.file), 'utf8'))]),
    );
    const errors = typeErrors('valid', schemaModule(all));
    assert.deepEqual(errors, []);
  });

  test('the check catches an unknown key, a wrong enum value and a wrong type (it is not vacuous)', () => {
    const d = JSON.parse(readFileSync(join(DIR, 'single-unit.json'), 'utf8'));
    const panel = d.panels.find((p: { type: string }) => p.type === 'timeseries');
    const cases: Record<string, (x: typeof d) => void> = {
      unknownKey: (x) => {
        x.panels[d.panels.indexOf(panel)].colour = 'red';
      },
      badEnum: (x) => {
        x.panels[d.panels.indexOf(panel)].fieldConfig.defaults.custom.drawStyle = 'zigzag';
      },
      badType: (x) => {
        x.schemaVersion = 'forty';
      },
      badTooltip: (x) => {
        x.graphTooltip = 7;
      },
    };
    const broken: Record<string, unknown> = {};
    for (const [name, mutate] of Object.entries(cases)) {
      const copy = structuredClone(d);
      mutate(copy);
      broken[name] = copy;
    }
    const errors = typeErrors('broken', schemaModule(broken));
    const text = errors.join('\n');
    assert.equal(errors.length, 4, text);
    for (const hint of [
      /'"colour"' does not exist/,
      /'"zigzag"' is not assignable/,
      /'string' is not assignable to type 'number'/,
      /'7' is not assignable to type 'DashboardCursorSync/,
    ])
      assert.match(text, hint);
  });
});

describe('PromQL: parsed and access-checked as ceems_lb does', () => {
  // the unit owner's dashboards as they would be sent for usr1 with units 101 and 102
  const subst = {
    vars: {
      uuid: '101',
      uuids: ['101', '102'],
      cluster_id: 'slurm-0',
      energy_kwh: '1.5',
      countries: 'FR|DE',
    },
    from: 1_700_000_000,
    to: 1_700_003_600,
    intervalS: 15,
    rateIntervalS: 60,
  };
  const policy = {
    restrictingLabel: 'uuid',
    unrestrictedMetrics: new Set(['ceems_emissions_gCo2_kWh', 'ceems_estimated_power_watts']),
  };
  const promql = built.flatMap((b) => b.queries).filter((q) => q.kind === 'promql');

  test('every expression parses once its template variables are substituted', () => {
    assert.ok(promql.length >= 20, `${promql.length} expressions`);
    for (const q of promql) {
      const expr = substitute(q.expr, subst);
      assert.doesNotMatch(expr, /\$/, `${q.dashboard} / ${q.panel}: unsubstituted variable`);
      assert.doesNotThrow(() => parseQuery(expr), `${q.dashboard} / ${q.panel}: ${expr}`);
    }
  });

  test("every user dashboard's expression is allowed for the owner and pins exactly the owner's units", () => {
    let checked = 0;
    for (const q of promql.filter((x) => !x.admin)) {
      const expr = substitute(q.expr, subst);
      const d = checkQueries([expr], 'expr', policy);
      assert.equal(d.kind, 'allow', `${q.dashboard} / ${q.panel}: ${JSON.stringify(d)}\n${expr}`);
      if (d.kind !== 'allow') continue;
      for (const id of d.ids) assert.ok(['101', '102'].includes(id), `${q.panel}: pins ${id}`);
      checked++;
    }
    assert.ok(checked >= 15, `${checked} user expressions`);
    // the check is not vacuous: an unpinned selector is refused
    assert.equal(checkQueries(['sum(uuid:ceems_host_power_watts:pue)'], 'expr', policy).kind, 'deny');
  });

  test('admin dashboards are only the cluster overview; its expressions parse but are not for users', () => {
    const admin = new Set(promql.filter((q) => q.admin).map((q) => q.dashboard));
    assert.deepEqual([...admin], ['Cluster overview']);
    const denied = promql
      .filter((q) => q.admin)
      .filter((q) => checkQueries([substitute(q.expr, subst)], 'expr', policy).kind === 'deny');
    assert.ok(
      denied.length > 0,
      'node-level queries would be refused to a user: they belong on the admin dashboard',
    );
  });

  test('API-backed panels of user dashboards use user routes, the admin one /admin routes', () => {
    for (const q of built.flatMap((b) => b.queries)) {
      if (q.kind !== 'api') continue;
      assert.match(q.path, /^\/api\/v1\//);
      assert.equal(q.path.endsWith('/admin'), Boolean(q.admin), `${q.dashboard} / ${q.panel}: ${q.path}`);
    }
  });
});

describe('provisioning', () => {
  test('datasources: ceems_lb with the cluster header, the API through Infinity with the user login', () => {
    const doc = YAML.parse(readFileSync(join(DIR, 'provisioning/datasources/ceems.yml'), 'utf8'));
    const byType = new Map(doc.datasources.map((d: { type: string }) => [d.type, d]));
    const lb = byType.get('prometheus') as Record<string, Record<string, string>>;
    assert.equal(lb.jsonData!.httpHeaderName1, 'X-Ceems-Cluster-Id');
    assert.ok(lb.secureJsonData!.httpHeaderValue1);
    const api = byType.get(INFINITY_PLUGIN) as Record<string, Record<string, string>>;
    assert.equal(api.jsonData!.httpHeaderName1, 'X-Grafana-User');
    // `$$` is Grafana provisioning's escape of a literal `$`
    assert.equal(api.secureJsonData!.httpHeaderValue1, '$${__user.login}');
    const dash = YAML.parse(readFileSync(join(DIR, 'provisioning/dashboards/ceems.yml'), 'utf8'));
    assert.equal(dash.providers[0].type, 'file');
  });
});
