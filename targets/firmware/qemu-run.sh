#!/bin/sh
# Boots a firmware image in QEMU (mps2-an386, Cortex-M4) with semihosting and prints its
# defmt log, decoded by defmt-print when it is installed (`cargo install defmt-print`), raw
# otherwise. Exits with the firmware's status (semihosting SYS_EXIT): 0 when every digest
# matched. Used as the cargo runner: `cargo run --release`.
set -eu
image=$1
timeout=${QEMU_TIMEOUT:-120}
defmt_print=$(command -v defmt-print || { [ -x "$HOME/.cargo/bin/defmt-print" ] && echo "$HOME/.cargo/bin/defmt-print"; } || true)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
timeout "$timeout" qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
    -semihosting-config enable=on,target=native -kernel "$image" >"$log" || status=$?
if [ -n "$defmt_print" ]; then
    "$defmt_print" -e "$image" <"$log" || true
else
    echo "(defmt-print not installed: raw defmt frames follow; cargo install defmt-print to decode)"
    od -A x -t x1 "$log" | head -20
fi
case $status in
    0) echo "firmware: exit 0 (every digest matched)" ;;
    124) echo "firmware: timed out after ${timeout}s" ;;
    *) echo "firmware: exit $status" ;;
esac
exit "$status"
