// Rows read with node:sqlite have no prototype, which assert's strict deepEqual compares: tests that
// compare whole rows with object literals compare plain copies.

import type { Row } from '../../src/common/sqlite.js';

export function plain(rows: Row[]): Record<string, unknown>[];
export function plain(row: Row | undefined): Record<string, unknown> | undefined;
export function plain(
  rows: Row | Row[] | undefined,
): Record<string, unknown> | Record<string, unknown>[] | undefined {
  return Array.isArray(rows) ? rows.map((r) => ({ ...r })) : rows && { ...rows };
}
