#!/bin/sh
# Checks that the feed package's Makefile parses and says what it should, against a stand-in
# of the OpenWrt SDK (rules.mk, package.mk, rust-package.mk reduced to what the Makefile
# uses). It does not build anything: README.md says how to build with the real SDK.
# Last line: "N passed, M failed".
here=$(cd "$(dirname "$0")" && pwd)
pkg="$here/.."
sdk=$(mktemp -d "${TMPDIR:-/tmp}/tcpflow-openwrt-sdk.XXXXXX")
trap 'rm -rf "$sdk"' EXIT INT TERM
mkdir -p "$sdk/include" "$sdk/feeds/packages/lang/rust" "$sdk/staging/usr/lib/pkgconfig"

cat > "$sdk/rules.mk" <<EOF2
STAGING_DIR:=$sdk/staging
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_CONF:=install -m0600
CP:=cp -fpR
EOF2
cat > "$sdk/include/package.mk" <<'EOF2'
PKG_BUILD_DIR:=$(TOPDIR)/build/$(PKG_NAME)-$(PKG_VERSION)
PKG_INSTALL_DIR:=$(PKG_BUILD_DIR)/ipkg-install
define BuildPackage
show:
	$$(info NAME $(1))
	$$(info SRC $$(TCPFLOW_SRC))
	$$(info MAKE_PATH $$(MAKE_PATH))
	$$(info BUILD_DEPENDS $$(PKG_BUILD_DEPENDS))
	$$(info PREPARE $$(Build/Prepare))
	$$(info INSTALL $$(call Package/$(1)/install,/ROOT))
	$$(info CONFFILES $$(Package/$(1)/conffiles))
	$$(info VARS $$(CARGO_PKG_VARS))
	$$(info PACKAGE $$(Package/$(1)))
	$$(info COMPILE $$(strip $$(Build/Compile)))
	@true
endef
EOF2
cat > "$sdk/feeds/packages/lang/rust/rust-package.mk" <<'EOF2'
RUST_ARCH_DEPENDS:=@(aarch64||arm||mips||mipsel)
CARGO_PKG_VARS= CC=hostcc
# As the feed's: cargo install of path $(1) with features and extra arguments $(2).
define Build/Compile/Cargo
cargo install --path $(1) $(if $(strip $(RUST_PKG_FEATURES)),--features "$(strip $(RUST_PKG_FEATURES))") $(2)
endef
define RustBinPackage
  ifndef Package/$(1)/install
    define Package/$(1)/install
	DEFAULT-INSTALL
    endef
  endif
endef
EOF2
printf 'Name: libpcap\nVersion: 1.10.4\n' > "$sdk/staging/usr/lib/pkgconfig/libpcap.pc"

out=$(make -s -C "$pkg" TOPDIR="$sdk" INCLUDE_DIR="$sdk/include" show 2>&1)
status=$?
passed=0
failed=0
check() { # DESCRIPTION PATTERN (a fixed string the output must hold)
	if printf '%s\n' "$out" | grep -qF -- "$2"; then
		passed=$((passed + 1))
		echo "ok   $1"
	else
		failed=$((failed + 1))
		echo "FAIL $1: no '$2'"
	fi
}
if [ "$status" -eq 0 ]; then
	passed=$((passed + 1))
	echo "ok   make parses the Makefile"
else
	failed=$((failed + 1))
	echo "FAIL make: $out"
fi
root=$(cd "$pkg/../.." && pwd)
check "package name" "NAME tcpflow"
check "source: this checkout" "SRC $root"
check "cargo installs the host package" "MAKE_PATH host"
check "builds with rust/host" "BUILD_DEPENDS rust/host"
check "depends on libpcap" "DEPENDS:=@(aarch64||arm||mips||mipsel) +libpcap"
check "copies the workspace" "$root/Cargo.toml $root/Cargo.lock"
check "copies core, host, tests" "$root/core $root/host $root/tests"
check "installs the binary" "install -m0755 $sdk/build/tcpflow-0.1.0/ipkg-install/bin/tcpflow /ROOT/usr/bin/"
check "installs the init script" "install -m0755 ./files/tcpflow.init /ROOT/etc/init.d/tcpflow"
check "installs the UCI config" "install -m0600 ./files/tcpflow.config /ROOT/etc/config/tcpflow"
check "keeps the config on upgrade" "CONFFILES /etc/config/tcpflow"
check "libpcap's folder for the pcap crate" "LIBPCAP_LIBDIR=$sdk/staging/usr/lib"
check "libpcap's version from its .pc" "LIBPCAP_VER=1.10.4"
check "the field build's features" 'COMPILE cargo install --path host --features "ship" --no-default-features'
if printf '%s\n' "$out" | grep -q DEFAULT-INSTALL; then
	failed=$((failed + 1))
	echo "FAIL the package's own install step is not used"
else
	passed=$((passed + 1))
	echo "ok   the package's own install step is used"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
