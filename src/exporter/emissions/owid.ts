// `owid` provider: static per-country annual grid carbon intensity. The figures are Ember's yearly
// electricity data (latest year per country) as shipped by the maintained @tgwf/co2 package (see
// docs/emissions.md); ISO alpha-3 codes become alpha-2 through i18n-iso-countries, and names are CLDR's
// English region names (built into Node.js), which match Our World in Data's entity names.

import { averageIntensity } from '@tgwf/co2/data';
import countries from 'i18n-iso-countries';
import english from 'i18n-iso-countries/langs/en.json' with { type: 'json' };
import type { EmissionFactor, StaticProvider } from './provider.js';

countries.registerLocale(english);
const regionNames = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });

/** English name of an ISO alpha-2 code. */
export function countryName(alpha2: string): string {
  return regionNames.of(alpha2) ?? countries.getName(alpha2, 'en') ?? alpha2;
}

/**
 * Factors from a table keyed by alpha-3 code; aggregates (`WORLD`, `EU`, `ASIA`, …) and unknown codes
 * are skipped.
 */
export function factorsFromAlpha3(table: Record<string, number>): EmissionFactor[] {
  const out: EmissionFactor[] = [];
  for (const [alpha3, value] of Object.entries(table)) {
    const alpha2 = alpha3.length === 3 ? countries.alpha3ToAlpha2(alpha3) : undefined;
    if (!alpha2 || typeof value !== 'number' || !Number.isFinite(value)) continue;
    out.push({ country: countryName(alpha2), countryCode: alpha2, value });
  }
  return out;
}

export function owidProvider(): StaticProvider {
  return { id: 'owid', name: 'OWID', factors: factorsFromAlpha3(averageIntensity.data) };
}
