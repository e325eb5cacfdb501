// Features of the original exporter that need kernel interfaces not wired up yet (spec exporter.md §14
// continuous profiling). Their flags are accepted so that an existing command line
// is understood, and giving one stops start-up with the reason instead of silently exporting nothing.

import { FlagError, type FlagSpec, type ParsedFlags } from '../common/flags.js';

interface UnavailableFeature {
  what: string;
  why: string;
  flags: readonly FlagSpec[];
}

const notAvailable = (name: string, type: 'bool' | 'string', repeatable = false): FlagSpec => ({
  name,
  type,
  repeatable,
  hidden: true,
  help: 'Not available in this build.',
});

const FEATURES: readonly UnavailableFeature[] = [
  {
    what: 'continuous profiling (Pyroscope eBPF profiler)',
    why: 'loading BPF programs is not implemented yet',
    flags: [
      notAvailable('profiling.ebpf', 'bool'),
      {
        ...notAvailable('profiling.ebpf.config.file', 'string'),
        env: 'CEEMS_EXPORTER_PROFILING_CONFIG_FILE',
      },
      notAvailable('profiling.ebpf.config.file.expand-env-vars', 'bool'),
      notAvailable('profiling.ebpf.env-var', 'string', true),
      notAvailable('profiling.ebpf.self-profiler', 'bool'),
    ],
  },
];

export const UNAVAILABLE_FLAGS: readonly FlagSpec[] = FEATURES.flatMap((f) => f.flags);

/** Throws a FlagError naming every given flag of an unavailable feature and why it is unavailable. */
export function refuseUnavailable(flags: ParsedFlags): void {
  const problems = FEATURES.flatMap((f) => {
    // `--no-…` of a bool asks for nothing
    const given = f.flags
      .filter((s) => flags.isSet(s.name) && (s.type !== 'bool' || flags.bool(s.name)))
      .map((s) => `--${s.name}`);
    return given.length > 0
      ? [`${given.join(', ')}: ${f.what} is not available in this build (${f.why})`]
      : [];
  });
  if (problems.length > 0) throw new FlagError(`${problems.join('; ')}; remove these flags`);
}
