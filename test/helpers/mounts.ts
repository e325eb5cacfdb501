// Which mount a path is on, for tests that check per-mount-point counters.

import { readFileSync } from 'node:fs';
import { parseMountinfo } from '../../src/exporter/ebpf/mounts.js';

/** The mount point a path is on, as /proc/self/mountinfo says (the longest prefix). */
export function mountOf(path: string): string {
  const mounts = [...parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).values()];
  return mounts
    .filter((m) => m === '/' || path === m || path.startsWith(`${m}/`))
    .sort((a, b) => b.length - a.length)[0]!;
}
