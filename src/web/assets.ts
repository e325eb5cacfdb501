// Files the web view serves: its own script and style (src/web/static, also when running from dist/,
// which tsc does not copy them to) and uPlot from node_modules. Read on first use and kept in memory;
// nothing is fetched from anywhere else, so the view works without internet.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const STATIC_ASSETS: Record<string, { type: string; file: () => string }> = {
  'app.js': { type: 'text/javascript; charset=utf-8', file: () => ownFile('app.js') },
  'app.css': { type: 'text/css; charset=utf-8', file: () => ownFile('app.css') },
  'uPlot.iife.min.js': { type: 'text/javascript; charset=utf-8', file: () => uplotFile('uPlot.iife.min.js') },
  'uPlot.min.css': { type: 'text/css; charset=utf-8', file: () => uplotFile('uPlot.min.css') },
};

/** src/web/static/<name>, from this module in src/web or in dist/web. */
function ownFile(name: string): string {
  const candidates = [
    new URL(`./static/${name}`, import.meta.url),
    new URL(`../../src/web/static/${name}`, import.meta.url),
  ];
  for (const u of candidates) {
    const p = fileURLToPath(u);
    if (existsSync(p)) return p;
  }
  throw new Error(`web view asset ${name} not found`);
}

function uplotFile(name: string): string {
  return createRequire(import.meta.url).resolve(`uplot/dist/${name}`);
}

const cache = new Map<string, Buffer>();

/** The content of an asset (throws when the file cannot be read). */
export function readAsset(name: string): Buffer {
  let b = cache.get(name);
  if (!b) {
    const a = STATIC_ASSETS[name];
    if (!a) throw new Error(`unknown asset ${name}`);
    b = readFileSync(a.file());
    cache.set(name, b);
  }
  return b;
}
