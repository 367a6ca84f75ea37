#!/usr/bin/env bash
# The targets' checks, one entry each; each installs what it needs (Debian packages, Rust
# targets) and is idempotent. Exit status nonzero on any failure.
#
#   targets/ci.sh firmware      Cortex-M4 example in qemu-system-arm (mps2-an386): engine ->
#                               NOR-flash spool -> replay, digests checked against the host
#   targets/ci.sh openwrt       procd init script and UCI config (test/run.sh under sh and
#                               BusyBox ash), the feed Makefile against a stand-in SDK
#   targets/ci.sh rpi-aarch64   cross build, every testdata capture under qemu-aarch64 (also
#                               shipped to a one-node Garage and exported back: ./x deps
#                               installs garage; without it a skip, under CI a failure), .deb
#   targets/ci.sh rpi-armv7     the same for 32-bit armhf
#   targets/ci.sh mipsel        little-endian MIPS router build (nightly -Z build-std), every
#                               testdata capture, spool and shipping round trip under qemu-mipsel
#   targets/ci.sh mips          the same for big-endian MIPS, libpcap built from Debian's
#                               source package and linked statically; under qemu-mips
#   targets/ci.sh sizes         stripped sizes of the field builds against the 1 MiB budget
#   targets/ci.sh systemd       systemd-analyze verify/security of the unit, the man page
#   targets/ci.sh all           all of the above; a summary with the time of each
#
# The cross builds use the main workspace's target dir (CARGO_TARGET_DIR if set), so they
# share what a workspace build already compiled; the firmware has its own (targets/firmware).
set -euo pipefail
TARGETS=$(cd "$(dirname "$0")" && pwd)
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# apt_install, rust_target, rust_nightly: the one installer of x and the targets' scripts.
# shellcheck source=../scripts/deps.sh
source "$TARGETS/../scripts/deps.sh"

# A size tool for ARM ELF files: llvm-size (LLVM), else binutils' arm-none-eabi-size.
size_tool() {
    local t
    for t in llvm-size $(compgen -c llvm-size- 2>/dev/null | sort -V | tail -n 1) arm-none-eabi-size; do
        command -v "$t" >/dev/null 2>&1 && { echo "$t"; return; }
    done
    apt_install binutils-arm-none-eabi
    echo arm-none-eabi-size
}

firmware() {
    apt_install qemu-system-arm
    rust_target thumbv7em-none-eabihf
    # Decodes the defmt log (once per machine: about 4 minutes to build). The exit status is
    # the test either way; without it the log is printed raw. TARGETS_NO_DEFMT_PRINT=1 skips.
    if ! command -v defmt-print >/dev/null && [ ! -x "$HOME/.cargo/bin/defmt-print" ] &&
        [ "${TARGETS_NO_DEFMT_PRINT:-0}" != 1 ]; then
        cargo install --locked --quiet defmt-print
    fi
    cd "$TARGETS/firmware"
    # Its own target dir, whatever CARGO_TARGET_DIR says for the workspace builds.
    export CARGO_TARGET_DIR="$TARGETS/firmware/target"
    local image=$CARGO_TARGET_DIR/thumbv7em-none-eabihf/release/tcpflow-firmware status=0

    echo "== firmware: fmt, clippy"
    cargo fmt --check
    cargo clippy --release --quiet -- -D warnings

    echo "== firmware: a spoiled expected digest must fail (exit 1)"
    FW_TAMPER=1 cargo build --release --quiet
    ./qemu-run.sh "$image" >/tmp/tcpflow-fw-tamper.log 2>&1 || status=$?
    if [ "$status" -ne 1 ]; then
        cat /tmp/tcpflow-fw-tamper.log
        echo "firmware: expected exit 1 with a spoiled digest, got $status"
        return 1
    fi
    grep -E "ERROR|exit" /tmp/tcpflow-fw-tamper.log | head -n 3

    echo "== firmware: every capture through engine, NOR spool and replay (exit 0)"
    cargo build --release --quiet
    ./qemu-run.sh "$image"
    echo "== firmware image sizes"
    "$(size_tool)" "$image"
}

openwrt() {
    apt_install busybox make
    echo "== openwrt: init script under sh ($(readlink -f /bin/sh))"
    sh "$TARGETS/openwrt/test/run.sh"
    echo "== openwrt: init script under BusyBox ash (OpenWrt's shell)"
    busybox sh "$TARGETS/openwrt/test/run.sh"
    echo "== openwrt: feed Makefile against a stand-in SDK"
    sh "$TARGETS/openwrt/test/makefile.sh"
}

rpi() { # aarch64|armv7
    "$TARGETS/rpi/build.sh" "$1"
    "$TARGETS/rpi/test.sh" "$1"
    "$TARGETS/rpi/package.sh" "$1"
}

mips() { # mipsel|mips
    "$TARGETS/rpi/build.sh" "$1"
    "$TARGETS/rpi/test.sh" "$1"
}

