#!/usr/bin/env bash
# Builds a .deb for a Raspberry Pi from a staged tree with dpkg-deb: ./package.sh aarch64|armv7
#   /usr/bin/tcpflow                      the cross-built command (stripped)
#   /lib/systemd/system/tcpflow.service   the unit
#   /etc/default/tcpflow                  its settings (a conffile)
#   /usr/share/man/man1/tcpflow.1.gz      the manual page
# The package is named tcpflow-rs and replaces Debian's tcpflow (1.6), which installs the same
# paths. Builds the binary first if it is missing. Prints the .deb's path; checks its contents.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
rpi_arch "${1:-}"
[ -x "$BIN" ] || "$here/build.sh" "$1" >/dev/null

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/host/Cargo.toml" | head -n 1)
out_dir=$TARGET_DIR/$TRIPLE/debian
stage=$out_dir/tcpflow-rs_${version}-1_$DEB_ARCH
deb=$stage.deb
rm -rf "$stage"
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/default" \
    "$stage/usr/share/man/man1" "$stage/usr/share/doc/tcpflow-rs"

strip=$GNU-strip
command -v "$strip" >/dev/null || strip=llvm-strip
"$strip" -o "$stage/usr/bin/tcpflow" "$BIN"
chmod 0755 "$stage/usr/bin/tcpflow"
install -m 0644 "$here/tcpflow.service" "$stage/lib/systemd/system/tcpflow.service"
install -m 0644 "$here/tcpflow.default" "$stage/etc/default/tcpflow"
gzip -9n <"$here/tcpflow.1" >"$stage/usr/share/man/man1/tcpflow.1.gz"
chmod 0644 "$stage/usr/share/man/man1/tcpflow.1.gz"
cat >"$stage/usr/share/doc/tcpflow-rs/copyright" <<'COPY'
tcpflow (Rust rewrite). License: MIT OR Apache-2.0.
COPY

# The newest glibc symbol version the binary needs: the lowest libc6 it runs on.
glibc=$("$GNU-objdump" -T "$stage/usr/bin/tcpflow" | grep -o 'GLIBC_[0-9.]*' |
    sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n | tail -n 1)
pcap_pkg=$(dpkg-query -W -f='${Package}\n' "libpcap0.8:$DEB_ARCH" 2>/dev/null | head -n 1 || true)
size=$(du -k -s "$stage" | cut -f 1)

cat >"$stage/DEBIAN/control" <<CONTROL
Package: tcpflow-rs
Version: ${version}-1
Architecture: $DEB_ARCH
Maintainer: tcpflow-rs developers <tcpflow-rs@localhost>
Installed-Size: $size
Depends: libc6 (>= $glibc), ${pcap_pkg:-libpcap0.8} (>= 1.5), adduser
Conflicts: tcpflow
Replaces: tcpflow
Provides: tcpflow
Section: net
Priority: optional
Description: reassemble TCP connections into one file per direction
 tcpflow reads packets (capture files or a live interface), puts each TCP
 connection's bytes back in order and stores each direction in its own file,
 or, on a Raspberry Pi, in one bounded, crash-safe spool on the SD card or a
 USB disk (tcpflow.service, settings in /etc/default/tcpflow).
CONTROL
echo /etc/default/tcpflow >"$stage/DEBIAN/conffiles"

cat >"$stage/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent passwd tcpflow >/dev/null; then
        adduser --system --group --home /var/lib/tcpflow --no-create-home --quiet tcpflow
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || true
        # Not enabled by default: set INTERFACE and SPOOL in /etc/default/tcpflow, then
        # systemctl enable --now tcpflow. Restarted on upgrade when it was running.
        if systemctl is-active --quiet tcpflow.service; then
            systemctl restart tcpflow.service || true
        fi
    fi
fi
exit 0
SCRIPT
cat >"$stage/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop tcpflow.service >/dev/null 2>&1 || true
    systemctl disable tcpflow.service >/dev/null 2>&1 || true
fi
exit 0
SCRIPT
cat >"$stage/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
SCRIPT
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"

dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null

# Check what was built.
contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/tcpflow ./lib/systemd/system/tcpflow.service ./etc/default/tcpflow \
    ./usr/share/man/man1/tcpflow.1.gz; do
    grep -q " $f\$" <<<"$contents" || { echo "missing in the package: $f" >&2; exit 1; }
done
[ "$(dpkg-deb --field "$deb" Architecture)" = "$DEB_ARCH" ]
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Architecture\|Depends\|Installed-Size\):/  \1:/p'
echo "$deb"
