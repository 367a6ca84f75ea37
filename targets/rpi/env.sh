# Sourced by build.sh, test.sh and package.sh: what each Raspberry Pi architecture is called
# by Rust, Debian and GNU, and the cross-build environment.
# shellcheck shell=bash

# apt_install, rust_target, rust_nightly: the one installer of x and the targets' scripts.
# shellcheck source=../../scripts/deps.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/deps.sh"

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
    # Little-endian 32-bit MIPS (OpenWrt's mipsel_24kc: ramips, e.g. MT7621). A tier-3 Rust
    # target: std is built from source with nightly (-Z build-std); Debian's multiarch index
    # for it is out of step with amd64's, so its libpcap always comes from a sysroot.
    mipsel)
        TRIPLE=mipsel-unknown-linux-gnu
        DEB_ARCH=mipsel
        GNU=mipsel-linux-gnu
        QEMU=qemu-mipsel-static
        TIER3=1
        RPI_SYSROOT=1
        ;;
    # Big-endian 32-bit MIPS (OpenWrt's mips_24kc: ath79, lantiq, realtek). Tier 3 like
    # mipsel. Debian's big-endian MIPS port ended with Debian 10: there is a cross compiler
    # and C library but no libpcap to download, so libpcap is built from Debian's source
    # package and linked statically (rpi_pcap_source).
    mips)
        TRIPLE=mips-unknown-linux-gnu
        DEB_ARCH=mips
        GNU=mips-linux-gnu
        QEMU=qemu-mips-static
        TIER3=1
        PCAP_SOURCE=1
        ;;
    *)
        echo "usage: $0 aarch64|armv7|mipsel|mips" >&2
        exit 2
        ;;
    esac
    TIER3=${TIER3:-0}
    PCAP_SOURCE=${PCAP_SOURCE:-0}
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
    apt_install "gcc-$GNU" "libc6-dev-$DEB_ARCH-cross" pkg-config qemu-user-static dpkg-dev file
    if [ "$PCAP_SOURCE" = 1 ]; then
        # No multiarch for this architecture: no dpkg --add-architecture (the archive has no
        # index for it), libpcap is compiled instead.
        rpi_pcap_source
        rpi_std
        return
    fi
    if ! dpkg --print-foreign-architectures | grep -qx "$DEB_ARCH"; then
        echo "adding the $DEB_ARCH architecture (Debian multiarch)"
        $sudo dpkg --add-architecture "$DEB_ARCH"
        apt_forget_update
    fi
    # A sysroot made on an earlier run is used again (remove it to try multiarch again).
    if [ -z "${RPI_SYSROOT:-}" ] && [ -e "$SYSROOT/usr/lib/$GNU/libpcap.so" ] &&
        ! dpkg-query -W -f='${Status}' "libpcap-dev:$DEB_ARCH" 2>/dev/null |
        grep -q "install ok installed"; then
        RPI_SYSROOT=1
    fi
    if [ "${RPI_SYSROOT:-}" = 0 ]; then
        apt_install "libpcap-dev:$DEB_ARCH"
    elif [ "${RPI_SYSROOT:-}" != 1 ] && ! apt_install "libpcap-dev:$DEB_ARCH"; then
        echo "multiarch libpcap-dev:$DEB_ARCH could not be installed: using a sysroot instead"
        RPI_SYSROOT=1
    fi
    if [ "${RPI_SYSROOT:-0}" = 1 ]; then
        rpi_sysroot
    fi
    rpi_std
}

# The target's standard library: a rustup target, or for tier 3 nightly's std source.
rpi_std() {
    if [ "$TIER3" = 1 ]; then
        # No prebuilt std: nightly builds it from its source.
        rust_nightly rust-src
    else
        rust_target "$TRIPLE"
    fi
}

