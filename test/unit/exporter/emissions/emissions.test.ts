import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { averageIntensity } from '@tgwf/co2/data';
import { FlagError, parseFlags } from '../../../../src/common/flags.js';
import { createHttpClient } from '../../../../src/common/httpclient.js';
import { createLogger } from '../../../../src/common/logger.js';
import { type CollectorContext, FamilySet } from '../../../../src/exporter/collector.js';
import {
  createEmissionsCollector,
  emissions,
  selectProviders,
} from '../../../../src/exporter/collectors/emissions.js';
import { emapsProvider, parseZones } from '../../../../src/exporter/emissions/emaps.js';
import { countryName, factorsFromAlpha3, owidProvider } from '../../../../src/exporter/emissions/owid.js';
import {
  type DynamicProvider,
  encodeQuery,
  HttpStatusError,
} from '../../../../src/exporter/emissions/provider.js';
import { parseRte, rteProvider, rteUrl } from '../../../../src/exporter/emissions/rte.js';
import { ProviderRunner } from '../../../../src/exporter/emissions/runner.js';
import {
  historicalUrl,
  parseHistorical,
  wattTimeProvider,
} from '../../../../src/exporter/emissions/watttime.js';
import { waitFor } from '../../../helpers/wait.js';
import {
  EMAPS_TOKEN,
  emapsRoutes,
  type FakeApi,
  fixture,
  RTE_PATH,
  rteRoutes,
  startFakeApi,
  WT_PASS,
  WT_USER,
  wattTimeRoutes,
} from './fake-apis.js';

const quiet = createLogger({ level: 'silent' });
const http = createHttpClient({});
after(() => http.close());
const signal = () => new AbortController().signal;

function ctx(args: string[]): CollectorContext {
  return {
    hostname: 'node1',
    procfs: '/proc',
    sysfs: '/sys',
    cgroupfs: '/sys/fs/cgroup',
    flags: parseFlags(emissions.flags, args).flags,
    logger: quiet,
  };
}

describe('owid (static data from @tgwf/co2)', () => {
  it('maps alpha-3 to alpha-2 with English names and skips aggregates', async () => {
    const f = owidProvider().factors;
    const fr = f.find((x) => x.countryCode === 'FR');
    assert.deepEqual(fr, { country: 'France', countryCode: 'FR', value: averageIntensity.data.FRA });
    assert.equal(f.find((x) => x.countryCode === 'US')?.country, 'United States');
    assert.ok(f.length > 150);
    assert.ok(
      f.every((x) => /^[A-Z]{2}$/.test(x.countryCode)),
      'only ISO alpha-2 codes',
    );
    assert.deepEqual(factorsFromAlpha3({ WORLD: 470, EU: 200, XXX: 1, DEU: 350 }), [
      { country: 'Germany', countryCode: 'DE', value: 350 },
    ]);
    assert.equal(countryName('GB'), 'United Kingdom');
  });
});

describe('rte', () => {
  let api: FakeApi;
  before(async () => {
    api = await startFakeApi((app) => rteRoutes(app));
  });
  after(() => api.close());

  it('sends the exact opendatasoft query (keys sorted, Go query escaping) and reads taux_co2', async () => {
    assert.equal(
      rteUrl('https://x', new Date('2024-05-06T10:00:00Z')),
      `https://x${RTE_PATH}?include_app_metas=false&include_links=false&limit=1&offset=0&order_by=date_heure+desc&select=taux_co2%2Cdate_heure&timezone=Europe%2FParis&where=date_heure+in+%5Bdate%272024-05-06%27+TO+now%28%29%5D+and+taux_co2+is+not+null`,
    );
    // 23:30 UTC is already the next day in Paris.
    assert.match(rteUrl('', new Date('2024-05-06T23:30:00Z')), /date%272024-05-07%27/);
    api.seen = [];
    assert.deepEqual(await rteProvider(http, api.url).fetch(signal()), [
      { country: 'France', countryCode: 'FR', value: 32 },
    ]);
    assert.match(
      api.seen[0]!.url,
      /^\/api\/explore\/v2\.1\/catalog\/datasets\/eco2mix-national-tr\/records\?include_app_metas=false&/,
    );
  });

  it('errors name the problem', async () => {
    assert.throws(() => parseRte({ total_count: 0, results: [] }), /no results\[0\]\.taux_co2/);
    api.behaviour = 'fail';
    await assert.rejects(
      rteProvider(http, api.url).fetch(signal()),
      /HTTP 503: <html><body>Service Unavailable/,
    );
    api.behaviour = 'ok';
  });

  it('a slow API times out with a message naming the request', async () => {
    api.behaviour = 'slow';
    api.slowMs = 500;
    await assert.rejects(
      rteProvider(http, api.url, 100).fetch(signal()),
      /GET http:\/\/127\.0\.0\.1:\d+\/api\/explore\/v2\.1\/catalog\/datasets\/eco2mix-national-tr\/records: timed out after 100 ms/,
    );
    api.behaviour = 'ok';
  });

  it('rate-limited after a good fetch: the cached value stays and the runner backs off', async () => {
    api.behaviour = 'ok';
    const p = { ...rteProvider(http, api.url), refreshMs: 20 };
    const r = new ProviderRunner(p, quiet, { maxBackoffMs: 200 });
    r.start();
    await r.current;
    assert.equal(r.factors[0]!.value, 32);
    api.behaviour = 'ratelimit';
    api.retryAfter = '3600';
    api.seen = [];
    await waitFor('two rate-limited attempts', 3000, () => api.seen.length >= 2, 10);
    assert.equal(r.factors[0]!.value, 32, 'cache kept');
    assert.match(r.lastError ?? '', /HTTP 429/);
    const t = Date.now();
    await waitFor('third attempt after the capped back-off', 2000, () => api.seen.length >= 3, 10);
    assert.ok(Date.now() - t >= 100, 'waited for the back-off, not the 20 ms refresh');
    r.stop();
    api.behaviour = 'ok';
    api.retryAfter = undefined;
  });

  it('encodeQuery matches Go url.Values.Encode', () => {
    assert.equal(encodeQuery({ b: "a*b!'()~", a: 'x y/z' }), 'a=x+y%2Fz&b=a%2Ab%21%27%28%29~');
  });
});

