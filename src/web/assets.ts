// Files the web view serves: its own script and style (src/web/static) and uPlot (node_modules/uplot). Each
// is looked up first in ./static beside this module (src/web when run through tsx; the single executable
// embeds all four there, scripts/package.ts), then relative to the repository root (dist/web, which tsc
// does not copy them to, and uPlot from a checkout). Read on first use and kept in memory; nothing is
// fetched from anywhere else, so the view works without internet.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Paths relative to the repository root. */
const OWN = 'src/web/static';
const UPLOT = 'node_modules/uplot/dist';

export const STATIC_ASSETS: Record<string, { type: string; path: string }> = {
  'app.js': { type: 'text/javascript; charset=utf-8', path: `${OWN}/app.js` },
  'app.css': { type: 'text/css; charset=utf-8', path: `${OWN}/app.css` },
  'uPlot.iife.min.js': { type: 'text/javascript; charset=utf-8', path: `${UPLOT}/uPlot.iife.min.js` },
  'uPlot.min.css': { type: 'text/css; charset=utf-8', path: `${UPLOT}/uPlot.min.css` },
};

const cache = new Map<string, Buffer>();

/** The content of an asset (throws, naming the places tried, when it cannot be read). */
export function readAsset(name: string): Buffer {
  const hit = cache.get(name);
  if (hit) return hit;
  const a = STATIC_ASSETS[name];
  if (!a) throw new Error(`unknown asset ${name}`);
  // this module is <root>/src/web/assets.ts or <root>/dist/web/assets.js: the root is two levels up
  const places = [`./static/${name}`, `../../${a.path}`].map((p) =>
    fileURLToPath(new URL(p, import.meta.url)),
  );
  for (const file of places) {
    try {
      const b = readFileSync(file);
      cache.set(name, b);
      return b;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  throw new Error(`web view asset ${name} not found in ${places.join(' or ')}`);
}
