#!/usr/bin/env bash
# The main job: build zpcid and run the daemon on the bundled simulated IBM Z host, on a private
# D-Bus, driving it with zpcidctl. Nothing of this machine's real devices is touched: the host is
# a temporary copy of tests/data/hosts/z16-lpar-ready, and binds happen under the simulated
# kernel (tests/simkernel), which moves the driver links in that copy.
# Usage: sudo scripts/main-job.sh [--s390x]   (--s390x also boots the emulated s390x machine)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/deps.sh
. scripts/deps.sh

zpcid_install_packages "${ZPCID_BUILD_PACKAGES[@]}"
build=${ZPCID_BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null

ctl="$PWD/$build/cli/zpcidctl"
daemon="$PWD/$build/daemon/zpcid"
simkernel="$PWD/$build/tests/simkernel/libzpcid-simkernel.so"
tmp=$(mktemp -d /tmp/zpcid-main-job.XXXXXX)
bus_pid=""
zpcid_pid=""

stop() {
    if [ -n "$zpcid_pid" ]; then
        kill -TERM "$zpcid_pid" 2>/dev/null || true
        wait "$zpcid_pid" 2>/dev/null || true
    fi
    if [ -n "$bus_pid" ]; then
        kill -TERM "$bus_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap stop EXIT

# The simulated host, copied so that binds change the copy only.
cp -a tests/data/hosts/z16-lpar-ready "$tmp/host"
echo "== The simulated host: $(cat "$tmp/host/README")"

# A private session bus: zpcid on it never touches the machine's system bus or devices.
dbus-daemon --session --fork --print-address=1 --print-pid=1 >"$tmp/bus"
address=$(sed -n 1p "$tmp/bus")
bus_pid=$(sed -n 2p "$tmp/bus")
export ZPCID_BUS_ADDRESS="$address"

DBUS_SESSION_BUS_ADDRESS="$address" LD_PRELOAD="$simkernel" ZPCID_SIMKERNEL_ROOT="$tmp/host" \
    "$daemon" --session --host-root "$tmp/host" --state-dir "$tmp/state" \
    --libvirt-uri test:///default --uevent-socket "$tmp/uevent.sock" 2>"$tmp/zpcid.log" &
zpcid_pid=$!
for _ in $(seq 50); do
    "$ctl" list >/dev/null 2>&1 && break
    sleep 0.1
done
echo "== zpcid (pid $zpcid_pid) serves org.zpcid1 on the private bus $address"

show() {
    echo
    echo "\$ zpcidctl $*"
    "$ctl" "$@" || true
}

show check
show list
# The VF 0x0000182d carries the interface eno4, which is up: zpcid refuses to take it away
# from the host until told that the interface may go.
show bind 0x0000182d
show bind --allow-guard net 0x0000182d
show list
show xml 0x0000182d

echo
echo "== Stopping zpcid and the bus"
kill -TERM "$zpcid_pid"
wait "$zpcid_pid" && echo "zpcid exited cleanly." || echo "zpcid exited with status $?."
zpcid_pid=""
sed 's/^/   zpcid log: /' "$tmp/zpcid.log"

if [ "${1:-}" = "--s390x" ]; then
    zpcid_install_packages qemu-system-misc qemu-user-static gcc-s390x-linux-gnu mmdebstrap xz-utils cpio kmod
    meson test -C "$build" --suite s390x --print-errorlogs
fi
