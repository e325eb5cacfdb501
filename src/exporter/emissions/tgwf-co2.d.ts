// Types of the data sub-module of @tgwf/co2 (the package ships JavaScript only).
declare module '@tgwf/co2/data' {
  /** Ember yearly grid carbon intensity (gCO2e/kWh) by ISO-3166 alpha-3 code or region name. */
  export const averageIntensity: { data: Record<string, number>; type: string };
}
