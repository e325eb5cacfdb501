// Interface of the updaters that enrich the units of one window with aggregate metrics (spec §12).

import type { UnitRecord } from '../db/index.js';
import type { MetricMap } from '../models.js';

export interface Updater {
  readonly id: string;
  /**
   * Sets metric maps (and `ignore` for cut-off units) on `units` of cluster `clusterId` for the window
   * `[start, end]` (ms). Throws when the metrics source is unusable (down, garbage), so that the window is
   * retried instead of being stored without metrics.
   */
  update(
    clusterId: string,
    units: UnitRecord[],
    start: number,
    end: number,
    signal?: AbortSignal,
  ): Promise<void>;
  /**
   * kWh of the window `[start, end]` (ms) that the recording rules distributed on the nodes (`node`) and
   * that no unit got (`unattributed`); undefined when the source has none (issue 20, B4).
   */
  clusterEnergy?(start: number, end: number, signal?: AbortSignal): Promise<MetricMap | undefined>;
  close(): Promise<void>;
}
