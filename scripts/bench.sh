#!/usr/bin/env bash
# make bench: certplane against a local OpenBao and a scripted API server,
# side by side with raw native requests and with the way users do it today
# (one `bao` command per object from a shell script).
#
#   scripts/bench.sh [--sizes 1000x20,10000x200] [--certs 1000] [--run-intervals 100]
#                    [--kubeconfig FILE [--kube-context NAME]]
#                    [--no-script] [--strict] [--keep] [ROLES [MOUNTS]]
#
# Defaults: 1,000 roles over 20 mounts, then 10,000 over 200 (env
# BENCH_SIZES); ROLES [MOUNTS] runs one size only. Uses
# target/release/certplane (override with CERTPLANE_BIN), builds
# benches/scale (the raw clients and the scripted API server) and uses the
# `bao` on PATH (override with BAO). Everything listens on 127.0.0.1 only;
# --kubeconfig (env BENCH_KUBECONFIG) also runs the cluster half against
# that kubeconfig's API server, in a namespace of its own deleted after.
# --strict (or BENCH_STRICT=1, or `make bench STRICT=1`): exit 3 when a
# target is missed. The measurements themselves are in scripts/bench/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/bench/bench.py "$@"
