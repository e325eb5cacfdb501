#!/usr/bin/env bash
# The project's whole test run: type check, lint, then every unit and integration test against the
# real SLURM and Prometheus testbed (brought up here, stopped at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

SHARED=${CEEMS_SHARED_DIR:-$(cd .. && pwd)/shared}
export CEEMS_TESTBED_DIR=${CEEMS_TESTBED_DIR:-$SHARED/testbed}
[[ -d $CEEMS_TESTBED_DIR ]] || { echo "ERROR: testbed not found at $CEEMS_TESTBED_DIR (set CEEMS_TESTBED_DIR)" >&2; exit 1; }

# The project's Node.js 24 (installed by npm ci into node_modules/.bin), also when not run through npm.
export PATH=$PWD/node_modules/.bin:$PATH
echo "== runtime: Node.js $(node --version) ($(command -v node))"
[[ $(node -p 'process.versions.node.split(".")[0]') == 24 ]] ||
  { echo "ERROR: Node.js 24 expected; run scripts/setup.sh (npm ci) first" >&2; exit 1; }

echo "== build and type check"
npm run --silent build
npx tsc -p tsconfig.test.json
echo "== lint"
npx biome check .

echo "== system tools"
# Debian packages the tests use; waits for another apt/dpkg run (a testbed script, unattended upgrades)
# instead of failing at once, and refreshes the package lists only when an install fails without them.
apt_install() {
  apt() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"; }
  apt install -y -q "$@" >/dev/null || { apt update -q >/dev/null && apt install -y -q "$@" >/dev/null; }
}
# setfacl/getfacl: the exporter grants the kubelet socket to its run-as user with POSIX ACLs
command -v setfacl >/dev/null || apt_install acl
# chromium: the web view's browser test (test/integration/web-dashboards-e2e.test.ts) drives Debian's build
command -v chromium >/dev/null || apt_install chromium
# postgresql: the API server's PostgreSQL backend tests start Debian's server (test/helpers/postgres.ts)
[ -x /usr/lib/postgresql/15/bin/postgres ] || apt_install postgresql
# clang, llvm, libbpf-dev: the BPF object's rebuild check (src/exporter/ebpf/bpf/build.sh --check); bpftool: the ebpf test
# lists the programs loaded in the kernel
if ! command -v clang >/dev/null || ! command -v llvm-strip >/dev/null || ! command -v bpftool >/dev/null ||
  [ ! -e /usr/include/bpf/bpf_helpers.h ]; then
  apt_install clang llvm libbpf-dev bpftool
fi
# groff: the --help-man test (test/integration/help-flags.test.ts) sets every server's man page with it
command -v groff >/dev/null || apt_install groff-base
# prometheus: tests that start Debian's Prometheus directly (startPrometheus in test/helpers/prometheus.ts:
# route prefix, remote_read) may run before any testbed script installed it; the testbed's installer keeps
# apt from starting the packaged service
if ! command -v prometheus >/dev/null; then
  # shellcheck disable=SC1091
  (source "$CEEMS_TESTBED_DIR/lib/common.sh" && apt_install_missing prometheus)
fi

echo "== testbed: SLURM"
# shellcheck disable=SC1090
eval "$(bash "$CEEMS_TESTBED_DIR/slurm/up.sh" 2> >(tail -n 3 >&2))"

echo "== benchmarks, small mode (smoke test; figures only, no thresholds)"
npm run --silent bench -- --small

run_tests() { node --import tsx --test --test-concurrency=2 --test-timeout=300000 --test-reporter=spec "$@"; }

echo "== security suite: LB attack corpus and canonical queries, PromQL differential against the testbed"
echo "   Prometheus, API path-encoding matrix, identity headers, exporter blocking files"
security=(
  test/unit/lb/canonical.test.ts test/unit/lb/access.test.ts test/unit/lb/parts.test.ts
  test/unit/common/identity.test.ts test/unit/api/security.test.ts test/unit/api/security-paths.test.ts
  test/unit/exporter/fsread.test.ts test/unit/common/program.test.ts
  test/integration/lb-access.test.ts test/integration/lb-differential.test.ts test/integration/lb-robustness.test.ts
  test/integration/api-security-paths.test.ts test/integration/exporter-blocking.test.ts
)
for f in "${security[@]}"; do [[ -f $f ]] || { echo "ERROR: security test $f is missing" >&2; exit 1; }; done
run_tests "${security[@]}"

echo "== tests"
mapfile -t files < <(find test -name '*.test.ts' | sort | grep -vxF -f <(printf '%s\n' "${security[@]}"))
run_tests "${files[@]}"
