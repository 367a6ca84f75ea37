# Sourced by build.sh, test.sh and package.sh: what each Raspberry Pi architecture is called
# by Rust, Debian and GNU, and the cross-build environment.
# shellcheck shell=bash

rpi_arch() {
    case "${1:-}" in
    aarch64 | arm64)
        TRIPLE=aarch64-unknown-linux-gnu
        DEB_ARCH=arm64
        GNU=aarch64-linux-gnu
        QEMU=qemu-aarch64-static
        ;;
    armv7 | armhf)
        TRIPLE=armv7-unknown-linux-gnueabihf
        DEB_ARCH=armhf
        GNU=arm-linux-gnueabihf
        QEMU=qemu-arm-static
        ;;
    # Little-endian 32-bit MIPS: most OpenWrt routers' CPUs (ramips, ath79 are big-endian
    # MIPS, which Debian 12 has no libpcap for). A tier-3 Rust target: std is built from
    # source with nightly (-Z build-std); Debian's multiarch index for it is out of step
    # with amd64's, so its libpcap always comes from a sysroot.
    mipsel)
        TRIPLE=mipsel-unknown-linux-gnu
        DEB_ARCH=mipsel
        GNU=mipsel-linux-gnu
        QEMU=qemu-mipsel-static
        TIER3=1
        RPI_SYSROOT=1
        ;;
    *)
        echo "usage: $0 aarch64|armv7|mipsel" >&2
        exit 2
        ;;
    esac
    TIER3=${TIER3:-0}
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
    # The field builds use the size-optimised `router` profile (Cargo.toml); PROFILE=release
    # for a faster, larger binary.
    PROFILE=${PROFILE:-router}
    BIN=$TARGET_DIR/$TRIPLE/$PROFILE/tcpflow
    SYSROOT=$TARGET_DIR/$TRIPLE/sysroot
}

# Installs what the cross build needs (Debian multiarch), only what is missing.
#
# Fallback: when the multiarch install fails (it needs the target's index of every suite the
# host's packages come from, at the same versions; a mirror in the middle of a sync breaks
# that) or RPI_SYSROOT=1, the target's libpcap and its run-time dependencies are downloaded
# (`apt-get download`) and unpacked into a sysroot under the target dir instead
# ($TARGET_DIR/$TRIPLE/sysroot; later runs use it again: remove it to retry multiarch).
# RPI_SYSROOT=0 never falls back.
rpi_deps() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    apt_missing "gcc-$GNU" "libc6-dev-$DEB_ARCH-cross" pkg-config qemu-user-static dpkg-dev file
    if ! dpkg --print-foreign-architectures | grep -qx "$DEB_ARCH"; then
        echo "adding the $DEB_ARCH architecture (Debian multiarch)"
        $sudo dpkg --add-architecture "$DEB_ARCH"
        APT_UPDATED=""
    fi
    # A sysroot made on an earlier run is used again (remove it to try multiarch again).
    if [ -z "${RPI_SYSROOT:-}" ] && [ -e "$SYSROOT/usr/lib/$GNU/libpcap.so" ] &&
        ! dpkg-query -W -f='${Status}' "libpcap-dev:$DEB_ARCH" 2>/dev/null |
        grep -q "install ok installed"; then
        RPI_SYSROOT=1
    fi
    if [ "${RPI_SYSROOT:-}" = 0 ]; then
        apt_missing "libpcap-dev:$DEB_ARCH"
    elif [ "${RPI_SYSROOT:-}" != 1 ] && ! apt_missing "libpcap-dev:$DEB_ARCH"; then
        echo "multiarch libpcap-dev:$DEB_ARCH could not be installed: using a sysroot instead"
        RPI_SYSROOT=1
    fi
    if [ "${RPI_SYSROOT:-0}" = 1 ]; then
        rpi_sysroot
    fi
    if [ "$TIER3" = 1 ]; then
        # No prebuilt std: nightly builds it from its source.
        rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src' ||
            rustup component add rust-src --toolchain nightly
    else
        rustup target list --installed | grep -qx "$TRIPLE" || rustup target add "$TRIPLE"
    fi
}

# Builds the command for the target in $PROFILE, without the decompressors of capture files
# (cargo features gzip, xz, bzip2: a tap captures live; FEATURES adds features back).
rpi_cargo_build() {
    local args=(--profile "$PROFILE" -p tcpflow --target "$TRIPLE" --no-default-features)
    [ -z "${FEATURES:-}" ] || args+=(--features "$FEATURES")
    if [ "$TIER3" = 1 ]; then
        # std without its backtrace printer (gimli, addr2line, a demangler: about 120 KiB
        # on MIPS); a panic still prints its message.
        cargo +nightly build -Zbuild-std=std,panic_abort -Zbuild-std-features= "${args[@]}" "$@"
    else
        cargo build "${args[@]}" "$@"
    fi
}

