#!/usr/bin/env bash
# Runs the cross-built tcpflow under qemu-user on every testdata capture and compares its
# output folder with expected/ byte for byte (report files aside): ./test.sh aarch64|armv7.
# Each capture is checked twice: written directly (-r FILE -o DIR), and through the spool
# (-r FILE --spool S, then --spool-export S -o DIR), the way a Pi in the field runs it.
# Builds the binary first if it is missing. Last line: "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/env.sh"
rpi_arch "${1:-}"
if [ ! -x "$BIN" ]; then
    "$(dirname "$0")/build.sh" "$1" >/dev/null || exit 1
fi
command -v "$QEMU" >/dev/null || { echo "$QEMU missing (apt-get install qemu-user-static)"; exit 1; }
rpi_env

run() {
    "$QEMU" -L "/usr/$GNU" "${QEMU_ENV[@]}" "$BIN" "$@"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# Byte-for-byte: the same file names, the same contents.
same() { # EXPECTED_DIR OUT_DIR
    diff -r -q -x report.xml -x report.json "$1" "$2" >"$work/diff" 2>&1
}

echo "== $TRIPLE under $QEMU: $(run --version 2>&1 | head -n 1)"
for input in "$ROOT"/testdata/*/input.pcap*; do
    dir=$(dirname "$input")
    name=$(basename "$dir")
    expected=$dir/expected
    [ -d "$expected" ] || continue

    out=$work/$name/direct
    if run -r "$input" -o "$out" -q >"$work/log" 2>&1 && same "$expected" "$out"; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
        sed 's/^/     /' "$work/log" "$work/diff" 2>/dev/null | head -n 20
    fi

    spool=$work/$name/flows.spool
    out=$work/$name/spooled
    if run -r "$input" --spool "$spool" --spool-size 1M -q >"$work/log" 2>&1 &&
        run --spool-export "$spool" -o "$out" -q >>"$work/log" 2>&1 &&
        same "$expected" "$out"; then
        passed=$((passed + 1))
        echo "ok   $name (spool)"
    else
        failed=$((failed + 1))
        echo "FAIL $name (spool)"
        sed 's/^/     /' "$work/log" "$work/diff" 2>/dev/null | head -n 20
    fi
done
# A compressed capture: the field builds have no decompressor (cargo features), and say so.
gz=$work/basic.pcap.gz
gzip -c "$ROOT/testdata/basic/input.pcap" >"$gz"
if run -r "$gz" -o "$work/gz" -q >"$work/log" 2>&1; then
    if [ -n "${FEATURES:-}" ]; then
        passed=$((passed + 1))
        echo "ok   compressed input read (features $FEATURES)"
    else
        failed=$((failed + 1))
        echo "FAIL compressed input read by a build without decompressors"
    fi
elif grep -q "this build has no gzip decompressor" "$work/log"; then
    passed=$((passed + 1))
    echo "ok   compressed input refused: $(head -n 1 "$work/log")"
else
    failed=$((failed + 1))
    echo "FAIL compressed input"
    sed 's/^/     /' "$work/log" | head -n 5
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
