// The perf sub-collector's flags and what they switch on (spec exporter.md §1.2, §15), apart from the
// sub-collector itself so that the exporter loads the perf_event code only when a flag enables it.

import type { FlagSpec, ParsedFlags } from '../../common/flags.js';
import { type EventKind, PERF_EVENTS } from './events.js';

/** Flag names of each kind: `--collector.perf.<events>` switches it on, `<profilers>` selects events. */
export const KINDS: readonly { kind: EventKind; events: string; profilers: string; what: string }[] = [
  { kind: 'hardware', events: 'hardware-events', profilers: 'hardware-profilers', what: 'hardware' },
  { kind: 'software', events: 'software-events', profilers: 'software-profilers', what: 'software' },
  { kind: 'cache', events: 'hardware-cache-events', profilers: 'cache-profilers', what: 'cache' },
];

export const PERF_FLAGS: readonly FlagSpec[] = [
  ...KINDS.flatMap(({ kind, events, profilers, what }): FlagSpec[] => [
    {
      name: `collector.perf.${events}`,
      type: 'bool',
      default: false,
      help: `Enables collection of perf ${events.replace('-events', '').replace('-', ' ')} events (default: disabled)`,
    },
    {
      name: `collector.perf.${profilers}`,
      type: 'string',
      repeatable: true,
      help: `perf ${what} profilers to collect, repeatable (default: all): ${PERF_EVENTS.filter(
        (e) => e.kind === kind,
      )
        .map((e) => e.name)
        .join(', ')}`,
    },
  ]),
  {
    name: 'collector.perf.env-var',
    type: 'string',
    repeatable: true,
    help: 'Enable profiling only on the processes having any of these environment variables set will be profiled. If empty, all processes will be profiled.',
  },
];

/** Any of the three event flags switches the sub-collector on (spec §1.2). */
export function perfEnabled(flags: ParsedFlags): boolean {
  return KINDS.some((k) => flags.bool(`collector.perf.${k.events}`));
}

/** Spec §15: perf_event_open on other users' processes; their environ for the env-var filter. */
export function perfCapabilities(flags: ParsedFlags): string[] {
  if (!perfEnabled(flags)) return [];
  const envFilter = flags.strings('collector.perf.env-var').length > 0;
  return ['cap_perfmon', ...(envFilter ? ['cap_sys_ptrace', 'cap_dac_read_search'] : [])];
}