# Builds the command for the target in $PROFILE, without the decompressors of capture files
# (cargo features gzip, xz, bzip2: a tap captures live; FEATURES adds features back), with
# shipping to object storage over plain http (issue #20, feature ship; https, ship-tls, does
# not fit the budget: about 1.1 MB more).
rpi_cargo_build() {
    local args=(--profile "$PROFILE" -p tcpflow --target "$TRIPLE" --no-default-features)
    local features="${FEATURES:-}"
    features="${features:+$features,}ship"
    args+=(--features "$features")
    if [ "$TIER3" = 1 ]; then
        # std without its backtrace printer (gimli, addr2line, a demangler: about 120 KiB
        # on MIPS; a panic still prints its message), and with its small algorithms
        # (optimize_for_size: sorts by merge and heap sort, still O(n log n); 14,436 bytes on
        # mipsel).
        cargo +nightly build -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size \
            "${args[@]}" "$@"
    else
        cargo build "${args[@]}" "$@"
    fi
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

# libpcap for an architecture Debian has no binary packages of: the upstream source in Debian's
# libpcap source package (the suite the host runs, so the version the other targets link),
# compiled with the cross compiler into $SYSROOT/usr/{lib/libpcap.a,include}. Later runs use
# it again while the options below are unchanged (a stamp records them; remove $SYSROOT to
# force a rebuild). Takes well under a minute.
#
# A static library: nothing to install beside the command on the router, and the linker
# keeps only the parts the command calls. Only Linux packet sockets: no D-Bus, Bluetooth,
# RDMA, netmap, DPDK, usbmon or libnl, which would each need the target's copy of another
# library (none exists here either) and which a tap on a router interface does not use.
# Debian's own patches are left out: they concern its shared library and other kernels.
rpi_pcap_source() {
    local opts=(--host="$GNU" --prefix=/usr --disable-shared --with-pcap=linux --enable-ipv6
        --disable-usb --disable-netmap --disable-bluetooth --disable-dbus --disable-rdma
        --disable-remote --without-libnl --without-dpdk --without-dag --without-septel
        --without-snf --without-turbocap)
    # -Os like the command's profile; own sections so that --gc-sections drops what is unused.
    local cflags="-Os -ffunction-sections -fdata-sections"
    local stamp="$SYSROOT/.libpcap-build" want
    want="${opts[*]} CFLAGS=$cflags"
    if [ -e "$SYSROOT/usr/lib/libpcap.a" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    # The grammar and scanner come as .y/.l sources; make for the build.
    apt_install make flex bison
    echo "== libpcap for $TRIPLE from Debian's source package, into $SYSROOT"
    local work=$SYSROOT.build suite try src
    local apt=$work/apt
    rm -rf "$SYSROOT" "$work"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$work/build" "$work/nopc"
    # deb-src only for this download: a source list, index and cache of its own, so that the
    # host's apt configuration stays as it is (and apt-get update elsewhere fetches no
    # source indexes). The index is signed with Debian's archive key, and apt checks the
    # downloaded files against it.
    suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
        "${DEBIAN_MIRROR:-http://deb.debian.org/debian} $suite main" >"$apt/sources.list"
    local aptopts=(-qq -o "Dir::Etc::sourcelist=$apt/sources.list"
        -o "Dir::Etc::sourceparts=$apt/none" -o "Dir::State::Lists=$apt/lists"
        -o "Dir::Cache=$apt/cache")
    # As root, apt drops to its sandbox user, which cannot write here (it would warn).
    [ "$(id -u)" -ne 0 ] || aptopts+=(-o APT::Sandbox::User=root)
    for try in 1 2 3; do
        apt-get "${aptopts[@]}" update && break
        echo "apt-get update (deb-src) failed (try $try of 3)"
        [ "$try" -lt 3 ] || return 1
        sleep 10
    done
    (cd "$work" && apt-get "${aptopts[@]}" source --download-only libpcap)
    tar -xzf "$work"/libpcap_*.orig.tar.gz -C "$work"
    src=$(find "$work" -maxdepth 1 -type d -name 'libpcap-*' | head -n 1)
    # PKG_CONFIG_LIBDIR: an empty folder, so that configure finds none of the host's
    # libraries (libnl, DPDK) through pkg-config (PKG_CONFIG named: there is no
    # mips-linux-gnu-pkg-config, and configure would warn about the unprefixed one).
    (
        cd "$work/build" &&
            PKG_CONFIG=pkg-config PKG_CONFIG_LIBDIR=$work/nopc "$src/configure" -q "${opts[@]}" \
                CC="$GNU-gcc" AR="$GNU-ar" RANLIB="$GNU-ranlib" CFLAGS="$cflags" &&
            make -s -j"$(nproc)" &&
            make -s install DESTDIR="$SYSROOT" >/dev/null
    ) || return 1
    rm -rf "$work"
    echo "$want" >"$stamp"
    # Cargo does not know that the command depends on libpcap.a: remove the command linked
    # with an earlier one (every profile), so that the next build links it again.
    find "$TARGET_DIR/$TRIPLE" -maxdepth 3 -type f \( -path '*/deps/tcpflow-*' -o -path '*/tcpflow' \) \
        ! -name '*.d' -delete
    [ -e "$SYSROOT/usr/lib/libpcap.a" ]
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
    if [ "$PCAP_SOURCE" = 1 ]; then
        # Only libpcap.a is in this folder (no libpcap.so anywhere the cross linker looks), so
        # the pcap crate's -lpcap links it statically; it needs no other library.
        libdir=$SYSROOT/usr/lib
        export PKG_CONFIG_SYSROOT_DIR=$SYSROOT
        export PKG_CONFIG_LIBDIR=$libdir/pkgconfig
    elif rpi_uses_sysroot; then
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
    local flags_var="CARGO_TARGET_${up}_RUSTFLAGS"
    if [ "$TIER3" = 1 ]; then
        # The routers' MIPS kernels use 4 KiB pages, but the linker aligns MIPS segments to
        # 64 KiB by default, padding the file by up to 60 KiB between code and data.
        # No unwind tables (.eh_frame and its index: 84,760 bytes on mipsel): with
        # panic=abort nothing unwinds, std (built here from source with these flags) has no
        # backtrace printer (rpi_cargo_build), and a panic still prints its message.
        # No source locations in panic messages (-Zlocation-detail=none: the file paths
        # and line numbers of every bounds check and unwrap; the message stays).
        export "$flags_var=${!flags_var:+${!flags_var} }-C link-arg=-Wl,-z,max-page-size=4096 -C force-unwind-tables=no -C link-arg=-Wl,--no-eh-frame-hdr -Zlocation-detail=none"
    elif [ "$DEB_ARCH" = arm64 ]; then
        # The linker aligns aarch64 segments to 64 KiB, the largest page an arm64 kernel may
        # use; where the data segment's read-only part ends decides whether the file gets up
        # to 64 KiB of padding (987,888 bytes at f5e8bfc, 1,053,424 with the CA bundle's code). A
        # Raspberry Pi kernel uses 4 KiB pages (the Pi 5's kernel_2712 16 KiB): 16 KiB
        # alignment runs on both and pads by at most 16 KiB. (-C force-unwind-tables=no
        # changed nothing here: std comes prebuilt with its tables.)
        export "$flags_var=${!flags_var:+${!flags_var} }-C link-arg=-Wl,-z,max-page-size=16384"
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
