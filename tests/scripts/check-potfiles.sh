#!/usr/bin/env bash
# Fails when a source file with translatable strings (C with _() or N_(), or a polkit policy
# template) is missing from po/POTFILES, or when POTFILES names a file that does not exist.
set -euo pipefail
top=${1:-$(dirname "$0")/../..}
cd "$top"
status=0
echo "1..2"
# C sources of every program, and the polkit policy templates (translated through ITS rules).
missing=$( (grep -lE '\bN?_\(' src/*.c cli/*.c daemon/*.c hook/*.c 2>/dev/null; ls xml/*.policy.in 2>/dev/null) |
    sort | comm -23 - <(sort po/POTFILES) || true)
if [ -n "$missing" ]; then
    echo "not ok 1 - files with translatable strings missing from po/POTFILES: $missing"
    status=1
else
    echo "ok 1 - every file with translatable strings is in po/POTFILES"
fi
stale=""
while read -r f; do
    [ -z "$f" ] || [ -e "$f" ] || stale="$stale $f"
done < po/POTFILES
if [ -n "$stale" ]; then
    echo "not ok 2 - po/POTFILES names files that do not exist:$stale"
    status=1
else
    echo "ok 2 - every file in po/POTFILES exists"
fi
exit $status
