// Version information of this build (dist/buildinfo.json, written by scripts/buildinfo.mjs).

import { readFileSync } from 'node:fs';

export interface BuildInfo {
  version: string;
  revision: string;
  branch: string;
  buildUser: string;
  buildDate: string;
  goversion: string;
  goos: string;
  goarch: string;
  tags: string;
}

const GOARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};

function load(): BuildInfo {
  let file: Partial<BuildInfo> = {};
  try {
    file = JSON.parse(readFileSync(new URL('../buildinfo.json', import.meta.url), 'utf8'));
  } catch {
    // running from sources (tsx): no build stamp
  }
  return {
    version: file.version ?? '0.0.0-dev',
    revision: file.revision ?? 'unknown',
    branch: file.branch ?? 'unknown',
    buildUser: file.buildUser ?? 'unknown',
    buildDate: file.buildDate ?? 'unknown',
    goversion: `node${process.versions.node}`,
    goos: process.platform,
    goarch: GOARCH[process.arch] ?? process.arch,
    tags: 'unknown',
  };
}

export const buildInfo: BuildInfo = load();

/** Text of `--version`, in the layout of Prometheus' version.Print. */
export function versionText(program: string): string {
  const b = buildInfo;
  return (
    `${program}, version ${b.version} (branch: ${b.branch}, revision: ${b.revision})\n` +
    `  build user:       ${b.buildUser}\n` +
    `  build date:       ${b.buildDate}\n` +
    `  go version:       ${b.goversion}\n` +
    `  platform:         ${b.goos}/${b.goarch}\n` +
    `  tags:             ${b.tags}\n`
  );
}
