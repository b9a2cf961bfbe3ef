# shellcheck shell=sh
# Benchmark only (bench/run-bench.py appends it to a copy of the test initrd; it is not one of
# tests/s390x/guest/scenarios): binds every function that is on a host driver to vfio-pci and
# gives it back, once through zpcid (one zpcidctl bind and one unbind of all of them) and once
# as a bare shell loop doing the same sysfs writes, in alternating rounds on one boot.
# Prints "# bench-s390x ROUND zpcid SECONDS bare SECONDS cli SECONDS functions N zpcid-bind S
# zpcid-unbind S bare-bind S bare-unbind S", where cli is the cost of starting zpcidctl twice
# (--version) for comparison.
#
# Only the work being compared is timed: the checks of where the functions ended up run
# outside both clocks. zpcid is stopped (SIGSTOP) while the bare loop runs, so that its
# handling of the loop's uevents does not take the one emulated CPU from the loop; once
# continued, it catches up before its own round starts, also outside the clock.
zt_require_bin zpcid || return 0
zt_require_bin zpcidctl || return 0

rounds=7
now() { cut -d' ' -f1 /proc/uptime; }

for m in vfio vfio_iommu_type1 vfio_pci; do
	zt_modprobe "$m" || zt_fail "modprobe $m"
done
if ! zt_zpcid_start; then
	zt_fail "zpcid serves org.zpcid1 on the private system bus" "$(zt_zpcid_log 20)"
	return 0
fi
addrs=
fids=
for a in $(zt_functions); do
	d=$(zt_driver "$a")
	case $d in none | vfio-pci) continue ;; esac
	addrs="$addrs $a=$d"
	fids="$fids $(printf '0x%x' "$(zt_attr "$a" function_id)")"
done
n=$(echo "$addrs" | wc -w)
zt_diag "functions on a host driver:$addrs"

# The writes zpcid's binder makes, without its checks, journal and waiting.
bare_bind() {
	for x in $addrs; do
		a=${x%%=*}
		echo vfio-pci >"$ZT_SYS/bus/pci/devices/$a/driver_override"
		echo "$a" >"$ZT_SYS/bus/pci/devices/$a/driver/unbind"
		echo "$a" >"$ZT_SYS/bus/pci/drivers_probe"
	done
}
bare_unbind() {
	for x in $addrs; do
		a=${x%%=*}
		echo >"$ZT_SYS/bus/pci/devices/$a/driver_override"
		echo "$a" >"$ZT_SYS/bus/pci/devices/$a/driver/unbind"
		echo "$a" >"$ZT_SYS/bus/pci/drivers_probe"
	done
}
drivers() {
	for x in $addrs; do printf '%s ' "$(zt_driver "${x%%=*}")"; done
}
host_drivers() {
	for x in $addrs; do printf '%s ' "${x#*=}"; done
}
vfio_drivers() {
	for x in $addrs; do printf 'vfio-pci '; done
}

# Lets zpcid take in the uevents that came while it was stopped: a call is answered only
# after the main loop has handled what was already waiting.
zpcid_settle() {
	sleep 1
	zt_ctl list >/dev/null 2>&1 || ok=0
}
secs() { echo "$1 $2" | awk '{ printf "%.2f", $1 - $2 }'; }

zpid=$(cat "$ZT_RUN/zpcid.pid")
ok=1
r=1
while [ "$r" -le "$rounds" ]; do
	t0=$(now)
	# Plain zpcidctl, as a user runs it (zt_ctl would add a timeout process); the VM's own
	# time limit catches a hang.
	# shellcheck disable=SC2086 # one argument per FID
	zpcidctl bind $fids --allow-guard net --allow-guard block --json >"$ZT_STATE/bench-bind.json" 2>&1 || ok=0
	t1=$(now)
	# shellcheck disable=SC2086
	zpcidctl unbind $fids --json >"$ZT_STATE/bench-unbind.json" 2>&1 || ok=0
	t2=$(now)
	[ "$(drivers)" = "$(host_drivers)" ] || ok=0
	kill -STOP "$zpid"
	t3=$(now)
	bare_bind
	t4=$(now)
	[ "$(drivers)" = "$(vfio_drivers)" ] || ok=0
	t5=$(now)
	bare_unbind
	t6=$(now)
	[ "$(drivers)" = "$(host_drivers)" ] || ok=0
	kill -CONT "$zpid"
	zpcid_settle
	# What two zpcidctl processes cost before they say anything (emulated dynamic linking).
	t7=$(now)
	zpcidctl --version >/dev/null
	zpcidctl --version >/dev/null
	t8=$(now)
	zb=$(secs "$t1" "$t0")
	zu=$(secs "$t2" "$t1")
	bb=$(secs "$t4" "$t3")
	bu=$(secs "$t6" "$t5")
	echo "# bench-s390x $r zpcid $(secs "$t2" "$t0") bare $(echo "$bb $bu" | awk '{ printf "%.2f", $1 + $2 }') cli $(secs "$t8" "$t7") functions $n zpcid-bind $zb zpcid-unbind $zu bare-bind $bb bare-unbind $bu"
	r=$((r + 1))
done
if [ "$ok" = 1 ]; then
	zt_ok "bench: $rounds rounds of bind and unbind of $n functions, through zpcid and bare"
else
	zt_fail "bench: bind and unbind of $n functions" "$(cat "$ZT_STATE/bench-bind.json" "$ZT_STATE/bench-unbind.json")" "$(zt_zpcid_log 20)"
fi
