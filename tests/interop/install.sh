#!/usr/bin/env bash
# Installs tests/interop/node_modules (apache-arrow and its dependencies) exactly as
# package-lock.json pins them: `npm ci`, integrity-checked, no install scripts. Quick when the
# installed tree already matches the lockfile. scripts/bootstrap calls it; the interop tests
# need it.
set -euo pipefail
cd "$(dirname "$0")"

stamp=node_modules/.bridge-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f node_modules/apache-arrow/package.json && -f node_modules/@grpc/grpc-js/package.json ]]; then
  exit 0
fi
echo "interop: installing apache-arrow from npm (lockfile)"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
