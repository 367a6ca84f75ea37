#!/bin/sh
# Tests the procd init script on the host: sources files/tcpflow.init with stand-ins for
# procd's and UCI's shell functions, and checks the exact command line (and the other procd
# parameters and triggers) it produces for several configurations.
#
# The UCI stand-in reads a subset of the real syntax (config/option lines, values quoted with
# ' or "), so the shipped files/tcpflow.config is tested as it is.
#
# POSIX sh: run it with dash, bash or BusyBox ash (OpenWrt's shell): `sh run.sh`,
# `busybox sh run.sh`. Exit status nonzero on any failure; the last line is
# "N passed, M failed".

here=$(cd "$(dirname "$0")" && pwd)
init="$here/../files/tcpflow.init"
shipped_config="$here/../files/tcpflow.config"
work=$(mktemp -d "${TMPDIR:-/tmp}/tcpflow-openwrt-test.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

passed=0
failed=0

pass() {
	passed=$((passed + 1))
	echo "ok   $1"
}

fail() {
	failed=$((failed + 1))
	echo "FAIL $1"
	shift
	for line in "$@"; do
		echo "     $line"
	done
}

# ---------------------------------------------------------------------------------------
# Stand-ins for UCI's and procd's functions (inherited by the subshell that sources the init
# script, see run_init). Plain POSIX sh: no `local`, so their variables start with _s_ to
# stay clear of the init script's.

# Strips one pair of surrounding quotes.
uq() {
	case "$1" in
	\"*\") _s_v=${1#\"}; printf '%s' "${_s_v%\"}" ;;
	\'*\') _s_v=${1#\'}; printf '%s' "${_s_v%\'}" ;;
	*) printf '%s' "$1" ;;
	esac
}

# config_load PACKAGE: reads $UCI_DIR/PACKAGE (config and option lines) into
# CONFIG_<section>_<option> variables, as UCI's own functions do.
config_load() {
	_s_file="$UCI_DIR/$1"
	_s_section=""
	[ -f "$_s_file" ] || return 1
	while IFS= read -r _s_line || [ -n "$_s_line" ]; do
		_s_line=$(printf '%s' "$_s_line" | sed -e 's/^[[:space:]]*//')
		case "$_s_line" in
		"" | "#"*) continue ;;
		"config "*)
			set -f
			# shellcheck disable=SC2086
			set -- $_s_line
			set +f
			_s_section=$(uq "${3:-anon}")
			;;
		"option "*)
			_s_name=$(printf '%s' "$_s_line" | sed -e 's/^option[[:space:]]*\([A-Za-z0-9_]*\).*/\1/')
			_s_value=$(printf '%s' "$_s_line" | sed -e 's/^option[[:space:]]*[A-Za-z0-9_]*[[:space:]]*//')
			_s_value=$(uq "$_s_value")
			eval "CONFIG_${_s_section}_${_s_name}=\$_s_value"
			;;
		esac
	done < "$_s_file"
}

config_get() {
	_s_default="$4"
	eval "_s_isset=\${CONFIG_${2}_${3}+x}"
	if [ -n "$_s_isset" ]; then
		eval "$1=\$CONFIG_${2}_${3}"
	else
		eval "$1=\$_s_default"
	fi
}

config_get_bool() {
	config_get _s_b "$2" "$3" "$4"
	case "$_s_b" in
	1 | on | true | yes | enabled) _s_b=1 ;;
	0 | off | false | no | disabled) _s_b=0 ;;
	*) _s_b="$4" ;;
	esac
	eval "$1=\$_s_b"
}

# One argument, shell-quoted when it needs to be.
q() {
	case "$1" in
	"" | *[!A-Za-z0-9_./:=@%+,-]*)
		printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
		;;
	*) printf '%s' "$1" ;;
	esac
}

join() {
	_s_out=""
	for _s_a in "$@"; do
		_s_out="$_s_out${_s_out:+ }$(q "$_s_a")"
	done
	printf '%s' "$_s_out"
}

# procd: each finished instance is one line of $OUT/instances (its command line); other
# parameters go to $OUT/params, triggers to $OUT/triggers.
procd_open_instance() {
	IN_INSTANCE=1
	CMD=""
}
procd_set_param() {
	_s_p="$1"
	shift
	[ -n "$IN_INSTANCE" ] || echo "set_param outside an instance: $_s_p" >> "$OUT/errors"
	if [ "$_s_p" = command ]; then
		CMD=$(join "$@")
	else
		echo "$_s_p $(join "$@")" >> "$OUT/params"
	fi
}
procd_append_param() {
	_s_p="$1"
	shift
	[ -n "$IN_INSTANCE" ] || echo "append_param outside an instance: $_s_p" >> "$OUT/errors"
	if [ "$_s_p" = command ]; then
		CMD="$CMD $(join "$@")"
	else
		echo "$_s_p+ $(join "$@")" >> "$OUT/params"
	fi
}
procd_close_instance() {
	echo "$CMD" >> "$OUT/instances"
	IN_INSTANCE=""
}
procd_add_reload_trigger() { echo "reload $*" >> "$OUT/triggers"; }
procd_add_restart_mount_trigger() { echo "restart-mount $*" >> "$OUT/triggers"; }
logger() { echo "logger $*" >> "$OUT/log"; }

