#!/usr/bin/env bash
# The whole test suite: installs what the tests need, builds with -Werror and runs every suite.
# Usage: sudo scripts/test-suite.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/deps.sh
. scripts/deps.sh

zpcid_install_packages "${ZPCID_TEST_PACKAGES[@]}"
build=${ZPCID_BUILD_DIR:-build-test}
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" -Dwerror=true >/dev/null
fi
ninja -C "$build"
meson test -C "$build" --print-errorlogs --num-processes 2

# The unit and D-Bus suites once more under AddressSanitizer and UBSan (docs/robustness.md).
# ASan's runtime is not first when the D-Bus tests preload the simulated kernel into the
# daemon, hence verify_asan_link_order=0; leak detection stays on, in the daemon as well.
asan=${ZPCID_ASAN_BUILD_DIR:-$build-asan}
if [ ! -f "$asan/build.ninja" ]; then
    meson setup "$asan" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dtests-s390x=disabled >/dev/null
fi
ninja -C "$asan"
ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C "$asan" --suite unit --suite dbus --print-errorlogs --num-processes 2
