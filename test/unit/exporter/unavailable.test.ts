// eBPF profiling flags of the original are understood and refused with the reason; perf's and the ebpf
// sub-collector's are real flags now.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlagError, parseFlags } from '../../../src/common/flags.js';
import { allFlags } from '../../../src/exporter/main.js';
import { refuseUnavailable } from '../../../src/exporter/unavailable.js';
import { runProgram } from '../../helpers/process.js';

const check = (args: string[]) => refuseUnavailable(parseFlags(allFlags(), args, { env: {} }).flags);

describe('flags of features whose kernel calls are not implemented yet', () => {
  it('names each given flag, grouped by feature, with the reason', () => {
    assert.throws(
      () => check(['--profiling.ebpf.self-profiler', '--profiling.ebpf.env-var=SLURM_']),
      (e: Error) =>
        e instanceof FlagError &&
        e.message ===
          '--profiling.ebpf.env-var, --profiling.ebpf.self-profiler: continuous profiling (Pyroscope eBPF profiler) is not available in this build (loading BPF programs is not implemented yet); remove these flags',
    );
    assert.throws(() => check(['--profiling.ebpf']), /--profiling\.ebpf: continuous profiling/);
  });
  it('accepts their absence, a --no- bool and the profiling config variable alone', () => {
    check([]);
    check(['--no-profiling.ebpf']);
    check(['--collector.perf.hardware-events', '--collector.perf.env-var=SLURM_']);
    check(['--collector.ebpf.io-metrics', '--collector.ebpf.fs-mount-point=/scratch']);
    refuseUnavailable(
      parseFlags(allFlags(), [], {
        env: { CEEMS_EXPORTER_PROFILING_CONFIG_FILE: '/etc/ceems/profiling.yml' },
      }).flags,
    );
  });
  it('stops the exporter at start-up with exit code 1', async () => {
    const r = await runProgram('ceems_exporter', ['--profiling.ebpf', '--web.listen-address=127.0.0.1:0']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /ceems_exporter: error: --profiling\.ebpf: continuous profiling \(Pyroscope eBPF profiler\) is not available/,
    );
  });
});