# The field builds' stripped sizes (built by the entries above; built here if missing)
# against the budget: at most 1 MiB for the router (mipsel) and the Pi (aarch64). The
# big-endian MIPS build carries libpcap inside (static; the others load libpcap.so, 343,540
# bytes on Debian mipsel): 256 KiB more for it (it takes about 200,000 bytes of code and
# data, mips less mipsel; the file grows in steps of 64 KiB, the segment alignment).
sizes() {
    local budget=$((1024 * 1024)) arch bin size limit failed=0
    for arch in mipsel mips aarch64 armv7; do
        bin=$(
            # shellcheck source=rpi/env.sh
            source "$TARGETS/rpi/env.sh"
            rpi_arch "$arch"
            [ -x "$BIN" ] || "$TARGETS/rpi/build.sh" "$arch" >/dev/null
            echo "$BIN"
        )
        size=$(stat -c %s "$bin")
        printf '%-8s %9d bytes stripped (%s)\n' "$arch" "$size" "$bin"
        limit=$budget
        [ "$arch" != mips ] || limit=$((budget + 256 * 1024))
        if [ "$arch" != armv7 ] && [ "$size" -gt "$limit" ]; then
            echo "$arch: over the budget of $limit bytes"
            failed=1
        fi
    done
    [ "$failed" -eq 0 ]
}

# A check that cannot run here: under CI (CI set, as .ci/run sets it) a failure, by hand a
# skip that says so (the rule of the Rust tests, tcpflow_tests::cannot_run).
cannot_run() {
    if [ -n "${CI:-}" ]; then
        echo "FAIL (cannot run its check under CI): $*"
        return 1
    fi
    echo "SKIPPED, nothing checked: $*"
}

systemd_checks() {
    local unit="$TARGETS/rpi/tcpflow.service" out level
    # systemd-analyze and groff (installs them where they are missing, as on a slim image).
    apt_install systemd groff-base
    echo "== systemd: the environment file is plain KEY=value shell"
    (
        set -a
        # shellcheck source=rpi/tcpflow.default
        . "$TARGETS/rpi/tcpflow.default"
        for v in INTERFACE SPOOL SPOOL_SIZE MEMORY; do
            [ -n "${!v:-}" ] || { echo "tcpflow.default: $v is empty"; exit 1; }
        done
        [ "${FILTER+set}" = set ] || { echo "tcpflow.default: no FILTER"; exit 1; }
    )
    if command -v systemd-analyze >/dev/null 2>&1; then
        echo "== systemd: systemd-analyze verify (any message fails)"
        out=$(systemd-analyze verify "$unit" 2>&1) || { echo "$out"; return 1; }
        if [ -n "$out" ]; then
            echo "$out"
            return 1
        fi
        echo "clean"
        echo "== systemd: systemd-analyze security (offline)"
        if out=$(systemd-analyze security --offline=yes "$unit" 2>&1); then
            grep -F "Overall exposure level" <<<"$out"
            level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
            # 10 is fully exposed; a capture needs packet sockets and CAP_NET_RAW, so not 0.
            if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l > 3.0) }'; then
                echo "exposure $level is above 3.0"
                return 1
            fi
        else
            cannot_run "systemd-analyze security --offline is not supported here" || return 1
        fi
    else
        cannot_run "systemd-analyze not available: unit not verified" || return 1
    fi
    if command -v groff >/dev/null 2>&1; then
        echo "== man page: groff -man -ww (any warning fails)"
        out=$(groff -man -ww -z "$TARGETS/rpi/tcpflow.1" 2>&1)
        [ -z "$out" ] || { echo "$out"; return 1; }
        echo "clean"
    else
        cannot_run "groff not available: man page not checked" || return 1
    fi
}

run_one() {
    case "$1" in
    firmware) firmware ;;
    openwrt) openwrt ;;
    rpi-aarch64) rpi aarch64 ;;
    rpi-armv7) rpi armv7 ;;
    mipsel) mips mipsel ;;
    mips) mips mips ;;
    sizes) sizes ;;
    systemd) systemd_checks ;;
    *)
        echo "usage: targets/ci.sh firmware|openwrt|rpi-aarch64|rpi-armv7|mipsel|mips|sizes|systemd|all" >&2
        return 2
        ;;
    esac
}

# Runs one entry in a subshell outside any condition (so that `set -e` holds inside it);
# sets STATUS and SECS.
run_entry() {
    local start
    start=$(date +%s)
    set +e
    (
        set -e
        run_one "$1"
    )
    STATUS=$?
    set -e
    SECS=$(($(date +%s) - start))
}

all() {
    local entries=(firmware openwrt systemd rpi-aarch64 rpi-armv7 mipsel mips sizes) e
    local passed=0 failed=0 summary=""
    for e in "${entries[@]}"; do
        echo
        echo "######## $e"
        run_entry "$e"
        if [ "$STATUS" -eq 0 ]; then
            passed=$((passed + 1))
            summary+=$(printf '\n  ok    %-12s %4ss' "$e" "$SECS")
        else
            failed=$((failed + 1))
            summary+=$(printf '\n  FAIL  %-12s %4ss (exit %s)' "$e" "$SECS" "$STATUS")
        fi
    done
    echo
    echo "targets:$summary"
    echo "targets: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

case "${1:-}" in
all) all ;;
firmware | openwrt | rpi-aarch64 | rpi-armv7 | mipsel | mips | sizes | systemd)
    run_entry "$1"
    if [ "$STATUS" -eq 0 ]; then
        echo "targets/ci.sh $1: ok in ${SECS}s"
    else
        echo "targets/ci.sh $1: FAILED (exit $STATUS) after ${SECS}s"
        exit "$STATUS"
    fi
    ;;
"" | -h | --help | help)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    ;;
*)
    run_one "$1"
    ;;
esac
