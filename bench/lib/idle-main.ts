// The floor of a single executable: a main that only waits, packaged like the programs (bench/exporter-footprint).
export async function main(): Promise<number> {
  await new Promise(() => setInterval(() => {}, 1 << 30));
  return 0;
}
