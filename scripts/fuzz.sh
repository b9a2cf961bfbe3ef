#!/usr/bin/env bash
# Runs the libFuzzer targets (docs/robustness.md, "Fuzzing"): builds them with clang, ASan and
# UBSan in BUILD_DIR and runs each for RUNS executions, starting from a copy of its checked-in
# corpus. Findings are written to WORK_DIR/artifacts and stop the run of their target.
# Usage: sudo scripts/fuzz.sh [--runs N] [--build DIR] [--work DIR] [TARGET...]
# TARGET is one of sysfs-attr spec hostinfo config uevent domxml (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/deps.sh
. scripts/deps.sh

runs=1000000
build="build-fuzz"
work=
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -*) echo "zpcid: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
    esac
done
[ "${#targets[@]}" -gt 0 ] || targets=(sysfs-attr spec hostinfo config uevent domxml)
[ -n "$work" ] || work=$(mktemp -d /tmp/zpcid-fuzz-XXXXXX)

zpcid_install_packages "${ZPCID_FUZZ_PACKAGES[@]}"
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" -Dfuzzing=true -Db_sanitize=address,undefined \
        -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link -Dtests-s390x=disabled >/dev/null
fi
ninja -C "$build" "${targets[@]/#/tests/fuzz/fuzz-}"

mkdir -p "$work/artifacts"
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for target in "${targets[@]}"; do
    mkdir -p "$work/$target"
    cp tests/fuzz/corpus/"$target"/* "$work/$target/"
    start=$(date +%s)
    status=0
    # -timeout: one input may not take a second (the domain XML target is the slowest).
    "$build/tests/fuzz/fuzz-$target" -runs="$runs" -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/$target-" "$work/$target" \
        >"$work/$target.log" 2>&1 || status=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$target.log" | tail -1 || true)
    echo "fuzz-$target: exit $status, $(($(date +%s) - start)) s, ${done_line:-no DONE line}"
done
echo "Logs and grown corpora: $work (merge new inputs with: fuzz-TARGET -merge=1" \
    "tests/fuzz/corpus/TARGET $work/TARGET)"
ls "$work/artifacts"
[ -z "$(ls -A "$work/artifacts")" ]