describe('emaps', () => {
  let api: FakeApi;
  before(async () => {
    api = await startFakeApi((app) => emapsRoutes(app));
  });
  after(() => api.close());

  it('lists zones with the token, then reads each zone; zones the token cannot read are skipped', async () => {
    api.seen = [];
    const f = await emapsProvider(http, EMAPS_TOKEN, { baseUrl: api.url }).fetch(signal());
    assert.deepEqual(
      f.sort((a, b) => a.countryCode.localeCompare(b.countryCode)),
      [
        { country: 'Germany', countryCode: 'DE', value: 302 },
        { country: 'France', countryCode: 'FR', value: 27 },
      ],
    );
    assert.ok(api.seen.every((s) => s.authToken === EMAPS_TOKEN));
    assert.deepEqual(api.seen.map((s) => s.url).sort(), [
      '/v3/carbon-intensity/latest?zone=DE',
      '/v3/carbon-intensity/latest?zone=FR',
      '/v3/carbon-intensity/latest?zone=US-CAL-CISO',
      '/v3/zones',
    ]);
    assert.deepEqual(parseZones(fixture('emaps-zones.json'))[2], {
      code: 'US-CAL-CISO',
      name: 'USA California Independent System Operator',
    });
  });

  it('retries the zone list 5 times, then fails; a bad token is an error', async () => {
    api.behaviour = 'fail';
    api.seen = [];
    await assert.rejects(
      emapsProvider(http, EMAPS_TOKEN, { baseUrl: api.url, retryDelayMs: 1 }).fetch(signal()),
      /\/v3\/zones: HTTP 503/,
    );
    assert.equal(api.seen.length, 5);
    api.behaviour = 'ok';
    await assert.rejects(
      emapsProvider(http, 'wrong', { baseUrl: api.url, retryDelayMs: 1 }).fetch(signal()),
      /HTTP 401/,
    );
  });

  it('429 is surfaced with Retry-After for the runner', async () => {
    api.behaviour = 'ratelimit';
    api.retryAfter = '120';
    await assert.rejects(
      emapsProvider(http, EMAPS_TOKEN, { baseUrl: api.url }).fetch(signal()),
      (e: unknown) => e instanceof HttpStatusError && e.status === 429 && e.retryAfterMs === 120_000,
    );
    api.behaviour = 'ok';
    api.retryAfter = undefined;
  });
});

