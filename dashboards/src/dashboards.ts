// The four CEEMS dashboards as code. Each is built for its reader: a user's own units (My units), one
// unit in depth (Single unit), the operator's cluster (Cluster overview) and the grid emission factors
// (Emissions). PromQL goes to ceems_lb, which lets a user read only the series of their own units; the
// API server's JSON goes through the Infinity data source, which sends the Grafana user's login.

import type { Built } from './model.js';
import { clusterOverview, emissions } from './operators.js';
import { myUnits, singleUnit } from './users.js';

/** Every dashboard, in the order of the README. */
export function allDashboards(): Built[] {
  return [myUnits(), singleUnit(), clusterOverview(), emissions()];
}

/** The JSON text checked in under dashboards/ (the builders' key order is stable). */
export function dashboardText(b: Built): string {
  return `${JSON.stringify(b.json, null, 2)}\n`; // functions (the SDK's query markers) are left out
}
