#!/usr/bin/env bash
# Sums the `test result:` lines of a `cargo test` log into one line:
#   N passed, N failed, N skipped
# (skipped = ignored). With the exit code of `cargo test` as the second
# argument, a failure that left no result line (a test binary that did not
# build or crashed) is said on the line before, and the script exits 1
# whenever something failed.
set -uo pipefail
log=${1:?usage: test-summary.sh LOG [CARGO_TEST_EXIT_CODE]}
code=${2:-0}
read -r passed failed ignored < <(
  sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored;.*/\1 \2 \3/p' "$log" |
    awk '{ p += $1; f += $2; i += $3 } END { print p + 0, f + 0, i + 0 }'
)
if [ "$code" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "cargo test failed (exit $code) without a failed test: a test binary did not build or did not finish; see above"
fi
echo "$passed passed, $failed failed, $ignored skipped"
[ "$code" -eq 0 ] && [ "$failed" -eq 0 ]