describe('wt (WattTime)', () => {
  let api: FakeApi;
  const state = { tokens: new Set<string>(), logins: 0 };
  before(async () => {
    api = await startFakeApi((app) => wattTimeRoutes(app, state));
  });
  after(() => api.close());

  it('logs in with basic auth, reuses the token for 25 minutes and converts lbs/MWh to g/kWh', async () => {
    let now = Date.parse('2024-05-06T13:45:00Z');
    const p = wattTimeProvider(
      http,
      { username: WT_USER, password: WT_PASS, region: 'CAISO_NORTH' },
      { baseUrl: api.url, now: () => now },
    );
    api.seen = [];
    const expected = [{ country: 'CAISO_NORTH', countryCode: 'CAISO_NORTH', value: 900 * 0.453592 }];
    assert.deepEqual(await p.fetch(signal()), expected);
    now += 20 * 60_000;
    assert.deepEqual(await p.fetch(signal()), expected);
    assert.equal(state.logins, 1, 'token reused within 25 minutes');
    now += 6 * 60_000;
    await p.fetch(signal());
    assert.equal(state.logins, 2, 'new token after 25 minutes');
    assert.equal(
      api.seen[1]!.url,
      '/v3/historical?end=2024-05-06T13%3A45%3A00Z&region=CAISO_NORTH&signal_type=co2_moer&start=2024-05-06T13%3A30%3A00Z',
    );
    assert.equal(api.seen[1]!.authorization, 'Bearer wt-token-1');
  });

  it('a revoked token logs in again; bad credentials and empty data are errors', async () => {
    const p = wattTimeProvider(
      http,
      { username: WT_USER, password: WT_PASS, region: 'CAISO_NORTH' },
      { baseUrl: api.url },
    );
    await p.fetch(signal());
    const logins = state.logins;
    state.tokens.clear();
    assert.equal((await p.fetch(signal()))[0]!.value, 900 * 0.453592);
    assert.equal(state.logins, logins + 1);
    const bad = wattTimeProvider(
      http,
      { username: WT_USER, password: 'nope', region: 'X' },
      { baseUrl: api.url },
    );
    await assert.rejects(bad.fetch(signal()), /GET http:\/\/127\.0\.0\.1:\d+\/login: HTTP 403/);
    assert.throws(() => parseHistorical({ data: [], meta: {} }), /no data\[\]\.value/);
    assert.match(
      historicalUrl('b', 'R', new Date('2024-01-01T00:10:00.123Z')),
      /end=2024-01-01T00%3A10%3A00Z&region=R&signal_type=co2_moer&start=2023-12-31T23%3A55%3A00Z$/,
    );
  });
});

describe('provider runner: background refresh, cache, 429 back-off', () => {
  function scripted(results: (number | Error)[], refreshMs = 40): DynamicProvider & { calls: number } {
    const p = {
      id: 'test',
      name: 'Test',
      refreshMs,
      calls: 0,
      async fetch() {
        const r = results[Math.min(p.calls++, results.length - 1)]!;
        if (r instanceof Error) throw r;
        return [{ country: 'C', countryCode: 'CC', value: r }];
      },
    };
    return p;
  }

  it('keeps the last factors through errors and 429s and picks up new values', async () => {
    const p = scripted([10, new Error('boom'), new HttpStatusError(429, 'slow down', 30), 20]);
    const r = new ProviderRunner(p, quiet, { firstRetryMs: 5 });
    r.start();
    await waitFor('three fetches', 3000, () => p.calls >= 3, 10);
    assert.equal(r.factors[0]!.value, 10, 'cache kept after an error and a 429');
    await waitFor('refreshed value', 3000, () => r.factors[0]?.value === 20, 10);
    r.stop();
  });

  it('429 without Retry-After doubles the wait from the refresh period', async () => {
    const p = scripted([new HttpStatusError(429, 'slow down'), 5], 30);
    const r = new ProviderRunner(p, quiet);
    const t0 = Date.now();
    r.start();
    await waitFor('retry after back-off', 3000, () => p.calls >= 2, 10);
    assert.ok(Date.now() - t0 >= 55, 'waited about 2 × refresh');
    assert.equal(r.lastError, undefined, 'the error is cleared by the good fetch');
    assert.equal(r.factors[0]!.value, 5);
    r.stop();
  });

  it('drops factors that are not > 0', async () => {
    const r = new ProviderRunner(scripted([0]), quiet);
    r.start();
    await r.current;
    assert.deepEqual(r.factors, []);
    r.stop();
  });
});