# run_init NAME: sources the init script with the stand-ins over $work/NAME/uci/tcpflow and
# $work/NAME/mounts, calls start_service and service_triggers; results in $work/NAME/out.
run_init() {
	d="$work/$1"
	mkdir -p "$d/out"
	: > "$d/out/instances"
	: > "$d/out/triggers"
	: > "$d/out/log"
	: > "$d/out/errors"
	: > "$d/out/params"
	(
		UCI_DIR="$d/uci"
		OUT="$d/out"
		TCPFLOW_MOUNTS="$d/mounts"
		. "$init"
		start_service
		echo "$?" > "$OUT/start_status"
		service_triggers
	) > "$d/out/stdout" 2>&1
}

# new_case NAME: a UCI file from stdin, the default mounts (a USB disk on /mnt/usb).
new_case() {
	mkdir -p "$work/$1/uci"
	cat > "$work/$1/uci/tcpflow"
	cat > "$work/$1/mounts" <<'EOF'
/dev/root /rom squashfs ro,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,noatime 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev,noatime 0 0
/dev/ubi0_1 /overlay ubifs rw,noatime 0 0
overlayfs:/overlay / overlay rw,noatime,lowerdir=/,upperdir=/overlay/upper,workdir=/overlay/work 0 0
/dev/sda1 /mnt/usb ext4 rw,relatime 0 0
/dev/sdb1 /mnt/sdb1 vfat rw,relatime 0 0
EOF
}

# expect_instance NAME EXPECTED_COMMAND_LINE
expect_instance() {
	got=$(cat "$work/$1/out/instances")
	errors=$(cat "$work/$1/out/errors" "$work/$1/out/stdout")
	if [ "$got" = "$2" ] && [ -z "$errors" ]; then
		pass "$1: $2"
	else
		fail "$1" "expected: $2" "got:      $got" "errors:   $errors"
	fi
}

expect_no_instance() {
	got=$(cat "$work/$1/out/instances")
	if [ -z "$got" ]; then
		pass "$1: no instance"
	else
		fail "$1: expected no instance" "got: $got"
	fi
}

expect_file_line() { # NAME FILE LINE
	if grep -qxF -- "$3" "$work/$1/out/$2"; then
		pass "$1: $2 has '$3'"
	else
		fail "$1: $2 lacks '$3'" "$2: $(cat "$work/$1/out/$2")"
	fi
}

expect_log() { # NAME SUBSTRING
	if grep -qF -- "$2" "$work/$1/out/log"; then
		pass "$1: logs '$2'"
	else
		fail "$1: log lacks '$2'" "log: $(cat "$work/$1/out/log")"
	fi
}

P=/usr/bin/tcpflow

# ---------------------------------------------------------------------------------------
# Syntax

if sh -n "$init" 2>"$work/syntax"; then
	pass "sh -n files/tcpflow.init"
else
	fail "sh -n files/tcpflow.init" "$(cat "$work/syntax")"
fi
if command -v busybox >/dev/null 2>&1; then
	if busybox sh -n "$init" 2>"$work/syntax"; then
		pass "busybox sh -n files/tcpflow.init"
	else
		fail "busybox sh -n files/tcpflow.init" "$(cat "$work/syntax")"
	fi
fi
case "$(head -n 1 "$init")" in
"#!/bin/sh /etc/rc.common") pass "init: rc.common shebang" ;;
*) fail "init: shebang is not '#!/bin/sh /etc/rc.common'" ;;
esac
for v in 'USE_PROCD=1' 'START=95'; do
	if grep -qx "$v" "$init"; then pass "init: $v"; else fail "init: no $v"; fi
done

# ---------------------------------------------------------------------------------------
# Configurations

# The shipped config: disabled.
new_case shipped < "$shipped_config"
run_init shipped
expect_no_instance shipped
expect_file_line shipped start_status 0

# The shipped config, enabled: every default.
sed -e "s/option enabled '0'/option enabled '1'/" "$shipped_config" | new_case shipped-enabled
run_init shipped-enabled
expect_instance shipped-enabled \
	"$P -i br-lan --spool /mnt/usb/tcpflow.spool --spool-size 256M --memory 16M -q"

# Disabled explicitly, with everything else set.
new_case disabled <<'EOF'
config tcpflow 'main'
	option enabled '0'
	option interface 'eth0'
	option filter 'port 80'
EOF
run_init disabled
expect_no_instance disabled

# No enabled option at all: off.
new_case no-enabled <<'EOF'
config tcpflow 'main'
	option interface 'eth0'
EOF
run_init no-enabled
expect_no_instance no-enabled

# Minimal: only enabled; the other options take their defaults.
new_case minimal <<'EOF'
config tcpflow 'main'
	option enabled '1'
EOF
run_init minimal
expect_instance minimal \
	"$P -i br-lan --spool /mnt/usb/tcpflow.spool --spool-size 256M --memory 16M -q"
