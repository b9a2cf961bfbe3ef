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
