#!/usr/bin/env bash
# make bench: certplane against a local OpenBao, side by side with the way
# users do it today (one `bao` command per object from a shell script).
#
#   scripts/bench.sh [ROLES] [MOUNTS] [--strict]
#
# Defaults: 1,000 roles over 20 mounts (env BENCH_ROLES / BENCH_MOUNTS also
# work). Uses target/release/certplane (override with CERTPLANE_BIN) and the
# `bao` on PATH (override with BAO). Everything listens on 127.0.0.1 only.
# --strict (or BENCH_STRICT=1): exit 3 when a target is missed.
# The measurements themselves are in scripts/bench/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/bench/bench.py "$@"
