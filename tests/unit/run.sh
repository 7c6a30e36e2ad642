#!/usr/bin/env bash
# Build and run the engine unit tests.
#
#   tests/unit/run.sh             every tests/unit/test_*.c
#   tests/unit/run.sh cookie uri  only test_cookie.c and test_uri.c
#   CC=clang tests/unit/run.sh    with another compiler
#
# Each test is built with AddressSanitizer and UBSan (or without them when
# the compiler has no sanitizer runtime) into build/unit/ and run from the
# repository root.  A test that needs link flags (test_oom.c wraps malloc)
# names them in a " * ldflags: ..." line of its opening comment.
#
# The last line is the sum of the per-binary summaries, "N passed, N
# failed"; the exit status is non-zero on any failure, any build error, or
# a binary that did not print its summary.

set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

cc=${CC:-cc}
out=build/unit
mkdir -p "$out"

cflags="-std=c99 -D_GNU_SOURCE -Wall -Wextra -Werror -g -O1"
san="-fsanitize=address,undefined -fno-omit-frame-pointer"

printf 'int main(void) { return 0; }\n' >"$out/probe.c"
if ! "$cc" $san "$out/probe.c" -o "$out/probe" >/dev/null 2>&1 \
   || ! "$out/probe" >/dev/null 2>&1
then
    echo "note: $cc has no sanitizer runtime, building without" >&2
    san=""
fi
rm -f "$out/probe.c" "$out/probe"

# UBSan only reports by default: make undefined behaviour fail the test
ubsan="halt_on_error=1:print_stacktrace=1"
export UBSAN_OPTIONS="$ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

if [ $# -gt 0 ]; then
    tests=()
    for t in "$@"; do
        tests+=("tests/unit/test_${t#test_}")
        tests[-1]="${tests[-1]%.c}.c"
    done
else
    tests=(tests/unit/test_*.c)
fi

passed=0
failed=0
status=0

for src in "${tests[@]}"; do
    name=$(basename "$src" .c)
    bin="$out/$name"

    echo "== $name"

    # a test may ask for link flags in a " * ldflags: ..." comment line
    ldflags=$(sed -n 's/^ \* ldflags: *//p' "$src" | head -n 1)

    if ! "$cc" $cflags $san -I module -I tests/unit "$src" module/eg_*.c \
         -lpcre2-8 $ldflags -o "$bin"
    then
        echo "$name: build failed"
        failed=$((failed + 1))
        status=1
        continue
    fi

    log="$out/$name.log"
    "$bin" >"$log" 2>&1
    rc=$?
    cat "$log"

    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)

    if [ -z "$summary" ]; then
        echo "$name: no summary line (exit status $rc)"
        failed=$((failed + 1))
        status=1
        continue
    fi

    p=${summary%% passed*}
    f=${summary#*passed, }
    f=${f%% failed}
    passed=$((passed + p))
    failed=$((failed + f))

    if [ "$rc" -ne 0 ]; then
        status=1
        if [ "$f" -eq 0 ]; then
            echo "$name: exit status $rc without a failed check"
            failed=$((failed + 1))
        fi
    fi
done

echo "$passed passed, $failed failed"

[ "$failed" -eq 0 ] || status=1
exit $status
