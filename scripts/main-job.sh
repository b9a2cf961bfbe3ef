#!/usr/bin/env bash
# The main job: build zpcid and run it on the bundled simulated IBM Z host.
# Usage: sudo scripts/main-job.sh [--s390x]   (--s390x also boots the emulated s390x machine)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/deps.sh
. scripts/deps.sh

zpcid_install_packages "${ZPCID_BUILD_PACKAGES[@]}"
build=${ZPCID_BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null

host=tests/data/hosts/z16-lpar-ready
ctl="$build/cli/zpcidctl"
echo "== The simulated host: $(cat "$host/README")"
echo
echo "\$ zpcidctl --host-root $host check"
"$ctl" --host-root "$host" check || true
echo
echo "\$ zpcidctl --host-root $host list"
"$ctl" --host-root "$host" list
echo
echo "\$ zpcidctl --host-root tests/data/hosts/z13-lpar check --json | (verdict only)"
"$ctl" --host-root tests/data/hosts/z13-lpar --json check | grep -m1 '"verdict"' || true

if [ "${1:-}" = "--s390x" ]; then
    zpcid_install_packages qemu-system-misc qemu-user-static gcc-s390x-linux-gnu mmdebstrap xz-utils cpio
    meson test -C "$build" --suite s390x --print-errorlogs
fi