describe('emissions collector', () => {
  let emaps: FakeApi;
  let wt: FakeApi;
  before(async () => {
    emaps = await startFakeApi((app) => emapsRoutes(app));
    wt = await startFakeApi((app) => wattTimeRoutes(app, { tokens: new Set(), logins: 0 }));
  });
  after(async () => {
    await emaps.close();
    await wt.close();
  });

  it('default set: owid, rte, global, plus emaps/wt only with credentials [D-EXP-8]', async () => {
    const ids = async (env: NodeJS.ProcessEnv) =>
      (await selectProviders(ctx([]), http, env)).map((p) => p.id);
    assert.deepEqual(await ids({}), ['owid', 'rte', 'global']);
    assert.deepEqual(
      await ids({ EMAPS_API_TOKEN: 't', WT_USERNAME: 'u', WT_PASSWORD: 'p', WT_REGION: 'r' }),
      ['owid', 'rte', 'emaps', 'wt', 'global'],
    );
    assert.deepEqual(await ids({ WT_USERNAME: 'u' }), ['owid', 'rte', 'global']);
  });

  it('explicit providers: only those; missing credentials abort start-up; unknown names are flag errors', async () => {
    assert.deepEqual(
      (
        await selectProviders(
          ctx(['--collector.emissions.provider=rte', '--collector.emissions.provider=owid']),
          http,
          {},
        )
      ).map((p) => p.id),
      ['owid', 'rte'],
    );
    await assert.rejects(
      () => selectProviders(ctx(['--collector.emissions.provider=emaps']), http, {}),
      /--collector.emissions.provider=emaps needs EMAPS_API_TOKEN/,
    );
    await assert.rejects(
      () => selectProviders(ctx(['--collector.emissions.provider=wt']), http, { WT_USERNAME: 'u' }),
      /needs WT_USERNAME, WT_PASSWORD and WT_REGION/,
    );
    assert.throws(() => parseFlags(emissions.flags, ['--collector.emissions.provider=global']), FlagError);
  });

  it('a scrape never waits for a slow provider and exports what is cached, with the spec labels', async () => {
    emaps.behaviour = 'slow';
    emaps.slowMs = 400;
    const c = await createEmissionsCollector(
      ctx([
        '--collector.emissions.provider=owid',
        '--collector.emissions.provider=emaps',
        '--collector.emissions.provider=wt',
      ]),
      {
        env: {
          EMAPS_API_TOKEN: EMAPS_TOKEN,
          __EMAPS_BASE_URL: emaps.url,
          WT_USERNAME: WT_USER,
          WT_PASSWORD: WT_PASS,
          WT_REGION: 'CAISO_NORTH',
          __WT_BASE_URL: wt.url,
        },
      },
    );
    try {
      const t0 = Date.now();
      let set = new FamilySet();
      c.update(set);
      assert.ok(Date.now() - t0 < 100);
      const fam = () => set.families.get('ceems_emissions_gCo2_kWh')!;
      assert.ok(
        fam().samples.every((s) => s.labels.provider !== 'emaps'),
        'emaps not fetched yet',
      );
      assert.equal(fam().help, 'Current emission factor in CO2eq grams per kWh');
      await waitFor('providers fetched', 3000, () => c.runners.every((r) => r.factors.length > 0), 10);
      set = new FamilySet();
      c.update(set);
      const byProvider = (id: string) => fam().samples.filter((s) => s.labels.provider === id);
      assert.deepEqual(
        byProvider('emaps')
          .map((s) => [s.labels, s.value])
          .sort(),
        [
          [
            { country: 'France', country_code: 'FR', provider: 'emaps', provider_name: 'Electricity Maps' },
            27,
          ],
          [
            { country: 'Germany', country_code: 'DE', provider: 'emaps', provider_name: 'Electricity Maps' },
            302,
          ],
        ],
      );
      assert.deepEqual(byProvider('wt')[0]!.labels, {
        country: 'CAISO_NORTH',
        country_code: 'CAISO_NORTH',
        provider: 'wt',
        provider_name: 'Watt Time',
      });
      assert.deepEqual(byProvider('owid').find((s) => s.labels.country_code === 'FR')?.labels, {
        country: 'France',
        country_code: 'FR',
        provider: 'owid',
        provider_name: 'OWID',
      });
      assert.ok(fam().samples.every((s) => s.value > 0 && !('hostname' in s.labels)));
    } finally {
      await c.stop();
      emaps.behaviour = 'ok';
    }
  });

  it('the default set includes the world average constant', async () => {
    // RTE is pointed at a closed loopback port: tests never reach the real API.
    const c = await createEmissionsCollector(ctx([]), { env: { __RTE_BASE_URL: 'http://127.0.0.1:1' } });
    try {
      const set = new FamilySet();
      c.update(set);
      const g = set.families
        .get('ceems_emissions_gCo2_kWh')!
        .samples.filter((s) => s.labels.provider === 'global');
      assert.deepEqual(g, [
        {
          labels: {
            country: 'World',
            country_code: 'ZZ',
            provider: 'global',
            provider_name: 'World Average',
          },
          value: 475,
        },
      ]);
    } finally {
      // Stops the background RTE fetch before it reaches the network.
      await c.stop();
    }
  });
});
