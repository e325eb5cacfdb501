// Chassis power from the BMC's Redfish API (spec exporter.md §5.7). On an error the session is dropped
// (reconnect on the next scrape) and the last readings are exported again (kept quirk, §17.2).

import type { Collector, CollectorContext, CollectorDefinition, Emitter } from '../collector.js';
import { NoDataError } from '../collector.js';
import type { ChassisPower, RedfishClient } from '../redfish/client.js';

const HELP = {
  current: 'Current Power consumption in watts',
  min: 'Minimum Power consumption in watts',
  max: 'Maximum Power consumption in watts',
  avg: 'Average Power consumption in watts',
} as const;

/** Chassis Id as a label value sanitized like a metric name: `System.Embedded.1` → `System_Embedded_1`. */
export function chassisLabel(id: string): string {
  return id.replace(/[^a-zA-Z0-9_:]/g, '_');
}

export class RedfishCollector implements Collector {
  private cached: Map<string, ChassisPower> | undefined;

  constructor(
    private readonly ctx: CollectorContext,
    private readonly client: RedfishClient,
  ) {}

  async update(out: Emitter, signal: AbortSignal): Promise<void> {
    let readings: Map<string, ChassisPower>;
    try {
      readings = await this.client.powerReadings(signal);
      this.cached = readings;
    } catch (e) {
      const err = (e as Error).message;
      await this.client.logout();
      if (!this.cached) throw new NoDataError(`no Redfish power reading yet: ${err}`);
      this.ctx.logger.error(
        { err },
        'Failed to get power readings from Redfish; exporting the last readings',
      );
      readings = this.cached;
    }
    for (const [id, power] of readings) {
      const labels = { chassis: chassisLabel(id), hostname: this.ctx.hostname };
      for (const key of ['current', 'min', 'max', 'avg'] as const) {
        if (power[key] > 0) out.emit(`ceems_redfish_${key}_watts`, 'gauge', HELP[key], labels, power[key]);
      }
    }
  }

  stop(): Promise<void> {
    return this.client.close();
  }
}

const FLAG = 'collector.redfish.config.file';

export const redfish: CollectorDefinition = {
  name: 'redfish',
  defaultEnabled: false,
  flags: [
    {
      name: FLAG,
      type: 'string',
      default: '',
      // The deprecated env name is honoured too (see create()).
      env: 'CEEMS_EXPORTER_REDFISH_COLL_CONFIG_FILE',
      aliases: ['collector.redfish.web-config'],
      help: 'Path to Redfish configuration file.',
    },
    {
      name: `${FLAG}.expand-env-vars`,
      type: 'bool',
      default: false,
      help: 'Any environment variables that are referenced in Redfish config file will be expanded. To escape $ use $$',
    },
  ],
  async create(ctx: CollectorContext) {
    const path = ctx.flags.string(FLAG) || (process.env.CEEMS_EXPORTER_REDFISH_COLL_WEB_CONFIG_FILE ?? '');
    if (path === '') throw new Error(`--${FLAG} is required by the redfish collector`);
    // the HTTP client (undici) and the config schema (zod, yaml) load only with this collector
    const [{ RedfishClient }, { loadRedfishConfig }, { logConfigNotices }] = await Promise.all([
      import('../redfish/client.js'),
      import('../redfish/config.js'),
      import('../../common/config.js'),
    ]);
    const cfg = loadRedfishConfig(path, {
      expandEnv: ctx.flags.bool(`${FLAG}.expand-env-vars`),
      nodeName: ctx.hostname,
    });
    logConfigNotices(ctx.logger, cfg.notices);
    ctx.logger.info({ bmc: cfg.bmcUrl, via: cfg.requestUrl }, 'Redfish BMC');
    return new RedfishCollector(ctx, new RedfishClient(cfg, ctx.logger));
  },
};
