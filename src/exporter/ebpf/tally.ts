// The counters of one BPF map summed per unit and series, and the map kept bounded. The programs count per
// cgroup id, the exporter owns the map's keys: a unit is several cgroups (its directory and children such as
// SLURM steps), and cgroups come and go while the unit runs. Rules, applied on every scrape:
// * a key whose cgroup belongs to a present unit is added to that unit's total;
// * a key whose cgroup belonged to a unit at the previous scrape but is gone now (a step ended) is folded
//   into the unit's retired total and deleted, so the unit's counters never go down;
// * keys of ended units are deleted (and their retired totals dropped);
// * a key no unit ever owned (system services, a unit's cgroup created after this scrape's walk) is deleted
//   only when it was already unowned at the previous scrape: a unit found by the next walk keeps its start.

/** One map entry, decoded. */
export interface Entry {
  readonly cgroup: bigint;
  /** Series of the unit it adds to (mount point, proto/family, ''); undefined: counted but not exported. */
  readonly series: string | undefined;
  readonly values: readonly number[];
  /** The raw key, to delete the entry. */
  readonly key: Buffer;
}

/** Per unit uuid, per series: the counters. */
export type Totals = Map<string, Map<string, number[]>>;

function add(totals: Totals, uuid: string, series: string, values: readonly number[]): void {
  let bySeries = totals.get(uuid);
  if (!bySeries) {
    bySeries = new Map();
    totals.set(uuid, bySeries);
  }
  const sum = bySeries.get(series);
  if (!sum) bySeries.set(series, [...values]);
  else for (let i = 0; i < values.length; i++) sum[i]! += values[i]!;
}

export class UnitTally {
  private lastOwners = new Map<bigint, string>();
  private unownedLast = new Set<string>();
  private readonly retired: Totals = new Map();

  /**
   * Totals of the present units; `owners` maps the cgroup ids found by this scrape's walk to unit uuids,
   * `remove` is called with each key to delete from the map.
   */
  update(
    entries: Iterable<Entry>,
    owners: ReadonlyMap<bigint, string>,
    remove: (key: Buffer) => void,
  ): Totals {
    const present = new Set(owners.values());
    const totals: Totals = new Map();
    const unowned = new Set<string>();
    for (const e of entries) {
      const owner = owners.get(e.cgroup);
      if (owner !== undefined) {
        if (e.series !== undefined) add(totals, owner, e.series, e.values);
        continue;
      }
      const previous = this.lastOwners.get(e.cgroup);
      if (previous !== undefined) {
        if (present.has(previous) && e.series !== undefined) add(this.retired, previous, e.series, e.values);
        remove(e.key);
        continue;
      }
      const id = e.key.toString('hex');
      if (this.unownedLast.has(id)) remove(e.key);
      else unowned.add(id);
    }
    for (const uuid of this.retired.keys()) if (!present.has(uuid)) this.retired.delete(uuid);
    for (const [uuid, bySeries] of this.retired)
      for (const [series, values] of bySeries) add(totals, uuid, series, values);
    this.lastOwners = new Map(owners);
    this.unownedLast = unowned;
    return totals;
  }
}
