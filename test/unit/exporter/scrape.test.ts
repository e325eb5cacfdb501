import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode } from '../../../src/common/exposition.js';
import { createLogger } from '../../../src/common/logger.js';
import { type Collector, NoDataError } from '../../../src/exporter/collector.js';
import { scrape } from '../../../src/exporter/scrape.js';

const quiet = createLogger({ level: 'silent' });

function gauge(name: string, value: number): Collector {
  return { update: (out) => out.emit(name, 'gauge', `${name} help`, { hostname: 'n' }, value) };
}

const lines = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l));

describe('scrape', () => {
  it('runs collectors concurrently and reports success and duration per collector', async () => {
    let running = 0;
    let maxRunning = 0;
    const slow = (name: string): Collector => ({
      async update(out) {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((r) => setTimeout(r, 30));
        running--;
        out.emit(name, 'gauge', 'h', {}, 1);
      },
    });
    const text = encode(
      await scrape(
        [
          { name: 'a', collector: slow('a_m') },
          { name: 'b', collector: slow('b_m') },
        ],
        1000,
        quiet,
      ),
    );
    assert.equal(maxRunning, 2);
    assert.deepEqual(lines(text, /^ceems_scrape_collector_success/), [
      'ceems_scrape_collector_success{collector="a"} 1',
      'ceems_scrape_collector_success{collector="b"} 1',
    ]);
    // at least the collector's 30 ms wait, less than the 1 s timeout (a loaded machine may take longer)
    const duration = lines(
      text,
      /^ceems_scrape_collector_duration_seconds\{collector="a",subcollector=""\} /,
    );
    assert.equal(duration.length, 1, text);
    const seconds = Number(duration[0]!.split(' ')[1]);
    assert.ok(seconds >= 0.029 && seconds < 1, duration[0]);
  });

  it('a failing, a throwing-sync, a no-data and a timed-out collector fail alone', async () => {
    let aborted = false;
    const text = encode(
      await scrape(
        [
          { name: 'ok', collector: gauge('ok_metric', 5) },
          { name: 'rejects', collector: { update: async () => Promise.reject(new Error('boom')) } },
          {
            name: 'throws',
            collector: {
              update: (out) => {
                out.emit('partial_metric', 'gauge', 'h', {}, 1);
                throw new Error('sync boom');
              },
            },
          },
          {
            name: 'nodata',
            collector: {
              update: () => {
                throw new NoDataError('no powercap');
              },
            },
          },
          {
            name: 'hangs',
            collector: {
              update: (_out, signal) =>
                new Promise<void>((resolve) => {
                  signal.addEventListener('abort', () => {
                    aborted = true;
                    resolve();
                  });
                }),
            },
          },
        ],
        100,
        quiet,
      ),
    );
    assert.deepEqual(lines(text, /^ceems_scrape_collector_success/), [
      'ceems_scrape_collector_success{collector="hangs"} 0',
      'ceems_scrape_collector_success{collector="nodata"} 0',
      'ceems_scrape_collector_success{collector="ok"} 1',
      'ceems_scrape_collector_success{collector="rejects"} 0',
      'ceems_scrape_collector_success{collector="throws"} 0',
    ]);
    assert.deepEqual(lines(text, /^ok_metric/), ['ok_metric{hostname="n"} 5']);
    assert.deepEqual(lines(text, /^partial_metric/), [], 'samples of a failed collector are discarded');
    assert.ok(aborted, 'the timed-out collector saw its abort signal');
  });

  it('answers at once when the exporter stops: collectors still running fail and see their abort', async () => {
    const records: { level: string; msg: string }[] = [];
    const log = createLogger({
      level: 'debug',
      format: 'json',
      write: (l: string) => records.push(JSON.parse(l)),
    });
    const stopping = new AbortController();
    let aborted = false;
    const hangs: Collector = {
      update: (_out, signal) =>
        new Promise<void>(() => {
          signal.addEventListener('abort', () => {
            aborted = true;
          });
        }),
    };
    const started = Date.now();
    const pending = scrape(
      [
        { name: 'ok', collector: gauge('ok_metric', 5) },
        { name: 'hangs', collector: hangs },
      ],
      60_000,
      log,
      stopping.signal,
    );
    setImmediate(() => stopping.abort());
    const text = encode(await pending);
    assert.ok(Date.now() - started < 5000, 'the scrape did not wait for its 60 s collector timeout');
    assert.deepEqual(lines(text, /^ceems_scrape_collector_success/), [
      'ceems_scrape_collector_success{collector="hangs"} 0',
      'ceems_scrape_collector_success{collector="ok"} 1',
    ]);
    assert.ok(aborted);
    // an interrupted collector has not failed: nothing at error level
    assert.deepEqual(
      records.map((r) => [r.level, r.msg]),
      [['DEBUG', 'collector interrupted']],
    );
    // a scrape that starts while stopping does not run its collectors' waits either
    const late = encode(await scrape([{ name: 'hangs', collector: hangs }], 60_000, log, stopping.signal));
    assert.deepEqual(lines(late, /^ceems_scrape_collector_success/), [
      'ceems_scrape_collector_success{collector="hangs"} 0',
    ]);
  });

  it('runs each collector with SIGTERM at its default action, given back to its listeners afterwards', async () => {
    const listener = () => {};
    process.on('SIGTERM', listener);
    try {
      const seen: number[] = [];
      const counting: Collector = {
        // e.g. a readdir on a hung filesystem before any file read: nothing else would keep SIGTERM working
        update: () => {
          seen.push(process.listenerCount('SIGTERM'));
        },
      };
      await scrape([{ name: 'fs', collector: counting }], 1000, quiet);
      assert.deepEqual(seen, [0]);
      assert.ok(process.listeners('SIGTERM').includes(listener));
    } finally {
      process.off('SIGTERM', listener);
    }
  });

  it('drops duplicate series across collectors, keeping the first', async () => {
    const text = encode(
      await scrape(
        [
          { name: 'x', collector: gauge('dup', 1) },
          { name: 'y', collector: gauge('dup', 2) },
        ],
        1000,
        quiet,
      ),
    );
    assert.deepEqual(lines(text, /^dup/), ['dup{hostname="n"} 1']);
  });
});
