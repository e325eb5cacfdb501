#!/usr/bin/env bash
# Builds ceems.bpf.o from ceems.bpf.c (this folder) with Debian's clang and libbpf-dev headers
# (apt install clang llvm libbpf-dev). `--check` builds into a temporary file and fails when it differs from the
# committed object, so the object in the repository is always what its source gives.
# The object is reproducible: DWARF is stripped (BTF and CO-RE relocations stay) and the source is named by
# the compilation directory "." (-fdebug-compilation-dir), so neither the checkout's location nor the build
# time ends up in it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
out=ceems.bpf.o
[[ ${1:-} == --check ]] && out=$(mktemp --suffix=.bpf.o) && trap 'rm -f "$out"' EXIT
clang -O2 -g -target bpfel -I"/usr/include/$(uname -m)-linux-gnu" \
  -D__TARGET_ARCH_x86 -fdebug-compilation-dir=. -Wall -Werror -c ceems.bpf.c -o "$out"
llvm-strip -g "$out"
if [[ ${1:-} == --check ]]; then
  cmp -s "$out" ceems.bpf.o || { echo "src/exporter/ebpf/bpf/ceems.bpf.o is not what ceems.bpf.c builds: run src/exporter/ebpf/bpf/build.sh" >&2; exit 1; }
fi
