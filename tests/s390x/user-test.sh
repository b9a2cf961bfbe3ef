#!/bin/bash
# meson test s390x-user: cross-build zpcid for s390x (cached image build) and run the unit test
# programs big-endian under qemu-user.
# Usage: tests/s390x/user-test.sh CACHE_DIR [SOURCE_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || {
	echo "usage: $0 CACHE_DIR [SOURCE_DIR]" >&2
	exit 2
}
"$here/build-image.sh" "$@" >&2
exec "$here/run-user-tests.sh" "$1/build-s390x" "$1/sysroot"
