#!/usr/bin/env bash
# The benchmark suite: installs what it needs (as scripts/test-suite.sh does), then runs
# bench/run-bench.py, which prints the table and writes BUILD/bench/report/{report.json,
# report.md,inventory.png}.
# Usage: bench/bench.sh SOURCE_DIR BUILD_DIR [run-bench.py options]
#        (meson compile -C BUILD bench runs it with the defaults)
set -euo pipefail
src=$1
build=$2
shift 2
# shellcheck source=../scripts/deps.sh disable=SC1091
. "$src/scripts/deps.sh"
zpcid_install_packages "${ZPCID_BENCH_PACKAGES[@]}"
exec python3 "$src/bench/run-bench.py" --source "$src" --build "$build" "$@"
