#!/usr/bin/env bash
# Renders every manual page in docs/man with groff's warnings on (-ww) and fails on any
# warning or error, then formats it as man(1) does for a reader.
# Usage: check-man.sh SOURCE_ROOT
set -uo pipefail
src=$1
pages=("$src"/docs/man/*.[1-8])
status=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "1..$(( ${#pages[@]} * 2 ))"
n=0
for page in "${pages[@]}"; do
    name=$(basename "$page")
    n=$((n + 1))
    warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1)
    if [ $? -eq 0 ] && [ -z "$warnings" ]; then
        echo "ok $n - groff renders $name without warnings"
    else
        echo "not ok $n - groff warns about $name"
        printf '%s\n' "$warnings" | sed 's/^/# /'
        status=1
    fi
    n=$((n + 1))
    if ! command -v man >/dev/null; then
        echo "ok $n # SKIP man-db is not installed"
        continue
    fi
    # NAME must come out as "<name> \- ...", which is what whatis/apropos index.
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" 2>"$tmp/stderr")
    rc=$?
    if [ $rc -eq 0 ] && [ ! -s "$tmp/stderr" ] &&
        printf '%s\n' "$out" | grep -Eq "^ +${name%.*} +- "; then
        echo "ok $n - man -l $name"
    else
        echo "not ok $n - man -l $name"
        { echo "man exited with status $rc"; cat "$tmp/stderr"; printf '%s\n' "$out" | head -8; } |
            sed 's/^/# /'
        status=1
    fi
done
exit $status
