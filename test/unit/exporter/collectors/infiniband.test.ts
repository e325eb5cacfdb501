import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readFileFast } from '../../../../src/common/fsread.js';
import { NoDataError } from '../../../../src/exporter/collector.js';
import {
  COUNTERS,
  InfinibandCollector,
  infiniband,
  parseRate,
  parseState,
} from '../../../../src/exporter/collectors/infiniband.js';
import { collect, context, copyFixture, failingRead, family, writeTree } from './node-context.js';

const MLX5 = 'device="mlx5_0",port="1"';
const MLX4 = 'device="mlx4_0",port="1"';

describe('infiniband collector', () => {
  const trees: { cleanup(): void }[] = [];
  after(() => {
    for (const t of trees) t.cleanup();
  });

  it('exports HCA info, port state, rate and every counter file present, without hostname', async () => {
    const text = await collect(await infiniband.create(context(infiniband)));
    assert.ok(!text.includes('hostname='));
    assert.deepEqual(family(text, 'ceems_infiniband_info'), [
      '# HELP ceems_infiniband_info Non-numeric data from /sys/class/infiniband/<device>, value is always 1.',
      '# TYPE ceems_infiniband_info gauge',
      // mlx4_0 has no hca_type file
      'ceems_infiniband_info{board_id="MT_0000000010",device="mlx5_0",firmware_version="16.35.2000",hca_type="MT4119"} 1',
      'ceems_infiniband_info{board_id="SM_1141000001000",device="mlx4_0",firmware_version="2.31.5050",hca_type=""} 1',
    ]);
    assert.deepEqual(family(text, 'ceems_infiniband_state_id'), [
      '# HELP ceems_infiniband_state_id State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)',
      '# TYPE ceems_infiniband_state_id gauge',
      'ceems_infiniband_state_id{device="mlx4_0",port="1"} 4',
      'ceems_infiniband_state_id{device="mlx4_0",port="2"} 1',
      'ceems_infiniband_state_id{device="mlx5_0",port="1"} 4',
    ]);
    assert.deepEqual(family(text, 'ceems_infiniband_physical_state_id'), [
      '# HELP ceems_infiniband_physical_state_id Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)',
      '# TYPE ceems_infiniband_physical_state_id gauge',
      'ceems_infiniband_physical_state_id{device="mlx4_0",port="1"} 5',
      'ceems_infiniband_physical_state_id{device="mlx4_0",port="2"} 3',
      'ceems_infiniband_physical_state_id{device="mlx5_0",port="1"} 5',
    ]);
    assert.deepEqual(family(text, 'ceems_infiniband_rate_bytes_per_second'), [
      '# HELP ceems_infiniband_rate_bytes_per_second Maximum signal transfer rate',
      '# TYPE ceems_infiniband_rate_bytes_per_second gauge',
      'ceems_infiniband_rate_bytes_per_second{device="mlx4_0",port="1"} 7e+09',
      'ceems_infiniband_rate_bytes_per_second{device="mlx4_0",port="2"} 1.25e+09',
      'ceems_infiniband_rate_bytes_per_second{device="mlx5_0",port="1"} 1.25e+10',
    ]);
    // data counters count 4-octet words
    assert.deepEqual(family(text, 'ceems_infiniband_port_data_received_bytes_total'), [
      '# HELP ceems_infiniband_port_data_received_bytes_total Number of data octets received on all links',
      '# TYPE ceems_infiniband_port_data_received_bytes_total counter',
      `ceems_infiniband_port_data_received_bytes_total{${MLX4}} 4884`,
      'ceems_infiniband_port_data_received_bytes_total{device="mlx4_0",port="2"} 0',
      `ceems_infiniband_port_data_received_bytes_total{${MLX5}} 9.017131652e+09`,
    ]);
    assert.deepEqual(family(text, 'ceems_infiniband_legacy_data_transmitted_bytes_total').slice(2), [
      `ceems_infiniband_legacy_data_transmitted_bytes_total{${MLX4}} 4552`,
    ]);
    // HELP typo of the original kept
    assert.deepEqual(family(text, 'ceems_infiniband_legacy_packets_transmitted_total'), [
      '# HELP ceems_infiniband_legacy_packets_transmitted_total Number of data packets received on all links',
      '# TYPE ceems_infiniband_legacy_packets_transmitted_total counter',
      `ceems_infiniband_legacy_packets_transmitted_total{${MLX4}} 13`,
    ]);
    // `N/A (no PMA)` on mlx4_0: not emitted; mlx5_0 has the file
    assert.deepEqual(family(text, 'ceems_infiniband_symbol_error_total').slice(2), [
      `ceems_infiniband_symbol_error_total{${MLX5}} 0`,
    ]);
    assert.deepEqual(family(text, 'ceems_infiniband_vl15_dropped_total'), [
      '# HELP ceems_infiniband_vl15_dropped_total Number of incoming VL15 packets dropped due to resource limitations.',
      '# TYPE ceems_infiniband_vl15_dropped_total counter',
      `ceems_infiniband_vl15_dropped_total{${MLX5}} 0`,
    ]);
    // mlx5_0 has all 22 `counters/` files, none of `counters_ext/`
    const mlx5Counters = text.split('\n').filter((l) => l.includes(MLX5) && /_total\{/.test(l));
    assert.equal(mlx5Counters.length, COUNTERS.filter((c) => c.file.startsWith('counters/')).length);
    assert.equal(mlx5Counters.length, 22);
    assert.equal(
      text.split('\n').filter((l) => /^ceems_infiniband_legacy_.*device="mlx4_0",port="1"/.test(l)).length,
      8,
    );
  });

  it('skips a port whose files vanish during the scrape and keeps the others', async () => {
    const ctx = context(infiniband);
    const c = new InfinibandCollector(
      ctx,
      failingRead(readFileFast, (p) => p.endsWith('mlx4_0/ports/1/state'), 'ENOENT'),
    );
    const text = await collect(c);
    assert.deepEqual(family(text, 'ceems_infiniband_state_id').slice(2), [
      'ceems_infiniband_state_id{device="mlx4_0",port="2"} 1',
      'ceems_infiniband_state_id{device="mlx5_0",port="1"} 4',
    ]);
    assert.ok(!text.includes(MLX4));
  });

  it('fails with the file name on a malformed state or rate', async () => {
    const t = copyFixture();
    trees.push(t);
    const state = join(t.root, 'sys/class/infiniband/mlx5_0/ports/1/state');
    writeFileSync(state, 'ACTIVE\n');
    const c = await infiniband.create(context(infiniband, [], t.root));
    await assert.rejects(collect(c), {
      message: `could not parse ${state}: expected 'ID: NAME', got 'ACTIVE'`,
    });
    writeFileSync(state, '4: ACTIVE\n');
    writeFileSync(join(t.root, 'sys/class/infiniband/mlx5_0/ports/1/rate'), 'fast\n');
    await assert.rejects(
      collect(c),
      /could not parse .*mlx5_0\/ports\/1\/rate: expected '<N> Gb\/sec \(\.\.\.\)', got 'fast'/,
    );
  });

  it('parses states and rates like node_exporter (rate figure as float32)', () => {
    assert.equal(parseState('4: ACTIVE\n', 'f'), 4);
    assert.equal(parseState('5: LinkUp', 'f'), 5);
    assert.throws(() => parseState('4: A: B', 'f'), /could not parse f/);
    assert.equal(parseRate('56 Gb/sec (4X FDR)\n', 'f'), 7e9);
    assert.equal(parseRate('2.5 Gb/sec (1X SDR)', 'f'), 312_500_000);
    assert.equal(parseRate('0.3 Gb/sec', 'f'), 37_500_001); // float64 would give 37 500 000
    assert.throws(() => parseRate('100', 'f'), /could not parse f/);
  });

  it('reports no data without /sys/class/infiniband', async () => {
    const t = writeTree({ 'sys/class/.keep': '' });
    trees.push(t);
    await assert.rejects(
      collect(await infiniband.create(context(infiniband, [], t.root))),
      (e) => e instanceof NoDataError && /infiniband statistics not found/.test(e.message),
    );
  });
});
