// The Node.js floor of a scrape's I/O, run as its own `node` process: lists the same directories, reads the
// same files (O_NONBLOCK, one reused buffer, as src/common/fsread.ts does) and checks the same PIDs as the C
// floor, from the same list file, `reps` passes. Prints "<wall ns> <cpu ns>" per pass, then "peak <VmHWM kB>".
// What no Node.js exporter can go below: it parses nothing and encodes nothing.
import { closeSync, constants, existsSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';

const [list, reps] = process.argv.slice(2);
const items = readFileSync(list, 'utf8')
  .split('\n')
  .filter((l) => l.length > 2)
  .map((l) => [l[0], l.slice(2)]);
const buf = Buffer.allocUnsafe(65536);
const flags = constants.O_RDONLY | constants.O_NONBLOCK;
let sum = 0;
for (let r = 0; r < Number(reps); r++) {
  const w0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (const [kind, path] of items) {
    if (kind === 'd') sum += readdirSync(path).length;
    else if (kind === 'f') {
      const fd = openSync(path, flags);
      for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) sum += n;
      closeSync(fd);
    } else if (existsSync(path)) sum++;
  }
  const c = process.cpuUsage(c0);
  console.log(`${process.hrtime.bigint() - w0} ${(c.user + c.system) * 1000}`);
}
console.log(`peak ${/^VmHWM:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]}`);
console.error(sum);
