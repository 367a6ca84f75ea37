#!/usr/bin/env bash
# Builds and runs every fuzz target for SECONDS each (default 60), prints the executions per
# target, and exits nonzero if any target crashed (a panic, a contract assertion, a timeout
# of one input, or running out of memory).
#
#   fuzz/run.sh [SECONDS]
#
# Environment:
#   FUZZ_TARGETS    targets to run (default: all seven)
#   FUZZ_SANITIZER  cargo-fuzz sanitizer (default: none; the core has no unsafe code, and
#                   without ASan a target runs about twice as many inputs)
#   FUZZ_JOBS       libFuzzer -fork jobs per target (default 1)
#
# Installs the nightly toolchain and cargo-fuzz when they are missing (scripts/deps.sh).
# Seeds are regenerated each run from testdata/ (cut into frames) into target/seeds/; what
# the fuzzer learns is kept in corpus/<target>/ (not committed). A crash leaves its input in
# artifacts/<target>/: reproduce with `cargo +nightly fuzz run <target> <file>`, then copy
# the file to regressions/<target>/ (replayed by `cargo test` in fuzz/) once it is fixed.
set -euo pipefail

secs="${1:-60}"
case "$secs" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
targets="${FUZZ_TARGETS:-decode defrag engine spool_reader capfile spool_export http}"
sanitizer="${FUZZ_SANITIZER:-none}"
jobs="${FUZZ_JOBS:-1}"
toolchain="+nightly"

# shellcheck source=../scripts/deps.sh
source "$here/../scripts/deps.sh"
cargo_fuzz

echo "== seeds"
seeds="$here/target/seeds"
rm -rf "$seeds"
cargo "$toolchain" run --quiet --release --example seeds -- "$here/../testdata" "$seeds"

echo "== build ($sanitizer sanitizer, debug assertions and overflow checks on)"
cargo "$toolchain" fuzz build --sanitizer "$sanitizer" --debug-assertions

declare -A execs status
failed=0
for t in $targets; do
    echo "== $t: ${secs}s"
    mkdir -p "corpus/$t" "artifacts/$t" "regressions/$t"
    log="$here/target/fuzz-$t.log"
    args=(-max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="$here/artifacts/$t/")
    if [ "$jobs" -gt 1 ]; then
        args+=(-fork="$jobs")
    fi
    set +e
    cargo "$toolchain" fuzz run --sanitizer "$sanitizer" --debug-assertions "$t" \
        "corpus/$t" "$seeds/$t" "regressions/$t" -- "${args[@]}" >"$log" 2>&1
    rc=$?
    set -e
    n="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)"
    if [ -z "$n" ]; then
        # -fork prints its own totals.
        n="$(grep -o 'exec/s: [0-9]*.*' "$log" | tail -1 || true)"
    fi
    execs[$t]="${n:-?}"
    if [ "$rc" -eq 0 ]; then
        status[$t]="ok"
    else
        status[$t]="FAILED (exit $rc)"
        failed=1
        grep -E "panicked|ERROR: libFuzzer|SUMMARY|Test unit written" "$log" | head -20 || true
        echo "   full log: $log"
    fi
done

echo
echo "== executions in ${secs}s per target"
printf '%-14s %14s  %s\n' target executions status
for t in $targets; do
    printf '%-14s %14s  %s\n' "$t" "${execs[$t]}" "${status[$t]}"
done
exit "$failed"