# apt-get update (once, retried: a mirror in the middle of a sync fails now and then; what
# was fetched is used if it still fails) and install what is missing. False if that fails.
apt_missing() {
    local sudo="" missing=() p try
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "installing: ${missing[*]}"
    if [ -z "${APT_UPDATED:-}" ]; then
        for try in 1 2 3; do
            $sudo apt-get update -qq && break
            echo "apt-get update failed (try $try of 3)"
            sleep 10
        done
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The target's libpcap (and what it needs at run time) unpacked into $SYSROOT.
rpi_sysroot() {
    [ -e "$SYSROOT/usr/lib/$GNU/libpcap.so" ] && return 0
    echo "== sysroot for $DEB_ARCH in $SYSROOT"
    local debs=$SYSROOT.debs pkgs sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # The architecture's package index (absent right after dpkg --add-architecture).
    apt-cache show "libpcap0.8-dev:$DEB_ARCH" >/dev/null 2>&1 || $sudo apt-get update -qq || true
    rm -rf "$SYSROOT" "$debs"
    mkdir -p "$SYSROOT" "$debs"
    # libpcap0.8-dev and its dependencies, less the C library (the cross toolchain's).
    pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances "libpcap0.8-dev:$DEB_ARCH" |
        grep -E "^[a-z0-9].*:$DEB_ARCH\$" | sort -u |
        grep -vE "^(libc6|libc6-dev|libc-dev-bin|linux-libc-dev|libcrypt1|libcrypt-dev|libnsl2|libnsl-dev|libtirpc3|libtirpc-dev|libtirpc-common|rpcsvc-proto|libgcc-s1|gcc-12-base):")
    # shellcheck disable=SC2086
    (cd "$debs" && apt-get download -qq $pkgs)
    local d
    for d in "$debs"/*.deb; do
        dpkg-deb -x "$d" "$SYSROOT"
    done
    rm -rf "$debs"
    [ -e "$SYSROOT/usr/lib/$GNU/libpcap.so" ]
}

# The cross environment: linker, C compiler for the -sys crates, pkg-config on the target's
# libraries only, and libpcap's folder and version for the pcap crate (its build script
# cannot load a foreign libpcap to ask, and otherwise assumes 1.9.1).
rpi_env() {
    local up libdir=/usr/lib/$GNU
    up=$(echo "$TRIPLE" | tr 'a-z-' 'A-Z_')
    export "CARGO_TARGET_${up}_LINKER=$GNU-gcc"
    export "CC_${TRIPLE//-/_}=$GNU-gcc"
    export "AR_${TRIPLE//-/_}=$GNU-ar"
    export PKG_CONFIG_ALLOW_CROSS=1
    # The C library next to the loader. qemu's -L /usr/$GNU gives the cross toolchain's
    # ld.so (libc6-$DEB_ARCH-cross, e.g. 2.36-8), but without this it loads libc.so.6 from the
    # host's multiarch /lib/$GNU (libc6:$DEB_ARCH, e.g. 2.36-9+deb12u14, installed with
    # libpcap-dev:$DEB_ARCH) when that exists: qemu falls back to host paths, and the host's
    # ld.so.cache lists them. Their private interface differs (_rtld_global grew from 4512 to
    # 4520 bytes on arm64), so libc's pthread_create looks for its locks at the wrong offsets
    # in the old loader's data and spins for ever: the first thread a run starts (the file
    # finisher, after 256 flows) hung every aarch64 run under qemu (issue 24). A Pi's loader
    # and libc come from one package and never mix like this.
    local cross_lib=/usr/$GNU/lib
    QEMU_ENV=(-E "LD_LIBRARY_PATH=$cross_lib")
    if rpi_uses_sysroot; then
        libdir=$SYSROOT/usr/lib/$GNU
        export PKG_CONFIG_SYSROOT_DIR=$SYSROOT
        export PKG_CONFIG_LIBDIR=$libdir/pkgconfig:$SYSROOT/usr/share/pkgconfig
        # libpcap's own dependencies (libdbus, ...) are found there when linking.
        export "CARGO_TARGET_${up}_RUSTFLAGS=-C link-arg=-Wl,-rpath-link,$libdir:$SYSROOT/lib/$GNU"
        QEMU_ENV=(-E "LD_LIBRARY_PATH=$cross_lib:$libdir:$SYSROOT/lib/$GNU")
    else
        export PKG_CONFIG_SYSROOT_DIR=/
        export PKG_CONFIG_LIBDIR=$libdir/pkgconfig:/usr/share/pkgconfig
    fi
    export LIBPCAP_LIBDIR=$libdir
    LIBPCAP_VER=$(pkg-config --modversion libpcap)
    export LIBPCAP_VER
    # `cargo run`/`cargo test` for the target run under qemu-user.
    export "CARGO_TARGET_${up}_RUNNER=$QEMU -L /usr/$GNU ${QEMU_ENV[*]}"
}

# True when the target's libpcap comes from the sysroot (no multiarch libpcap installed).
rpi_uses_sysroot() {
    if [ "${RPI_SYSROOT:-0}" = 1 ]; then
        return 0
    fi
    ! dpkg-query -W -f='${Status}' "libpcap-dev:$DEB_ARCH" 2>/dev/null |
        grep -q "install ok installed" && [ -e "$SYSROOT/usr/lib/$GNU/libpcap.so" ]
}
