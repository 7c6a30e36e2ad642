#!/usr/bin/env bash
# The real-nginx suites with nginx under valgrind memcheck, then zero
# memcheck errors asserted over every nginx process (master, workers,
# nginx -t, nginx -s).  Also: auto/test-sanitized --valgrind.
#
#   tests/valgrind/run.sh            test_nginx.py and test_malformed_rules.py
#
# nginx runs through tests/valgrind/nginx-valgrind (EG_NGINX); the plain
# module (auto/build, -O2 -g).  Suppressions: tests/valgrind/nginx.supp,
# false positives of PCRE2's JIT code only.  Leak checking is off, as for
# ASan: nginx does not free its cycle at exit.  Reports:
# build/valgrind/vg.<pid>.log.  Ends with "N passed, N failed".

set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/auto/lib.sh"
cd "$root"

eg_need_packages nginx nginx-dev libpcre2-dev libssl-dev zlib1g-dev gcc \
    make python3 openssl valgrind || exit 1

if [ -z "${EG_MODULE:-}" ]; then
    auto/build || { echo "0 passed, 1 failed"; exit 1; }
fi

logs="$root/build/valgrind"
rm -rf "$logs"
mkdir -p "$logs"
chmod 1777 "$logs"      # a case of test_malformed_rules runs nginx as nobody

export EG_VALGRIND_LOGS="$logs"
export EG_VALGRIND_NGINX="${EG_NGINX:-/usr/sbin/nginx}"
export EG_NGINX="$root/tests/valgrind/nginx-valgrind"
export EG_TIME_SCALE=5

total_pass=0
total_fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

stage() {
    local name=$1; shift
    echo "== $name (under valgrind): $*"
    "$@" 2>&1 | tee "$out"
    local rc=${PIPESTATUS[0]}
    local line p f
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
    if [ -z "$line" ]; then
        echo "== $name: no summary line (exit $rc)"
        total_fail=$((total_fail + 1))
        return
    fi
    p=$(echo "$line" | awk '{print $1}')
    f=$(echo "$line" | awk '{print $3}')
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}

stage nginx python3 tests/nginx/test_nginx.py
stage malformed-rules python3 tests/nginx/test_malformed_rules.py

echo
nlogs=$(ls "$logs" | grep -c '^vg\.' || true)
# every error valgrind did not suppress prints a suppression block
errors=$(cat "$logs"/vg.*.log 2>/dev/null | grep -c '<insert_a_suppression_name_here>' || true)
suppressed=$(grep -ho 'suppressed: [0-9]* from' "$logs"/vg.*.log 2>/dev/null \
    | awk '{s += $2} END {print s + 0}')
nosummary=$(grep -L 'ERROR SUMMARY' "$logs"/vg.*.log 2>/dev/null | wc -l)
echo "valgrind: $nlogs nginx processes, $errors memcheck errors," \
     "$suppressed suppressed (PCRE2 JIT), $nosummary logs without a summary" \
     "(processes killed by a test's timeout)"
if [ "$nlogs" -gt 0 ] && [ "$errors" = 0 ]; then
    echo "ok   zero memcheck errors in $nlogs nginx processes"
    total_pass=$((total_pass + 1))
else
    echo "FAIL memcheck errors (or no valgrind log at all):"
    grep -l '<insert_a_suppression_name_here>' "$logs"/vg.*.log | head -5 \
        | while read -r f; do echo "---- $f"; sed -n '1,60p' "$f"; done
    total_fail=$((total_fail + 1))
fi

echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
