// One real stack for the dashboards and the web view (issue 17): SLURM testbed jobs of usr1 and usr2 →
// ceems_exporter → the testbed's Prometheus (port 9271) with ceems_tool's recording rules →
// ceems_api_server (basic-auth users for a standalone setup, the web view reading through the LB) →
// ceems_lb. Then: every dashboard PromQL expression returns data through the LB for the unit's owner (and
// is refused to the other user), every API-backed panel URL answers 200 with rows, and Debian's chromium
// (driven by playwright-core) logs in as usr1, usr2 and an admin. Screenshots: .artifacts/screenshots/.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { allDashboards } from '../../dashboards/src/dashboards.js';
import { substitute } from '../../dashboards/src/variables.js';
import { ROOT, type Started } from '../helpers/process.js';
import { ADMIN, CLUSTER, freePort, type Stack, startTestbedStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const PORT = 9271;
const PASSWORD = 'ceems-e2e';
const SHOTS = join(ROOT, '.artifacts/screenshots');
const CHROMIUM = process.env.CEEMS_CHROMIUM ?? '/usr/bin/chromium';

const basic = (login: string) => `Basic ${Buffer.from(`${login}:${PASSWORD}`).toString('base64')}`;

interface ApiUnit {
  uuid: string;
  username: string;
  state: string;
  started_at_ts: number;
  ended_at_ts: number;
  total_cpu_energy_usage_kwh: Record<string, number>;
}

describe('dashboards and the web view on the SLURM testbed', { timeout: 420_000 }, () => {
  let stack: Stack | undefined;
  let api: Started;
  let lbUrl: string;
  let mine = '';
  let theirs = '';
  let done: ApiUnit[] = [];
  let browser: Browser | undefined;

  /** API JSON as a client that logs in with basic auth (`grafana`: a trusted client sending the header). */
  const apiGet = async (path: string, user: string) => {
    const r = await fetch(`${api.url}${path}`, {
      headers: { Authorization: basic('grafana'), 'X-Grafana-User': user },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    return {
      status: r.status,
      text,
      json: (() => {
        try {
          return JSON.parse(text);
        } catch {
          return undefined;
        }
      })(),
    };
  };

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    lbUrl = `http://127.0.0.1:${await freePort()}`;
    stack = await startTestbedStack({
      promPort: PORT,
      dirPrefix: 'ceems-web-e2e-',
      apiArgs: (dir) => {
        const hash = bcrypt.hashSync(PASSWORD, 4);
        const webConfig = join(dir, 'web.yml');
        writeFileSync(
          webConfig,
          `basic_auth_users:\n${['usr1', 'usr2', ADMIN, 'grafana'].map((u) => `  ${u}: ${hash}`).join('\n')}\n`,
          { mode: 0o644 },
        );
        return [`--web.config.file=${webConfig}`];
      },
      apiEnv: {
        CEEMS_API_SERVER_UI_LB_URL: lbUrl,
        // people log in as themselves; `grafana` stays a trusted client that names the user in the header
        CEEMS_API_SERVER_UI_BASIC_AUTH_USERS: `usr1=usr1,usr2=usr2,${ADMIN}=${ADMIN}`,
      },
      apiHeaders: { Authorization: basic('grafana') },
      lbUnrestrictedMetrics: ['ceems_emissions_gCo2_kWh', 'ceems_estimated_power_watts'],
      lbPort: Number(new URL(lbUrl).port),
    });
    api = stack.api;
    [mine, theirs] = (await stack.runJobs([
      { user: 'usr1', account: 'acc1', script: 'stress-ng --cpu 1 --timeout 40s', name: 'ceems-web-usr1' },
      { user: 'usr2', account: 'acc2', script: 'stress-ng --cpu 1 --timeout 35s', name: 'ceems-web-usr2' },
    ])) as [string, string];
    await stack.recordingRules('FR', [mine, theirs]);
    await stack.waitForUnits([mine, theirs]);
    await stack.startLb();
    let last = '';
    done = await waitFor(
      'both jobs completed with energy in the API',
      120_000,
      async () => {
        const r = await apiGet(`/api/v1/units/admin?uuid=${mine}&uuid=${theirs}`, ADMIN);
        last = r.text;
        const u = (r.json?.data ?? []) as ApiUnit[];
        const ok =
          u.length === 2 &&
          u.every(
            (x) =>
              x.state === 'COMPLETED' && x.ended_at_ts > 0 && (x.total_cpu_energy_usage_kwh.total ?? 0) > 0,
          );
        if (!ok) throw new Error(`last answer: ${last.slice(0, 600)}`);
        return u;
      },
      1000,
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  });

  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  /** Variables of the dashboards as usr1 would set them to look at their job. */
  const substitution = () => {
    const job = done.find((u) => u.uuid === mine)!;
    return {
      vars: { uuid: mine, uuids: [mine], cluster_id: CLUSTER, energy_kwh: '1', countries: 'FR|DE|PL' },
      from: Math.floor(job.started_at_ts / 1000) - 60,
      to: Math.ceil(Date.now() / 1000),
      intervalS: 5,
      rateIntervalS: 20,
    };
  };

  it('every dashboard PromQL expression returns data through ceems_lb for its reader; other users are refused', async (t) => {
    const s = substitution();
    const lb = async (expr: string, user: string, instant: boolean) => {
      const params = instant
        ? new URLSearchParams({ query: expr, time: String(s.to) })
        : new URLSearchParams({ query: expr, start: String(s.from), end: String(s.to), step: '5s' });
      const r = await fetch(`${lbUrl}/api/v1/${instant ? 'query' : 'query_range'}?${params}`, {
        headers: { 'X-Grafana-User': user, 'X-Ceems-Cluster-Id': CLUSTER },
        signal: AbortSignal.timeout(20_000),
      });
      const text = await r.text();
      return {
        status: r.status,
        text,
        series: r.status === 200 ? (JSON.parse(text).data.result as unknown[]).length : 0,
      };
    };
    const failures: string[] = [];
    const seen: string[] = [];
    const records = allDashboards()
      .flatMap((d) => d.queries)
      .filter((q) => q.kind === 'promql');
    const instantPanels = new Set([
      'Is my energy measured or estimated?',
      'GPUs of the unit',
      'Collector health',
      'Exporters up',
    ]);
    for (const q of records) {
      const expr = substitute(q.expr, s);
      const reader = q.admin ? ADMIN : 'usr1';
      const r = await lb(expr, reader, instantPanels.has(q.panel));
      seen.push(
        `${q.dashboard} / ${q.panel}: ${r.status}, ${r.series} series${q.optional ? ` (optional: ${q.optional})` : ''}`,
      );
      if (r.status !== 200)
        failures.push(
          `${q.dashboard} / ${q.panel} as ${reader}: HTTP ${r.status} ${r.text.slice(0, 300)}\n  ${expr}`,
        );
      else if (r.series === 0 && !q.optional)
        failures.push(`${q.dashboard} / ${q.panel} as ${reader}: no data\n  ${expr}`);
      // a query pinning usr1's unit is refused to usr2
      if (!q.admin && expr.includes(mine)) {
        const other = await lb(expr, 'usr2', instantPanels.has(q.panel));
        if (other.status !== 403)
          failures.push(`${q.dashboard} / ${q.panel} as usr2: HTTP ${other.status}, expected 403`);
      }
    }
    t.diagnostic(seen.join('\n'));
    assert.deepEqual(failures, []);
  });

  it('every API-backed panel URL answers 200 with rows for its reader', async (t) => {
    const s = substitution();
    const failures: string[] = [];
    const seen: string[] = [];
    for (const q of allDashboards().flatMap((d) => d.queries)) {
      if (q.kind !== 'api') continue;
      const params = new URLSearchParams(q.params.map(([k, v]): [string, string] => [k, substitute(v, s)]));
      const reader = q.admin ? ADMIN : 'usr1';
      const r = await apiGet(`${q.path}?${params}`, reader);
      const rows = Array.isArray(r.json?.data) ? r.json.data.length : 0;
      seen.push(`${q.dashboard} / ${q.panel}: ${r.status}, ${rows} rows`);
      if (r.status !== 200 || rows === 0)
        failures.push(`${q.dashboard} / ${q.panel} as ${reader}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
      if (q.path === '/api/v1/units' && rows > 0) {
        const owners = new Set((r.json.data as ApiUnit[]).map((u) => u.username));
        if (owners.size !== 1 || !owners.has('usr1')) failures.push(`${q.panel}: rows of ${[...owners]}`);
      }
    }
    t.diagnostic(seen.join('\n'));
    assert.deepEqual(failures, []);
  });

  /** Script errors of every page: none is expected. */
  const pageErrors: string[] = [];
  /** A logged-in page (basic auth, as a person of a standalone setup). */
  async function login(user: string): Promise<Page> {
    const context = await browser!.newContext({
      httpCredentials: { username: user, password: PASSWORD },
      viewport: { width: 1400, height: 1000 },
    });
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${user}: ${e.message}`));
    return page;
  }
  /** Waits for a page's script to finish; on time-out the error holds what the page showed. */
  const loaded = async (page: Page, what: string) => {
    try {
      await page.waitForSelector(`body[data-loaded="${what}"]`, { timeout: 30_000 });
    } catch (e) {
      const text = (await page.textContent('body')) ?? '';
      throw new Error(
        `${what} page not loaded (${(e as Error).message.split('\n')[0]}); it showed:\n${text.slice(0, 1500)}`,
      );
    }
  };
  const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, name), fullPage: true });
  const rowsOf = (page: Page) =>
    page.$$eval('#units tbody tr[data-uuid]', (trs) =>
      trs.map((tr) => ({
        uuid: tr.getAttribute('data-uuid'),
        user: tr.getAttribute('data-user'),
        energy: Number(tr.getAttribute('data-energy')),
        source: tr.getAttribute('data-source'),
      })),
    );

  it('browser: usr1 sees only their jobs, with energy; the power chart of their job has drawn points', async () => {
    const page = await login('usr1');
    const res = await page.goto(`${api.url}/ui/`);
    assert.equal(res?.status(), 200);
    await loaded(page, 'units');
    const rows = await rowsOf(page);
    assert.ok(rows.length > 0, 'no rows');
    assert.ok(
      rows.every((r) => r.user === 'usr1'),
      JSON.stringify(rows),
    );
    assert.ok(!rows.some((r) => r.uuid === theirs), `usr2's job ${theirs} listed to usr1`);
    const job = rows.find((r) => r.uuid === mine);
    assert.ok(job, `job ${mine} missing: ${JSON.stringify(rows)}`);
    assert.ok(job.energy > 0, `energy of ${mine}: ${job.energy}`);
    assert.equal(job.source, 'estimated', 'the testbed node power is estimated from CPU load');
    await page.waitForSelector('#projects tbody tr[data-project]');
    await shot(page, 'units-usr1.png');

    await page.click(`#units tr[data-uuid="${mine}"] a`);
    await loaded(page, 'unit');
    const state = await page.$eval('#chart-power', (e) => e.getAttribute('data-state'));
    const status = await page.$eval('#status-power', (e) => e.textContent);
    assert.equal(state, 'drawn', `power chart: ${status}`);
    const drawn = await page.evaluate(() => {
      // no DOM types in this project: the parts of uPlot and the canvas read here
      interface Canvas2D {
        canvas: { width: number; height: number };
        getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
      }
      const charts = (
        globalThis as unknown as { ceemsCharts: Record<string, { data: (number | null)[][]; ctx: Canvas2D }> }
      ).ceemsCharts;
      const u = charts.power!;
      const values = u.data[1]!.filter((v) => v !== null && v > 0).length;
      const c = u.ctx.canvas;
      const px = u.ctx.getImageData(0, 0, c.width, c.height).data;
      // pixels of the series' stroke colour (#d9480f): the line itself, not the axes or grid
      let line = 0;
      for (let i = 0; i < px.length; i += 4)
        if (px[i]! > 170 && px[i + 1]! < 130 && px[i + 2]! < 90 && px[i + 3]! > 100) line++;
      return { values, line, points: u.data[0]!.length };
    });
    assert.ok(drawn.values >= 5, `power values > 0: ${JSON.stringify(drawn)}`);
    assert.ok(drawn.line >= 100, `line pixels on the canvas: ${JSON.stringify(drawn)}`);
    for (const id of ['cpu', 'memory', 'emissions'])
      assert.equal(await page.$eval(`#chart-${id}`, (e) => e.getAttribute('data-state')), 'drawn', id);
    assert.match(await page.$eval('#summary', (e) => e.textContent ?? ''), /estimated/);
    await shot(page, 'unit-usr1.png');
    await page.context().close();
    assert.deepEqual(pageErrors, []);
  });

  it('browser: usr2 opening usr1’s job gets the 403 page; usr2’s list has only usr2’s job', async () => {
    const page = await login('usr2');
    const res = await page.goto(`${api.url}/ui/unit?cluster_id=${CLUSTER}&uuid=${mine}`);
    assert.equal(res?.status(), 403);
    assert.match(
      await page.$eval('#error', (e) => e.textContent ?? ''),
      /403 Forbidden[\s\S]*does not exist or is not yours/,
    );
    await shot(page, 'forbidden-usr2.png');
    const series = await page.evaluate(
      async (u) => (await fetch(`api/series?cluster_id=ceems&uuid=${u}&panel=power`)).status,
      mine,
    );
    assert.equal(series, 403);
    await page.goto(`${api.url}/ui/`);
    await loaded(page, 'units');
    const rows = await rowsOf(page);
    assert.ok(
      rows.some((r) => r.uuid === theirs) && rows.every((r) => r.user === 'usr2'),
      JSON.stringify(rows),
    );
    await page.context().close();
    assert.deepEqual(pageErrors, []);
  });

  it('browser: an admin sees both jobs, opens usr1’s, and has the cluster overview', async () => {
    const page = await login(ADMIN);
    await page.goto(`${api.url}/ui/`);
    await loaded(page, 'units');
    const rows = await rowsOf(page);
    for (const [uuid, user] of [
      [mine, 'usr1'],
      [theirs, 'usr2'],
    ])
      assert.ok(
        rows.some((r) => r.uuid === uuid && r.user === user && r.energy > 0),
        `${uuid} of ${user}: ${JSON.stringify(rows)}`,
      );
    await shot(page, 'units-admin.png');
    const res = await page.goto(`${api.url}/ui/unit?cluster_id=${CLUSTER}&uuid=${mine}`);
    assert.equal(res?.status(), 200);
    await loaded(page, 'unit');
    assert.equal(await page.$eval('#chart-power', (e) => e.getAttribute('data-state')), 'drawn');
    await page.goto(`${api.url}/ui/cluster`);
    await loaded(page, 'cluster');
    assert.ok(await page.$(`#clusters tr[data-cluster="${CLUSTER}"]`));
    assert.equal(
      await page.$eval('#chart-cluster-power', (e) => e.getAttribute('data-state')),
      'drawn',
      await page.$eval('#status-cluster-power', (e) => e.textContent ?? ''),
    );
    await shot(page, 'cluster-admin.png');
    await page.context().close();
    assert.deepEqual(pageErrors, []);
  });
});
