#!/usr/bin/env bash
# `npm ci` run by the project's own Node.js 24 (package.json: optionalDependencies node-linux-<arch>),
# fetched from the npm registry first. npm checks packages' `engines` against the Node.js it runs on, so run
# by an older system Node.js it would warn about the packages that need Node.js 22 or later.
# Arguments go to npm ci (.ci/run: --no-audit --no-fund).
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=node-linux-$(node -p process.arch)
version=$(node -p "require('./package.json').optionalDependencies?.['$pkg'] ?? ''")
if [[ -z $version ]]; then
  echo "ERROR: package.json pins no Node.js for $pkg; install Node.js 24 and run npm ci with it" >&2
  exit 1
fi
exec npx --yes --package="$pkg@$version" -- node "$(readlink -f "$(command -v npm)")" ci "$@"
