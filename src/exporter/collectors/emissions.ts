// Grid emission factors (spec exporter.md §5.10 and §11). Providers refresh in the background; a scrape
// exports whatever each one has cached, so a slow or dead provider never delays or fails the scrape.

import type { HttpClient } from '../../common/httpclient.js';
import type { Collector, CollectorContext, CollectorDefinition, Emitter } from '../collector.js';
import { EMAPS_BASE_URL, emapsProvider } from '../emissions/emaps.js';
import { globalProvider } from '../emissions/global.js';
import type { EmissionProvider } from '../emissions/provider.js';
import { RTE_BASE_URL, rteProvider } from '../emissions/rte.js';
import { ProviderRunner, type RunnerTiming } from '../emissions/runner.js';
import { WT_BASE_URL, wattTimeProvider } from '../emissions/watttime.js';

export const PROVIDER_FLAG = 'collector.emissions.provider';
export const SELECTABLE_PROVIDERS = ['owid', 'emaps', 'rte', 'wt'] as const;

const FAMILY = 'ceems_emissions_gCo2_kWh';
const HELP = 'Current emission factor in CO2eq grams per kWh';

export class EmissionsCollector implements Collector {
  constructor(
    readonly runners: readonly ProviderRunner[],
    private readonly http: HttpClient,
  ) {
    for (const r of runners) r.start();
  }

  update(out: Emitter): void {
    for (const r of this.runners) {
      for (const f of r.factors) {
        out.emit(
          FAMILY,
          'gauge',
          HELP,
          {
            country: f.country,
            country_code: f.countryCode,
            provider: r.provider.id,
            provider_name: r.provider.name,
          },
          f.value,
        );
      }
    }
  }

  async stop(): Promise<void> {
    for (const r of this.runners) r.stop();
    await this.http.close();
  }
}

/**
 * Providers to run. Explicit `--collector.emissions.provider` values must be usable (missing credentials
 * abort start-up); without any, the default set is owid, rte, global plus emaps/wt when their credentials
 * are set [DIFF D-EXP-8].
 */
export async function selectProviders(
  ctx: CollectorContext,
  http: HttpClient,
  env: NodeJS.ProcessEnv = process.env,
): Promise<EmissionProvider[]> {
  const explicit = ctx.flags.strings(PROVIDER_FLAG);
  const wanted = new Set<string>(explicit.length > 0 ? explicit : ['owid', 'rte', 'emaps', 'wt', 'global']);
  const providers: EmissionProvider[] = [];
  const missing = (what: string, vars: string) => {
    if (explicit.length > 0) throw new Error(`--${PROVIDER_FLAG}=${what} needs ${vars} in the environment`);
    ctx.logger.warn({ provider: what }, `${vars} not set; provider '${what}' disabled`);
  };
  // its country tables (i18n-iso-countries, @tgwf/co2) load only when it is used
  if (wanted.has('owid')) providers.push((await import('../emissions/owid.js')).owidProvider());
  if (wanted.has('rte')) providers.push(rteProvider(http, env.__RTE_BASE_URL || RTE_BASE_URL));
  if (wanted.has('emaps')) {
    const token = env.EMAPS_API_TOKEN ?? '';
    if (token === '') missing('emaps', 'EMAPS_API_TOKEN');
    else providers.push(emapsProvider(http, token, { baseUrl: env.__EMAPS_BASE_URL || EMAPS_BASE_URL }));
  }
  if (wanted.has('wt')) {
    const [username, password, region] = [env.WT_USERNAME ?? '', env.WT_PASSWORD ?? '', env.WT_REGION ?? ''];
    if (username === '' || password === '' || region === '')
      missing('wt', 'WT_USERNAME, WT_PASSWORD and WT_REGION');
    else
      providers.push(
        wattTimeProvider(http, { username, password, region }, { baseUrl: env.__WT_BASE_URL || WT_BASE_URL }),
      );
  }
  if (wanted.has('global')) providers.push(globalProvider());
  return providers;
}

export async function createEmissionsCollector(
  ctx: CollectorContext,
  opts: { env?: NodeJS.ProcessEnv; timing?: RunnerTiming } = {},
): Promise<EmissionsCollector> {
  const http = (await import('../../common/httpclient.js')).createHttpClient({});
  const providers = await selectProviders(ctx, http, opts.env);
  ctx.logger.info({ providers: providers.map((p) => p.id).join(',') }, 'Emission factor providers');
  return new EmissionsCollector(
    providers.map((p) => new ProviderRunner(p, ctx.logger, opts.timing)),
    http,
  );
}

export const emissions: CollectorDefinition = {
  name: 'emissions',
  defaultEnabled: false,
  flags: [
    {
      name: PROVIDER_FLAG,
      type: 'enum',
      values: SELECTABLE_PROVIDERS,
      repeatable: true,
      help: 'Emission factor providers. Repeat the flag for several; default: owid, rte, the world average, and emaps/wt when their credentials are set.',
    },
  ],
  create: (ctx) => createEmissionsCollector(ctx),
};
