#!/bin/bash
# Checks data/zpcid.service.in with systemd-analyze verify (package systemd): every
# directive known, the executable present. Exit 77 (skip) without systemd-analyze.
# Usage: check-unit.sh SOURCE_ROOT ZPCID_BINARY
set -euo pipefail
src=$1
daemon=$2
if ! command -v systemd-analyze >/dev/null; then
    echo "systemd-analyze is not installed (package systemd); skipping." >&2
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|@libexecdir@/zpcid|$daemon|" "$src/data/zpcid.service.in" > "$dir/zpcid.service"
# Warnings about the missing modprobe@ template or D-Bus in a container are not the unit's.
out=$(systemd-analyze verify --man=no "$dir/zpcid.service" 2>&1 || true)
echo "$out"
if echo "$out" | grep -Ei "unknown (key|section|lvalue)|invalid|failed to parse|not executable|ignoring|fatal|bad unit|neither a valid" >/dev/null; then
    echo "zpcid.service has errors." >&2
    exit 1
fi
echo "zpcid.service verified."
