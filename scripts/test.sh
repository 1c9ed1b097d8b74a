#!/usr/bin/env bash
# make test: every test binary (--no-fail-fast: one failure does not hide
# the others): the library's and the binary's unit tests, the one
# integration test binary `it` (tests/it/) and the doc tests; then clippy and
# rustfmt, then one summary line `N passed, N failed, N skipped` (skipped =
# ignored) over all of them.
# Exits non-zero when a test, a build, clippy or rustfmt failed.
set -uo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

"$CARGO" test --locked --no-fail-fast 2>&1 | tee "$log"
tests=${PIPESTATUS[0]}
"$CARGO" clippy --locked --all-targets -- -D warnings
clippy=$?
"$CARGO" fmt --all -- --check
fmt=$?

[ "$clippy" -ne 0 ] && echo "clippy failed"
[ "$fmt" -ne 0 ] && echo "rustfmt: files are not formatted (cargo fmt --all)"
scripts/test-summary.sh "$log" "$tests"
summary=$?
if [ "$tests" -ne 0 ] || [ "$summary" -ne 0 ] || [ "$clippy" -ne 0 ] || [ "$fmt" -ne 0 ]; then
  exit 1
fi