expect_file_line minimal params "respawn 3600 5 5"
expect_file_line minimal params "stdout 1"
expect_file_line minimal params "stderr 1"
expect_file_line minimal triggers "reload tcpflow"
expect_file_line minimal triggers "restart-mount /mnt/usb"

# A filter with spaces (and quotes of the other kind) stays one argument after "--".
new_case filter <<'EOF'
config tcpflow 'main'
	option enabled 'yes'
	option interface "eth0.2"
	option filter 'tcp port 80 or (host 10.0.0.1 and port 443)'
EOF
run_init filter
expect_instance filter \
	"$P -i eth0.2 --spool /mnt/usb/tcpflow.spool --spool-size 256M --memory 16M -q -- 'tcp port 80 or (host 10.0.0.1 and port 443)'"

# A filter that looks like a flag is still the filter.
new_case filter-dash <<'EOF'
config tcpflow 'main'
	option enabled '1'
	option filter '-w /etc/passwd'
EOF
run_init filter-dash
expect_instance filter-dash \
	"$P -i br-lan --spool /mnt/usb/tcpflow.spool --spool-size 256M --memory 16M -q -- '-w /etc/passwd'"

# Every option.
new_case every <<'EOF'
# a comment
config tcpflow 'main'
	option enabled 'on'
	option interface 'wan'
	option filter 'not port 22'
	option spool_path '/mnt/sdb1/capture/flows.spool'
	option spool_size '2G'
	option memory '32M'
	option max_flows '20000'
	option idle_timeout '120'
EOF
run_init every
expect_instance every \
	"$P -i wan --spool /mnt/sdb1/capture/flows.spool --spool-size 2G --memory 32M --max-flows 20000 --idle-timeout 120 -q -- 'not port 22'"
expect_file_line every triggers "restart-mount /mnt/sdb1/capture"

# max_flows without idle_timeout, no filter.
new_case max-flows <<'EOF'
config tcpflow 'main'
	option enabled '1'
	option max_flows '5000'
EOF
run_init max-flows
expect_instance max-flows \
	"$P -i br-lan --spool /mnt/usb/tcpflow.spool --spool-size 256M --memory 16M --max-flows 5000 -q"

# idle_timeout 0 (never) is passed on, not dropped.
new_case idle-zero <<'EOF'
config tcpflow 'main'
	option enabled '1'
	option idle_timeout '0'
EOF
run_init idle-zero
expect_instance idle-zero \
	"$P -i br-lan --spool /mnt/usb/tcpflow.spool --spool-size 256M --memory 16M --idle-timeout 0 -q"

# ---------------------------------------------------------------------------------------
# The spool never goes to the router's own flash

# The USB disk is not mounted: /mnt/usb would be on the overlay.
new_case unmounted <<'EOF'
config tcpflow 'main'
	option enabled '1'
EOF
grep -v ' /mnt/usb ' "$work/unmounted/mounts" > "$work/unmounted/m" && mv "$work/unmounted/m" "$work/unmounted/mounts"
run_init unmounted
expect_no_instance unmounted
expect_log unmounted "not on external storage"
expect_file_line unmounted triggers "restart-mount /mnt/usb"

for p in /etc/tcpflow.spool /overlay/tcpflow.spool /tmp/tcpflow.spool /root/t.spool /tcpflow.spool; do
	name="internal-$(echo "$p" | tr -c 'A-Za-z0-9\n' '_')"
	printf "config tcpflow 'main'\n\toption enabled '1'\n\toption spool_path '%s'\n" "$p" | new_case "$name"
	run_init "$name"
	expect_no_instance "$name"
done

# A folder that starts like the mount point but is not under it.
new_case prefix <<'EOF'
config tcpflow 'main'
	option enabled '1'
	option spool_path '/mnt/usbx/t.spool'
EOF
run_init prefix
expect_no_instance prefix

# A relative path: an error.
new_case relative <<'EOF'
config tcpflow 'main'
	option enabled '1'
	option spool_path 'tcpflow.spool'
EOF
run_init relative
expect_no_instance relative
expect_file_line relative start_status 1

# issue #20: shipping to object storage: flags, and the store's settings in the environment
# (the key stays in its credentials file).
new_case ship <<'EOF'
config tcpflow 'main'
	option enabled '1'
	option ship_url 's3://taps/site-a'
	option tap_id 'router-1'
	option ship_endpoint 'http://store.lan:3900'
	option ship_region 'garage'
	option ship_credentials '/etc/tcpflow/aws-credentials'
EOF
run_init ship
expect_instance ship \
	"$P -i br-lan --spool /mnt/usb/tcpflow.spool --spool-size 256M --memory 16M --ship s3://taps/site-a --tap-id router-1 -q"
expect_file_line ship params "env+ AWS_ENDPOINT_URL=http://store.lan:3900"
expect_file_line ship params "env+ AWS_REGION=garage"
expect_file_line ship params "env+ AWS_SHARED_CREDENTIALS_FILE=/etc/tcpflow/aws-credentials"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
