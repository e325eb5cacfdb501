import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { NoDataError } from '../../../../src/exporter/collector.js';
import { netdev, parseNetDev } from '../../../../src/exporter/collectors/netdev.js';
import { collect, context, family, writeTree } from './node-context.js';

const devices = (text: string) =>
  family(text, 'ceems_netdev_receive_bytes_total')
    .slice(2)
    .map((l) => /device="([^"]+)"/.exec(l)![1]);

describe('netdev collector', () => {
  const trees: { cleanup(): void }[] = [];
  after(() => {
    for (const t of trees) t.cleanup();
  });

  it('exports the 16 counters of a device with the original HELP texts', async () => {
    assert.equal(
      await collect(await netdev.create(context(netdev, ['--collector.netdev.device-include=veth3f2a9c1']))),
      [
        '# HELP ceems_netdev_receive_bytes_total Total received bytes by the network device',
        '# TYPE ceems_netdev_receive_bytes_total counter',
        'ceems_netdev_receive_bytes_total{device="veth3f2a9c1",hostname="node1"} 1.204881e+06',
        '# HELP ceems_netdev_receive_compressed_total Total received compressed packets by the network device',
        '# TYPE ceems_netdev_receive_compressed_total counter',
        'ceems_netdev_receive_compressed_total{device="veth3f2a9c1",hostname="node1"} 0',
        '# HELP ceems_netdev_receive_dropped_total Total received dropped packets by the network device',
        '# TYPE ceems_netdev_receive_dropped_total counter',
        'ceems_netdev_receive_dropped_total{device="veth3f2a9c1",hostname="node1"} 0',
        '# HELP ceems_netdev_receive_errors_total Total received errors by the network device',
        '# TYPE ceems_netdev_receive_errors_total counter',
        'ceems_netdev_receive_errors_total{device="veth3f2a9c1",hostname="node1"} 0',
        '# HELP ceems_netdev_receive_fifo_total Total received FIFO errors by the network device',
        '# TYPE ceems_netdev_receive_fifo_total counter',
        'ceems_netdev_receive_fifo_total{device="veth3f2a9c1",hostname="node1"} 0',
        '# HELP ceems_netdev_receive_frame_total Total received frames by the network device',
        '# TYPE ceems_netdev_receive_frame_total counter',
        'ceems_netdev_receive_frame_total{device="veth3f2a9c1",hostname="node1"} 0',
        '# HELP ceems_netdev_receive_multicast_total Total received multicast packets by the network device',
        '# TYPE ceems_netdev_receive_multicast_total counter',
        'ceems_netdev_receive_multicast_total{device="veth3f2a9c1",hostname="node1"} 0',
        '# HELP ceems_netdev_receive_packets_total Total received packets by the network device',
        '# TYPE ceems_netdev_receive_packets_total counter',
        'ceems_netdev_receive_packets_total{device="veth3f2a9c1",hostname="node1"} 10113',
        '# HELP ceems_netdev_transmit_bytes_total Total transmitted bytes by the network device',
        '# TYPE ceems_netdev_transmit_bytes_total counter',
        'ceems_netdev_transmit_bytes_total{device="veth3f2a9c1",hostname="node1"} 8.837712e+06',
        '# HELP ceems_netdev_transmit_carrier_total Total frame transmission errors errors due to loss of carrier by the network device',
        '# TYPE ceems_netdev_transmit_carrier_total counter',
        'ceems_netdev_transmit_carrier_total{device="veth3f2a9c1",hostname="node1"} 0',
        '# HELP ceems_netdev_transmit_colls_total Total transmitted collisions by the network device',
        '# TYPE ceems_netdev_transmit_colls_total counter',
        'ceems_netdev_transmit_colls_total{device="veth3f2a9c1",hostname="node1"} 0',
        '# HELP ceems_netdev_transmit_compressed_total Total transmitted compressed packets by the network device',
        '# TYPE ceems_netdev_transmit_compressed_total counter',
        'ceems_netdev_transmit_compressed_total{device="veth3f2a9c1",hostname="node1"} 0',
        '# HELP ceems_netdev_transmit_dropped_total Total transmitted dropped packets by the network device',
        '# TYPE ceems_netdev_transmit_dropped_total counter',
        'ceems_netdev_transmit_dropped_total{device="veth3f2a9c1",hostname="node1"} 1',
        '# HELP ceems_netdev_transmit_errors_total Total transmitted bytes by the network device',
        '# TYPE ceems_netdev_transmit_errors_total counter',
        'ceems_netdev_transmit_errors_total{device="veth3f2a9c1",hostname="node1"} 0',
        '# HELP ceems_netdev_transmit_fifo_total Total frame transmission errors FIFO by the network device',
        '# TYPE ceems_netdev_transmit_fifo_total counter',
        'ceems_netdev_transmit_fifo_total{device="veth3f2a9c1",hostname="node1"} 0',
        '# HELP ceems_netdev_transmit_packets_total Total transmitted packets by the network device',
        '# TYPE ceems_netdev_transmit_packets_total counter',
        'ceems_netdev_transmit_packets_total{device="veth3f2a9c1",hostname="node1"} 12887',
        '',
      ].join('\n'),
    );
  });

  it('exports every device by default, zeros included', async () => {
    const text = await collect(await netdev.create(context(netdev)));
    assert.deepEqual(devices(text), ['eth0', 'lo', 'veth3f2a9c1']);
    assert.equal(text.split('\n').filter((l) => l.startsWith('ceems_netdev_')).length, 3 * 16);
    assert.deepEqual(family(text, 'ceems_netdev_receive_bytes_total').slice(2, 3), [
      'ceems_netdev_receive_bytes_total{device="eth0",hostname="node1"} 1.43212268649e+11',
    ]);
  });

  it('filters devices with unanchored include / exclude regular expressions', async () => {
    const run = async (flag: string) => devices(await collect(await netdev.create(context(netdev, [flag]))));
    assert.deepEqual(await run('--collector.netdev.device-include=eth'), ['eth0', 'veth3f2a9c1']);
    assert.deepEqual(await run('--collector.netdev.device-include=^eth'), ['eth0']);
    assert.deepEqual(await run('--collector.netdev.device-include=^(lo|eth0)$'), ['eth0', 'lo']);
    assert.deepEqual(await run('--collector.netdev.device-exclude=^veth'), ['eth0', 'lo']);
    assert.deepEqual(await run('--collector.netdev.device-exclude=eth'), ['lo']);
  });

  it('refuses include together with exclude, and invalid expressions, naming the flag', () => {
    assert.throws(
      () =>
        netdev.create(
          context(netdev, ['--collector.netdev.device-include=eth', '--collector.netdev.device-exclude=lo']),
        ),
      /--collector.netdev.device-include and --collector.netdev.device-exclude are mutually exclusive/,
    );
    assert.throws(
      () => netdev.create(context(netdev, ['--collector.netdev.device-exclude=('])),
      /invalid value '\(' for flag '--collector.netdev.device-exclude'/,
    );
  });

  it('rejects malformed lines with a message naming the line', async () => {
    const header = 'Inter-|   Receive\n face |bytes\n';
    assert.throws(
      () => parseNetDev(`${header}  eth0: 1 2 3\n`),
      /invalid line in net\/dev: ' {2}eth0: 1 2 3'/,
    );
    assert.throws(() => parseNetDev(`${header}  eth0 ${'1 '.repeat(16)}\n`), /invalid line in net\/dev/);
    const t = writeTree({ 'proc/net/dev': `${header}  eth0: ${'x '.repeat(16)}\n` });
    trees.push(t);
    await assert.rejects(
      collect(await netdev.create(context(netdev, [], t.root))),
      /invalid line in net\/dev: ' {2}eth0: x/,
    );
  });

  it('reports no data when /proc/net/dev is missing', async () => {
    const t = writeTree({ 'proc/.keep': '' });
    trees.push(t);
    await assert.rejects(
      collect(await netdev.create(context(netdev, [], t.root))),
      (e) => e instanceof NoDataError && /net\/dev does not exist/.test(e.message),
    );
  });
});
