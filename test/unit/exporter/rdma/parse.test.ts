import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import {
  parseCqs,
  parseMrs,
  parseQpCounters,
  parseQpModes,
  parseQps,
  parseRecord,
} from '../../../../src/exporter/rdma/parse.js';

const FIX = resolve(import.meta.dirname, '../../../fixtures/rdma');
const fixture = (name: string) => readFileSync(join(FIX, name), 'utf8');
/** The fixture's record lines (no continuation lines) that contain `needle`. */
const linesWith = (name: string, needle: string) =>
  fixture(name)
    .split('\n')
    .filter((l) => l.includes(needle) && !/^\s/.test(l));

describe('rdma record lines', () => {
  it('splits key/value pairs and keeps a process name with spaces whole', () => {
    assert.deepEqual(Object.fromEntries(parseRecord('dev mlx5_1 cqn 3 cqe 127 pid 4220 comm my app')!), {
      dev: 'mlx5_1',
      cqn: '3',
      cqe: '127',
      pid: '4220',
      comm: 'my app',
    });
    assert.deepEqual(
      Object.fromEntries(
        parseRecord('link mlx5_1/2 cntn 2 pid 4220 comm my app rx_write_requests 0 rx_read_requests 100 ')!,
      ),
      {
        link: 'mlx5_1/2',
        cntn: '2',
        pid: '4220',
        comm: 'my app',
        rx_write_requests: '0',
        rx_read_requests: '100',
      },
    );
    assert.equal(
      parseRecord('link mlx5_1/1 lqpn 1 type GSI state RTS sq-psn 0 comm [ib_core]')!.get('pid'),
      undefined,
    );
  });

  it('rejects lines whose pairs do not line up', () => {
    assert.equal(parseRecord('dev mlx5_1 cqn'), undefined);
    assert.equal(parseRecord('dev mlx5_1 pid 3 comm'), undefined);
  });
});

describe('rdma resource output', () => {
  it('mr: device, pid and length of user MRs; kernel MRs dropped; bad lengths reported', () => {
    const { entries, malformed } = parseMrs(fixture('resource-mr.txt'));
    assert.deepEqual(entries, [
      { device: 'mlx5_0', pid: 4201, mrlen: 4194304 },
      { device: 'mlx5_0', pid: 4202, mrlen: 1048576 },
      { device: 'mlx5_1', pid: 4220, mrlen: 65536 },
      { device: 'mlx5_1', pid: 4220, mrlen: 131072 },
      { device: 'mlx5_0', pid: 9999, mrlen: 8192 },
    ]);
    assert.deepEqual(malformed, linesWith('resource-mr.txt', 'mrlen 12x'));
  });

  it('cq: device, pid and entries; a truncated line is reported', () => {
    const { entries, malformed } = parseCqs(fixture('resource-cq.txt'));
    assert.deepEqual(
      entries.map((e) => `${e.device} ${e.pid} ${e.cqe}`),
      ['mlx5_0 4201 255', 'mlx5_0 4203 511', 'mlx5_1 4220 127', 'mlx5_1 4230 63', 'mlx5_1 9999 31'],
    );
    assert.deepEqual(malformed, ['dev mlx5_1 cqn']);
  });

  it('qp: device and port of user QPs; unbound QPs (`/-`) skipped; a link without port reported', () => {
    const { entries, malformed } = parseQps(fixture('resource-qp.txt'));
    assert.deepEqual(
      entries.map((e) => `${e.device}/${e.port} ${e.pid}`),
      ['mlx5_0/1 4201', 'mlx5_0/1 4202', 'mlx5_1/1 4220', 'mlx5_1/2 4220', 'mlx5_1/2 4230', 'mlx5_1/2 9999'],
    );
    assert.deepEqual(malformed, linesWith('resource-qp.txt', 'link mlx5_0 '));
  });
});

describe('rdma statistic output', () => {
  it('qp show: the exported hardware counters per QP counter; LQPN lines ignored; bad pid reported', () => {
    const { entries, malformed } = parseQpCounters(fixture('statistic-qp.txt'));
    assert.deepEqual(
      entries.map((e) => `${e.device}/${e.port} ${e.pid}`),
      ['mlx5_0/1 4201', 'mlx5_0/1 4202', 'mlx5_1/2 4220', 'mlx5_1/2 4230', 'mlx5_1/2 9999'],
    );
    // only the 11 exported counters are kept (out_of_buffer is not)
    assert.deepEqual(Object.fromEntries(entries[0]!.counters), {
      rx_write_requests: 10,
      rx_read_requests: 0,
      rx_atomic_requests: 0,
      resp_local_length_error: 0,
      resp_cqe_error: 0,
      req_cqe_error: 2,
      req_remote_invalid_request: 0,
      req_remote_access_errors: 0,
      resp_remote_access_errors: 0,
      resp_cqe_flush_error: 0,
      req_cqe_flush_error: 0,
    });
    assert.deepEqual(malformed, linesWith('statistic-qp.txt', 'pid x4230'));
  });

  it('qp mode: auto off vs. automatic counters on, in both iproute2 wordings', () => {
    const { entries, malformed } = parseQpModes(
      `${fixture('statistic-qp-mode.txt')}link mlx5_2/1 mode manual\nmode auto off\n`,
    );
    assert.deepEqual(entries, [
      { link: 'mlx5_0/1', device: 'mlx5_0', autoOn: false },
      { link: 'mlx5_1/1', device: 'mlx5_1', autoOn: true },
      { link: 'mlx5_1/2', device: 'mlx5_1', autoOn: false },
      { link: 'rxe0/1', device: 'rxe0', autoOn: false },
      { link: 'mlx5_2/1', device: 'mlx5_2', autoOn: true },
    ]);
    assert.deepEqual(malformed, ['mode auto off']);
  });

  it('empty output (no RDMA resources) gives no entries and nothing malformed', () => {
    for (const parse of [parseMrs, parseCqs, parseQps, parseQpCounters, parseQpModes])
      assert.deepEqual(parse(''), { entries: [], malformed: [] });
  });
});
