# Sourced by x, targets/ci.sh, targets/rpi/env.sh and fuzz/run.sh: the one way to install
# what a chore needs (Debian packages, Rust targets and toolchains), only what is missing.
# shellcheck shell=bash

# `sudo` when not root (CI runs as root and may have no sudo).
deps_sudo() {
    [ "$(id -u)" -eq 0 ] || echo sudo
}

# apt-get update at most once per run: APT_UPDATED is exported, so the scripts a chore starts
# (./x test -> targets/ci.sh -> targets/rpi/build.sh) do not fetch the indexes again, and
# APT_STAMP (a file `x` creates for its run) carries it across the subshells that do not
# hand variables back (targets/ci.sh runs each entry in one). After `dpkg
# --add-architecture` call apt_forget_update: the new architecture has no index yet.
# Retried: a mirror in the middle of a sync fails now and then, and what was fetched may
# still be enough.
apt_update() {
    [ -z "${APT_UPDATED:-}" ] || return 0
    if [ -n "${APT_STAMP:-}" ] && [ -s "$APT_STAMP" ]; then
        export APT_UPDATED=1
        return 0
    fi
    local sudo try
    sudo=$(deps_sudo)
    for try in 1 2 3; do
        $sudo apt-get update -qq && break
        echo "apt-get update failed (try $try of 3)"
        [ "$try" -eq 3 ] || sleep 10
    done
    export APT_UPDATED=1
    [ -z "${APT_STAMP:-}" ] || echo updated >"$APT_STAMP"
}

apt_forget_update() {
    APT_UPDATED=""
    [ -z "${APT_STAMP:-}" ] || : >"$APT_STAMP"
}

# apt_install PKG...: installs those of PKG that are not installed (PKG may name an
# architecture, libpcap-dev:arm64). Quiet when all are there; false if the install fails.
apt_install() {
    local missing=() p sudo
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "installing: ${missing[*]}"
    apt_update
    sudo=$(deps_sudo)
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# rust_target TRIPLE...: the prebuilt standard libraries of these targets (stable).
rust_target() {
    local have t
    have=$(rustup target list --installed)
    for t in "$@"; do
        grep -qx "$t" <<<"$have" || rustup target add "$t"
    done
}

# rust_nightly [COMPONENT...]: the nightly toolchain (cargo-fuzz's sanitizer flags and the
# tier-3 targets' -Z build-std need it) and these of its components (rust-src).
# shellcheck disable=SC2120 # cargo_fuzz needs no component, the tier-3 builds rust-src
rust_nightly() {
    local c
    rustup toolchain list | grep -q '^nightly' ||
        rustup toolchain install nightly --profile minimal
    for c in "$@"; do
        rustup component list --toolchain nightly --installed 2>/dev/null | grep -qx "$c.*" ||
            rustup component add "$c" --toolchain nightly
    done
}

# cargo-fuzz (built once per machine, about a minute) and the nightly it runs on.
cargo_fuzz() {
    rust_nightly
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
}
