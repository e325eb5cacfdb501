// `global` provider: the world-average constant of the original, only part of the default set.

import type { StaticProvider } from './provider.js';

export const WORLD_AVERAGE_G_PER_KWH = 475;

export function globalProvider(): StaticProvider {
  return {
    id: 'global',
    name: 'World Average',
    factors: [{ country: 'World', countryCode: 'ZZ', value: WORLD_AVERAGE_G_PER_KWH }],
  };
}
