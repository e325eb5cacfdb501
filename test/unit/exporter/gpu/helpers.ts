// Test context for GPU code: parsed flags, fixture sysfs/procfs and a logger that records its lines.

import { parseFlags } from '../../../../src/common/flags.js';
import type { Logger } from '../../../../src/common/logger.js';
import { createLogger } from '../../../../src/common/logger.js';
import type { CollectorContext } from '../../../../src/exporter/collector.js';
import { GPU_FLAGS, SLURM_GPU_FLAGS } from '../../../../src/exporter/gpu/flags.js';
import { fixture } from './fixtures.js';

export interface RecordingLogger {
  logger: Logger;
  lines: Record<string, unknown>[];
}

export function recordingLogger(): RecordingLogger {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    write: (s: string) => lines.push(JSON.parse(s)),
  });
  return { logger, lines };
}

export function gpuContext(args: string[], sysfs: string, logger: Logger): CollectorContext {
  return {
    hostname: 'gpu-node1',
    procfs: fixture('procfs'),
    sysfs: fixture(sysfs),
    cgroupfs: '/nonexistent',
    flags: parseFlags([...GPU_FLAGS, ...SLURM_GPU_FLAGS], args, { env: {} }).flags,
    logger,
  };
}
