# shellcheck shell=sh
# Runs every scenario in /zpcid-test/scenarios (sorted by name) and prints one TAP stream
# between the markers that tests/s390x/run-vm.sh looks for on the console.
# zpcid.only=NAME[,NAME...] on the kernel command line restricts the run to those scenarios.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. /zpcid-test/lib.sh

only=$(zt_cmdline_param zpcid.only || true)
dmesg -c >/dev/null
echo "ZPCID-TAP-BEGIN"
echo "TAP version 13"
for s in "$ZT_DIR"/scenarios/*.sh; do
	name=$(basename "$s" .sh)
	if [ -n "$only" ] && ! echo ",$only," | grep -q ",$name,"; then
		continue
	fi
	zt_diag "scenario $name"
	before=$(zt_count)
	fails_before=$(zt_failures)
	(
		ZT_SCENARIO=$name
		export ZT_SCENARIO
		# shellcheck source=/dev/null
		. "$s"
	)
	rc=$?
	if [ "$rc" -ne 0 ]; then
		zt_fail "$name: scenario exited with status $rc"
	elif [ "$(zt_count)" = "$before" ]; then
		zt_fail "$name: scenario reported no result"
	fi
	if [ "$(zt_failures)" != "$fails_before" ]; then
		zt_diag "kernel log of $name:"
		dmesg | tail -n 20 | sed 's/^/#   /'
	fi
	dmesg -c >/dev/null
done
echo "1..$(zt_count)"
echo "ZPCID-TAP-END"
