// Mount ids (what the programs record for an fd: struct mount's mnt_id) to mount points, from
// /proc/<pid>/mountinfo, whose first field is that id. Ids are unique across mount namespaces, so a unit
// in a namespace of its own (a container) is looked up in its first process's mountinfo. Ids found in
// neither are the kernel's internal mounts (pipes, sockets, anonymous inodes): not file IO, not exported.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The kernel escapes space, tab, newline and backslash in mountinfo paths as octal `\ooo`. */
const unescapeOctal = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));

/** mount id → mount point of a mountinfo text (proc(5): fields 1 and 5). */
export function parseMountinfo(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    const id = Number(fields[0]);
    if (Number.isInteger(id)) out.set(id, unescapeOctal(fields[4]!));
  }
  return out;
}

function readMountinfo(procfs: string, pid: number | 'self'): string {
  try {
    return readFileSync(join(procfs, String(pid), 'mountinfo'), 'utf8');
  } catch {
    return ''; // the process ended
  }
}

export class MountPoints {
  private ownText = '';
  private own = new Map<number, string>();
  /** Ids found in some unit's namespace, and ids found nowhere; both reset when our own table changes. */
  private readonly foreign = new Map<number, string>();
  private readonly internal = new Set<number>();

  constructor(private readonly procfs: string) {}

  /** Rereads our own mount table (a scrape's first step: mounts change rarely, the read is ~30 µs). */
  refresh(): void {
    const text = readMountinfo(this.procfs, 'self');
    if (text === this.ownText) return;
    this.ownText = text;
    this.own = parseMountinfo(text);
    this.foreign.clear();
    this.internal.clear();
  }

  /** The mount point of `id` as the unit whose processes are `pids` sees it; undefined: an internal mount. */
  path(id: number, pids: readonly number[]): string | undefined {
    const known = this.own.get(id) ?? this.foreign.get(id);
    if (known !== undefined || this.internal.has(id)) return known;
    const pid = pids[0];
    if (pid === undefined) return undefined; // no namespace to look in: nothing learnt
    for (const [i, p] of parseMountinfo(readMountinfo(this.procfs, pid)))
      if (!this.own.has(i)) this.foreign.set(i, p);
    const found = this.foreign.get(id);
    if (found === undefined) this.internal.add(id);
    return found;
  }
}
