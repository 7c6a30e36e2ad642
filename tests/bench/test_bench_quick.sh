#!/usr/bin/env bash
# Runs "auto/bench --quick" into a scratch directory and checks that it
# exits 0, prints its summary and writes a complete BENCHMARKS.md, a PNG
# chart and build/bench/results-quick.json.  Prints "N passed, N failed"; exit
# status 1 on any failure.  Takes under 2 minutes.

set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d /tmp/eg-bench-test.XXXXXX)
passed=0
failed=0

check() {       # check "what" command...
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        passed=$((passed + 1))
        echo "ok   $what"
    else
        failed=$((failed + 1))
        echo "FAIL $what"
    fi
}

start=$(date +%s)
"$root/auto/bench" --quick --out "$out" >"$out/stdout" 2>"$out/stderr"
rc=$?
took=$(( $(date +%s) - start ))

check "auto/bench --quick exits 0 (took ${took}s)" test "$rc" = 0
check "auto/bench --quick takes < 120 s" test "$took" -lt 120
check "summary printed" grep -q '^summary --quick' "$out/stdout"
check "callgrind ratios printed" \
    grep -q 'callgrind guard/bare, access_log off: mix [0-9.]*;' "$out/stdout"
check "wrk ratios printed with min/median/max" \
    grep -q 'wrk guard  *ratio to bare: min [0-9.]* median [0-9.]* max' \
    "$out/stdout"
check "short guard/bare runs printed with the target's verdict" \
    grep -qE 'wrk guard, [0-9]+ short runs  ratio to bare: min [0-9.]* median [0-9.]* max [0-9.]* .*target >= 0.97: (met|missed)' \
    "$out/stdout"
check "flood log check printed" grep -q 'flood log check' "$out/stdout"
check "growth slopes printed" grep -q 'growth json  *slope' "$out/stdout"
check "rules a request cannot match printed" \
    grep -qE 'rules  user-agent +Ir/request 0:[0-9]+ 1000:[0-9]+; [0-9.]+ Ir per added rule: (indexed|TESTED ONE BY ONE)' \
    "$out/stdout"
check "BENCHMARKS.md written" test -s "$out/BENCHMARKS.md"
for section in '## Machine' '## 1. Instructions per proxied request' \
               '## 2. Throughput' '## 3. Attack flood' '## 4. Engine' \
               '### Growth curves' '### Rules a request cannot match' \
               '## Reproduce' '| \*\*mix\*\* |' \
               '| guard against bare | runs |' \
               'modsecurity-crs' 'eomt-nginx' 'guard-detect'; do
    check "BENCHMARKS.md has '$section'" grep -q "$section" "$out/BENCHMARKS.md"
done
check "chart is a PNG" sh -c "file '$out/bench.png' | grep -q 'PNG image'"
check "build/bench/results-quick.json parses" \
    python3 -c "import json,sys; json.load(open('$root/build/bench/results-quick.json'))"
check "mix.lua present" test -s "$root/tests/bench/mix.lua"
check "repository BENCHMARKS.md untouched by --quick" \
    sh -c "! grep -q -- '(--quick)' '$root/BENCHMARKS.md' 2>/dev/null || false"

if [ "$failed" != 0 ]; then
    echo "--- output kept in $out"
    tail -20 "$out/stderr"
else
    rm -rf "$out"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
