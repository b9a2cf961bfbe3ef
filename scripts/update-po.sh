#!/usr/bin/env bash
# Brings po/de.po up to date with the sources: regenerates po/zpcid.pot (meson's zpcid-pot
# target), merges it into every language of po/LINGUAS (zpcid-update-po) and lists the
# messages that still need a translator. Usage: scripts/update-po.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" zpcid-pot zpcid-update-po >/dev/null
rm -f po/*.po~ po/zpcid.pot
for lang in $(cat po/LINGUAS); do
    echo "po/$lang.po: $(msgfmt --statistics -o /dev/null "po/$lang.po" 2>&1)"
    msgattrib --untranslated --no-obsolete "po/$lang.po" | sed -n '/^#:/,$p'
    msgattrib --only-fuzzy --no-obsolete "po/$lang.po" | sed -n '/^#:/,$p'
done
