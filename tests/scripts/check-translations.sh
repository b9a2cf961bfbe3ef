#!/usr/bin/env bash
# Checks the translations: every message of the sources (po/POTFILES, extracted as meson's
# "zpcid-pot" target does) has a finished German translation, and zpcidctl speaks German with
# LANGUAGE=de using the catalogue built in the build tree.
# Usage: check-translations.sh SOURCE_ROOT BUILD_ROOT ZPCIDCTL
set -euo pipefail
src=$1
build=$2
zpcidctl=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
echo "1..3"

# The keywords and flags of meson's i18n preset "glib".
(cd "$src" && GETTEXTDATADIRS="$src/po" xgettext --package-name=zpcid --msgid-bugs-address= \
    --from-code=UTF-8 --add-comments \
    --keyword=_ --keyword=N_ --keyword=C_:1c,2 --keyword=NC_:1c,2 --keyword=g_dcgettext:2 \
    --keyword=g_dngettext:2,3 --keyword=g_dpgettext2:2c,3 \
    --flag=N_:1:pass-c-format --flag=C_:2:pass-c-format --flag=NC_:2:pass-c-format \
    --flag=g_dngettext:2:pass-c-format --flag=g_strdup_printf:1:c-format \
    --flag=g_string_printf:2:c-format --flag=g_string_append_printf:2:c-format \
    --flag=g_error_new:3:c-format --flag=g_set_error:4:c-format \
    --flag=g_markup_printf_escaped:1:c-format --flag=g_log:3:c-format \
    --flag=g_print:1:c-format --flag=g_printerr:1:c-format --flag=g_printf:1:c-format \
    --flag=g_fprintf:2:c-format --flag=g_sprintf:2:c-format --flag=g_snprintf:3:c-format \
    -f po/POTFILES -o "$tmp/zpcid.pot") 2>"$tmp/xgettext.log"
total=$(msgattrib --no-obsolete "$tmp/zpcid.pot" | grep -c '^msgid ' || true)
msgmerge --quiet --no-fuzzy-matching -o "$tmp/de.po" "$src/po/de.po" "$tmp/zpcid.pot"
untranslated=$(msgattrib --untranslated --no-obsolete "$tmp/de.po" | grep -c '^msgid ' || true)
fuzzy=$(msgattrib --only-fuzzy --no-obsolete "$tmp/de.po" | grep -c '^msgid ' || true)
# msgattrib keeps the header entry in its output; it is no message.
untranslated=$((untranslated > 0 ? untranslated - 1 : 0))
fuzzy=$((fuzzy > 0 ? fuzzy - 1 : 0))
if [ "$untranslated" -eq 0 ] && [ "$fuzzy" -eq 0 ] && [ "$total" -gt 100 ]; then
    echo "ok 1 - po/de.po translates all $((total - 1)) messages of po/POTFILES"
else
    status=1
    echo "not ok 1 - po/de.po: $untranslated untranslated and $fuzzy fuzzy of $((total - 1)) messages (update it with scripts/update-po.sh)"
    { msgattrib --untranslated --no-obsolete --no-wrap "$tmp/de.po"
      msgattrib --only-fuzzy --no-obsolete --no-wrap "$tmp/de.po"; } |
        grep '^msgid "..*"$' | sed 's/^/# /' | head -40
fi

if msgfmt --check --output-file=/dev/null "$src/po/de.po" 2>"$tmp/msgfmt.log"; then
    echo "ok 2 - po/de.po passes msgfmt --check (format specifiers match)"
else
    status=1
    echo "not ok 2 - po/de.po fails msgfmt --check"
    sed 's/^/# /' "$tmp/msgfmt.log"
fi

# glibc honours LANGUAGE under C.UTF-8 (unlike under "C"), so no generated locale is needed.
set +e
ZPCID_LOCALEDIR="$build/po" LC_ALL=C.UTF-8 LANGUAGE=de "$zpcidctl" \
    --host-root "$src/tests/data/hosts/z13-lpar" check >"$tmp/check.out" 2>&1
rc=$?
set -e
if [ "$rc" -eq 1 ] && grep -q '^zPCI: Prüfe die CPU-Architektur ' "$tmp/check.out" &&
    grep -q '^Durchreichung: *bereit$' "$tmp/check.out" &&
    grep -q '^Interpretation: *nicht bereit$' "$tmp/check.out" &&
    grep -q 'Abhilfe: zPCI-Interpretation braucht eine IBM z14' "$tmp/check.out" &&
    ! grep -q 'Checking\|Remedy' "$tmp/check.out"; then
    echo "ok 3 - LANGUAGE=de zpcidctl check prints German"
else
    status=1
    echo "not ok 3 - LANGUAGE=de zpcidctl check did not print the German report (exit $rc)"
    sed 's/^/# /' "$tmp/check.out"
fi
exit $status
