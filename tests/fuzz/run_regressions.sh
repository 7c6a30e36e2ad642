#!/usr/bin/env bash
# Replay every saved fuzzer reproducer, tests/fuzz/regressions/<target>/*,
# through its harness (built into build/fuzz/ with clang, libFuzzer, ASan
# and UBSan when missing or older than the sources).  Fast, for CI.
#
#   tests/fuzz/run_regressions.sh              every target
#   tests/fuzz/run_regressions.sh uri rules    only these
#
# One line per reproducer, then "N passed, N failed" (one test per file).
# Exit status 1 on any failure or build error.

set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/fuzz/lib.sh"

targets=()
if [ $# -gt 0 ]; then
    for a in "$@"; do
        t=$(fuzz_target_name "$a") || { echo "0 passed, 1 failed"; exit 1; }
        targets+=("$t")
    done
else
    targets=("${FUZZ_TARGETS[@]}")
fi

# only the harnesses that have something to replay
need=()
for t in "${targets[@]}"; do
    d=$root/tests/fuzz/regressions/$t
    [ -d "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ] && need+=("$t")
done

if [ ${#need[@]} -eq 0 ]; then
    echo "no regression files under tests/fuzz/regressions/"
    echo "0 passed, 0 failed"
    exit 0
fi

if ! fuzz_build "${need[@]}"; then
    echo "0 passed, 1 failed"
    exit 1
fi

status=0
for t in "${need[@]}"; do
    fuzz_replay "$t" || status=1
done

[ "$FUZZ_REG_FAILED" -gt 0 ] && echo "(details: build/fuzz/regressions-*.log)"
echo "$FUZZ_REG_PASSED passed, $FUZZ_REG_FAILED failed"
exit $status
