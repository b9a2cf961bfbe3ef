#!/bin/bash
# Runs the s390x cross-built unit tests (CROSS_BUILD_DIR/tests/test-*) under qemu-user and
# reports one TAP result per test program, with its own TAP output as diagnostics.
#
# Usage: tests/s390x/run-user-tests.sh CROSS_BUILD_DIR SYSROOT
#   CROSS_BUILD_DIR  e.g. CACHE_DIR/build-s390x from build-image.sh (must be built)
#   SYSROOT          e.g. CACHE_DIR/sysroot: the s390x libraries, passed as qemu -L
#
# The environment mirrors tests/meson.build (ZPCID_TEST_DATA, ZPCIDCTL, MKHOST, ...). Without
# binfmt_misc an s390x program cannot exec another s390x program, so ZPCIDCTL points to a small
# host script that starts the cross-built zpcidctl under qemu-user.
# Environment: QEMU_USER (default qemu-s390x-static), ZPCID_USER_TEST_TIMEOUT (s, default 300).
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 CROSS_BUILD_DIR SYSROOT" >&2
	exit 2
fi
bdir=$(cd "$1" && pwd)
sysroot=$(cd "$2" && pwd)
qemu=${QEMU_USER:-qemu-s390x-static}
per_test_timeout=${ZPCID_USER_TEST_TIMEOUT:-300}
command -v "$qemu" >/dev/null || {
	echo "run-user-tests.sh: $qemu not found (apt-get install qemu-user-static)" >&2
	exit 2
}

srcdir=$(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["directories"]["source"])' "$bdir/meson-info/meson-info.json")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/zpcidctl" <<EOF
#!/bin/sh
exec "$qemu" -L "$sysroot" "$bdir/cli/zpcidctl" "\$@"
EOF
chmod +x "$tmp/zpcidctl"

export ZPCID_TEST_DATA=$srcdir/tests/data
export MKHOST=$srcdir/tests/tools/mkhost.py
export ZPCIDCTL=$tmp/zpcidctl
export LC_ALL=C.UTF-8 LANGUAGE='' G_DEBUG=fatal-criticals
export G_TEST_SRCDIR=$srcdir/tests G_TEST_BUILDDIR=$bdir/tests

tests=()
for t in "$bdir"/tests/test-*; do
	[ -f "$t" ] && [ -x "$t" ] && tests+=("$t")
done

echo "TAP version 13"
if [ ${#tests[@]} -eq 0 ]; then
	echo "1..0 # SKIP no tests/test-* in $bdir"
	exit 0
fi
echo "1..${#tests[@]}"
n=0
failed=0
for t in "${tests[@]}"; do
	n=$((n + 1))
	name=$(basename "$t")
	rc=0
	out=$(cd "$bdir/tests" && timeout -k 5 "$per_test_timeout" \
		"$qemu" -L "$sysroot" "$t" --tap 2>&1) || rc=$?
	if [ "$rc" -eq 0 ] && ! grep '^not ok' <<<"$out" | grep -qv '# *TODO'; then
		echo "ok $n - $name (s390x, qemu-user)"
	else
		failed=$((failed + 1))
		echo "not ok $n - $name (s390x, qemu-user): exit status $rc"
	fi
	while IFS= read -r line; do
		echo "#   $line"
	done <<<"$out"
done
echo "# $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
