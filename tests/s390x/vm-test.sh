#!/bin/bash
# meson test s390x-vm: build (or refresh) the cached image, then boot it and run the scenarios.
# Usage: tests/s390x/vm-test.sh CACHE_DIR [SOURCE_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || {
	echo "usage: $0 CACHE_DIR [SOURCE_DIR]" >&2
	exit 2
}
start=$(date +%s)
"$here/build-image.sh" "$@"
echo "# image ready after $(($(date +%s) - start)) s" >&2
"$here/run-vm.sh" "$1"
