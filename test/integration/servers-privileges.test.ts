// The API server and redfish_proxy started as root switch to nobody like the exporter (src/common/
// privileges.ts): no capability at all without SLURM; with a SLURM cluster only cap_setuid/cap_setgid, with
// which sacct runs as uid 0 and the testbed's jobs reach the database. (ceems_lb: lb-privileges.test.ts.)
// Run `npm run build` first.

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { capabilityMask, lookupUser } from '../../src/common/syscall.js';
import { type Started, startProgram } from '../helpers/process.js';
import { submitJob, testbedEnv } from '../helpers/slurm.js';
import { waitFor } from '../helpers/wait.js';

const NOBODY = lookupUser('nobody')!.uid;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** uid and capability sets of each thread of `pid`, main thread first. */
function threads(pid: number): Array<{ tid: string; uid: number; eff: bigint; prm: bigint; bnd: bigint }> {
  const tids = readdirSync(`/proc/${pid}/task`).sort(
    (a, b) => Number(a !== String(pid)) - Number(b !== String(pid)),
  );
  return tids.map((tid) => {
    const s = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    const f = (k: string) => new RegExp(`^${k}:\\s*(\\S+)`, 'm').exec(s)![1]!;
    return {
      tid,
      uid: Number(f('Uid')),
      eff: BigInt(`0x${f('CapEff')}`),
      prm: BigInt(`0x${f('CapPrm')}`),
      bnd: BigInt(`0x${f('CapBnd')}`),
    };
  });
}

async function switched(p: Started, caps: string[]): Promise<void> {
  await waitFor('the switch to nobody', 10_000, () => /msg="Dropped root privileges"/.test(p.stderr()));
  const want = capabilityMask(caps);
  const [main, ...others] = threads(p.pid);
  assert.deepEqual(
    { uid: main!.uid, eff: main!.eff, prm: main!.prm, bnd: main!.bnd },
    { uid: NOBODY, eff: want, prm: want, bnd: want },
    p.stderr(),
  );
  for (const t of others)
    assert.deepEqual({ uid: t.uid, caps: t.eff | t.prm }, { uid: NOBODY, caps: 0n }, t.tid);
}

function apiConfig(extra: string): string {
  const dir = tmp('ceems-api-priv-');
  chmodSync(dir, 0o755);
  const file = join(dir, 'config.yml');
  writeFileSync(
    file,
    `ceems_api_server:\n  data:\n    path: ${join(dir, 'data')}\n    update_interval: 2s\n    time_zone: UTC\n${extra}`,
  );
  return file;
}

describe('ceems_api_server started as root', { timeout: 120_000 }, () => {
  it('runs as nobody with no capability when no cluster needs one', async () => {
    const p = await startProgram('ceems_api_server', [
      `--config.file=${apiConfig('')}`,
      '--web.listen-address=127.0.0.1:0',
    ]);
    try {
      await switched(p, []);
      assert.equal((await fetch(`${p.url}/health`)).status, 200);
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });

  it('keeps only cap_setuid/cap_setgid for SLURM, and sacct (as uid 0) brings the testbed jobs in', async () => {
    const env = testbedEnv();
    const job = submitJob('usr1', 'acc1', 'sleep 30', { name: 'ceems-api-priv' });
    const config = apiConfig(
      `clusters:\n  - id: slurm-0\n    manager: slurm\n    cli:\n      path: /usr/bin\n      environment_variables:\n        SLURM_CONF: ${env.SLURM_CONF}\n`,
    );
    const p = await startProgram('ceems_api_server', [
      `--config.file=${config}`,
      '--web.listen-address=127.0.0.1:0',
      '--log.level=debug',
    ]);
    try {
      await switched(p, ['cap_setuid', 'cap_setgid']);
      assert.match(p.stderr(), /msg="SLURM resource manager ready" cluster_id=slurm-0 mode=root /);
      await waitFor(`job ${job} (usr1's) in the database`, 60_000, async () => {
        const r = await fetch(`${p.url}/api/v1/units/admin?cluster_id=slurm-0&uuid=${job}`, {
          headers: { 'X-Grafana-User': 'ceems-int-svc' },
        });
        const units = ((await r.json()) as { data?: Array<{ username: string }> }).data ?? [];
        if (units.some((u) => u.username === 'usr1')) return true;
        throw new Error(
          `answer ${r.status}: ${JSON.stringify(units)}; log tail:\n${p.stderr().slice(-1500)}`,
        );
      });
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });
});

describe('redfish_proxy started as root', () => {
  it('runs as nobody with no capability, and still proxies', async () => {
    const dir = tmp('ceems-redfish-priv-');
    const config = join(dir, 'config.yml');
    writeFileSync(config, 'redfish_proxy:\n  targets: []\n');
    const p = await startProgram('redfish_proxy', [
      `--config.file=${config}`,
      '--web.listen-address=127.0.0.1:0',
    ]);
    try {
      await switched(p, []);
      assert.equal((await fetch(`${p.url}/redfish/v1/Chassis`)).status, 400, 'no target for this client');
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });
});
