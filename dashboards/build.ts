// Writes the dashboards built by src/dashboards.ts as JSON beside this file, for operators to import:
//   node --import tsx dashboards/build.ts          (test/unit/dashboards fails while they differ)

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allDashboards, dashboardText } from './src/dashboards.js';

for (const d of allDashboards()) {
  writeFileSync(join(import.meta.dirname, d.file), dashboardText(d));
  console.log(`${d.file}: ${d.queries.length} queries${d.plugins.length ? `, needs ${d.plugins.join(', ')}` : ''}`);
}
