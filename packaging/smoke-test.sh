#!/usr/bin/env bash
# Build the one-file binary and check that it really works: version, migrate, doctor (plugins found
# through entry points), user create + import, serve (/readyz, idle RSS, a Strava webhook fetched
# from a local fake and stored), serve --no-worker + worker, and backfill.
#
#   packaging/smoke-test.sh              build, then test dist/trainer
#   SKIP_BUILD=1 packaging/smoke-test.sh test the existing dist/trainer
#   QUICK=1 ...                          stop after the first processed webhook
#
# Needs the repository's development install (pip install -e '.[test]'): the driver uses the trainer
# library and tests/fakes/strava.py. Prints the figures (binary size, cold start, idle RSS) as JSON.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    "$ROOT/packaging/build-binary.sh"
fi
args=(--binary "$ROOT/dist/trainer")
if [[ "${QUICK:-0}" == 1 ]]; then args+=(--quick); fi
exec "$PYTHON" "$ROOT/packaging/smoke_test.py" "${args[@]}"
