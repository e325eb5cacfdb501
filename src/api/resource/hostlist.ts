// SLURM host list expansion (`cn[01-03,07],gpu[1-2]-ib` → cn01 cn02 cn03 cn07 gpu1-ib gpu2-ib), as
// `scontrol show hostnames` does; used for the `nodelistexp` tag of SLURM units.

/** Splits on commas that are not inside brackets. */
function splitTop(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let startAt = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c === '[') depth++;
    else if (c === ']') depth--;
    else if (c === ',' && depth === 0) {
      out.push(list.slice(startAt, i));
      startAt = i + 1;
    }
  }
  out.push(list.slice(startAt));
  return out.filter((s) => s !== '');
}

/** Expands one bracket body (`01-03,07`) keeping zero padding. */
function expandRange(body: string): string[] {
  const out: string[] = [];
  for (const part of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return [`[${body}]`];
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    const width = m[1]!.length;
    for (let n = from; n <= to; n++) out.push(String(n).padStart(width, '0'));
  }
  return out;
}

/** Expands a SLURM host list; malformed brackets are kept verbatim. */
export function expandHostlist(list: string): string[] {
  const hosts: string[] = [];
  for (const expr of splitTop(list)) {
    let prefixes = [''];
    let rest = expr;
    for (;;) {
      const open = rest.indexOf('[');
      const close = open < 0 ? -1 : rest.indexOf(']', open);
      if (open < 0 || close < 0) {
        prefixes = prefixes.map((p) => p + rest);
        break;
      }
      const head = rest.slice(0, open);
      const values = expandRange(rest.slice(open + 1, close));
      prefixes = prefixes.flatMap((p) => values.map((v) => p + head + v));
      rest = rest.slice(close + 1);
    }
    hosts.push(...prefixes);
  }
  return hosts;
}
