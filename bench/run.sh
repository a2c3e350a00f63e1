#!/usr/bin/env bash
# Runs the side-by-side harness (cmd/compare) from the bench module; flags
# are passed on, e.g. ./bench/run.sh -rounds 5 -scenarios 1x1,50x4 -v
set -euo pipefail
cd "$(dirname "$0")"
exec go run ./cmd/compare "$@"
