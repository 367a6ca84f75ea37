#!/usr/bin/env bash
# Cross-builds the tcpflow command for a Raspberry Pi: ./build.sh aarch64|armv7
# (64-bit Raspberry Pi OS / Debian arm64, or 32-bit armhf), or for a little-endian MIPS
# router: ./build.sh mipsel, or a big-endian one: ./build.sh mips. Debian multiarch (or a
# sysroot of Debian packages) provides the target's libpcap; for mips, which Debian no longer
# builds, it is compiled from Debian's source package. Installs what is missing. Prints the
# binary's path.
set -euo pipefail
source "$(dirname "$0")/env.sh"
rpi_arch "${1:-}"
rpi_deps
rpi_env
echo "== cross build for $TRIPLE (libpcap $LIBPCAP_VER from $LIBPCAP_LIBDIR)"
cd "$ROOT"
rpi_cargo_build
file "$BIN" 2>/dev/null || true
echo "$BIN"
