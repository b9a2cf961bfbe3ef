#!/usr/bin/env bash
# Runs a D-Bus integration test program with the daemon under valgrind memcheck: any memory
# error or definite leak makes valgrind exit with 99, which the fixture's stop_daemon() turns
# into a failed test (it asserts exit status 0). Usage: valgrind-daemon.sh TEST_PROGRAM [ARGS]
set -euo pipefail
# GLib's own suppressions (libglib2.0-dev) cover its one-time allocations; zpcid needs none.
supp=()
if [ -f /usr/share/glib-2.0/valgrind/glib.supp ]; then
    supp+=(--suppressions=/usr/share/glib-2.0/valgrind/glib.supp)
fi
# GSlice hands out memory valgrind cannot follow; gc-friendly clears freed pointers.
export G_SLICE=always-malloc G_DEBUG=fatal-criticals,gc-friendly
# The fixture splits this the way the shell would (g_shell_parse_argv), hence %q.
ZPCID_TEST_DAEMON_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=full \
--errors-for-leak-kinds=definite --show-leak-kinds=definite --track-origins=yes \
--num-callers=40 $(printf '%q ' "${supp[@]}")"
export ZPCID_TEST_DAEMON_WRAPPER
exec "$@"
