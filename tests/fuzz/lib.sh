# Shared helpers of auto/fuzz and tests/fuzz/run_regressions.sh (sourced,
# not run).  Expects $root (the repository) to be set.

FUZZ_TARGETS=(fuzz_cookie fuzz_uri fuzz_rules fuzz_json_body fuzz_log
              fuzz_engine)
FUZZ_OUT=${FUZZ_OUT:-$root/build/fuzz}

# UBSan stops at the first report (the harnesses are also built with
# -fno-sanitize-recover=undefined); reports carry a stack trace
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"


# "uri", "fuzz_uri", "tests/fuzz/fuzz_uri.c" -> "fuzz_uri"; 1 if unknown
fuzz_target_name() {
    local t=${1##*/}
    t=${t%.c}
    t=fuzz_${t#fuzz_}
    local k
    for k in "${FUZZ_TARGETS[@]}"; do
        [ "$k" = "$t" ] && { echo "$t"; return 0; }
    done
    echo "unknown fuzz target: $1 (one of: ${FUZZ_TARGETS[*]#fuzz_})" >&2
    return 1
}


# a clang whose libFuzzer links; installs Debian's if there is none
fuzz_find_cc() {
    local cc probe
    probe=$(mktemp -d)
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void) d; (void) n; return 0; }\n' \
        >"$probe/p.c"

    for attempt in 1 2; do
        for cc in ${CC_FUZZ:-} clang clang-16 clang-15 clang-14; do
            command -v "$cc" >/dev/null 2>&1 || continue
            if "$cc" -fsanitize=fuzzer,address,undefined "$probe/p.c" \
                   -o "$probe/p" >/dev/null 2>&1
            then
                rm -rf "$probe"
                FUZZ_CC=$cc
                return 0
            fi
        done

        [ "$attempt" = 2 ] && break
        echo "fuzz: no clang with libFuzzer; installing clang" >&2
        if [ -f "$root/auto/lib.sh" ]; then
            . "$root/auto/lib.sh"
            eg_need_packages clang libclang-rt-14-dev libpcre2-dev || break
        else
            break
        fi
        # the package may be there and the runtime missing
        dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null \
            | grep -q "ok installed" \
            || eg_need_packages libclang-rt-14-dev || break
    done

    rm -rf "$probe"
    echo "fuzz: no clang that links -fsanitize=fuzzer (apt-get install" \
         "clang libclang-rt-14-dev)" >&2
    return 1
}


# build the given targets into $FUZZ_OUT/ when a source is newer
fuzz_build() {
    local t bin src newer rc=0
    fuzz_find_cc || return 1

    if [ ! -f /usr/include/pcre2.h ] && [ -f "$root/auto/lib.sh" ]; then
        . "$root/auto/lib.sh"
        eg_need_packages libpcre2-dev || return 1
    fi

    mkdir -p "$FUZZ_OUT"

    for t in "$@"; do
        bin=$FUZZ_OUT/$t
        src=$root/tests/fuzz/$t.c
        newer=1

        if [ -x "$bin" ]; then
            newer=0
            for f in "$src" "$root"/tests/fuzz/*.h "$root"/module/eg_*.c \
                     "$root"/module/eg_*.h
            do
                [ "$f" -nt "$bin" ] && { newer=1; break; }
            done
        fi

        [ "$newer" = 0 ] && continue

        echo "fuzz: building $t" >&2
        if ! "$FUZZ_CC" -g -O1 -fsanitize=fuzzer,address,undefined \
                 -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
                 -std=gnu99 -D_GNU_SOURCE -Wall -Wextra \
                 -DEG_RULES_DIR="\"$root/rules\"" \
                 -I "$root/module" -I "$root/tests/fuzz" \
                 "$src" "$root"/module/eg_*.c -lpcre2-8 -o "$bin.tmp"
        then
            echo "fuzz: $t: build failed" >&2
            rm -f "$bin.tmp"
            rc=1
            continue
        fi
        mv "$bin.tmp" "$bin"
    done

    return $rc
}


# replay tests/fuzz/regressions/<target>/* through the harness, one file
# at a time; adds to FUZZ_REG_PASSED / FUZZ_REG_FAILED, returns 1 on any
# failure
FUZZ_REG_PASSED=0
FUZZ_REG_FAILED=0

fuzz_replay() {
    local t=$1 dir=$root/tests/fuzz/regressions/$1 f log rc=0 out
    [ -d "$dir" ] || return 0
    log=$FUZZ_OUT/regressions-$t.log
    : >"$log"

    for f in "$dir"/*; do
        [ -f "$f" ] || continue
        case $f in *.md|*.txt) continue ;; esac

        # never with the known bugs skipped: a reproducer must reproduce
        if out=$(cd "$root" && env -u EG_FUZZ_SKIP_KNOWN timeout 120 \
                     "$FUZZ_OUT/$t" -timeout=10 -rss_limit_mb=2048 "$f" 2>&1)
        then
            FUZZ_REG_PASSED=$((FUZZ_REG_PASSED + 1))
            echo "regression $t/${f##*/}: ok"
        else
            FUZZ_REG_FAILED=$((FUZZ_REG_FAILED + 1))
            rc=1
            echo "regression $t/${f##*/}: FAILED"
            {
                echo "=== $f"
                echo "$out"
            } >>"$log"
            echo "$out" | grep -E 'ERROR: |invariant failed|runtime error|^SUMMARY' \
                | head -3 | sed 's/^/    /'
        fi
    done

    return $rc
}
