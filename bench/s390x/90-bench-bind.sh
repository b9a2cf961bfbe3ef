# shellcheck shell=sh
# Benchmark only (bench/run-bench.py appends it to a copy of the test initrd; it is not one of
# tests/s390x/guest/scenarios): binds every function that is on a host driver to vfio-pci and
# gives it back, once through zpcid (one zpcidctl bind and one unbind of all of them) and once
# as a bare shell loop doing the same sysfs writes, in alternating rounds on one boot.
# Prints "# bench-s390x ROUND zpcid SECONDS bare SECONDS cli SECONDS functions N", where cli is
# the cost of starting zpcidctl twice (--version) for comparison.
zt_require_bin zpcid || return 0
zt_require_bin zpcidctl || return 0

rounds=5
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

ok=1
r=1
while [ "$r" -le "$rounds" ]; do
	t0=$(now)
	# shellcheck disable=SC2086 # one argument per FID
	zt_ctl bind $fids --allow-guard net --allow-guard block --json >"$ZT_STATE/bench-bind.json" 2>&1 || ok=0
	# shellcheck disable=SC2086
	zt_ctl unbind $fids --json >"$ZT_STATE/bench-unbind.json" 2>&1 || ok=0
	t1=$(now)
	[ "$(drivers)" = "$(host_drivers)" ] || ok=0
	bare_bind
	[ "$(drivers)" = "$(vfio_drivers)" ] || ok=0
	bare_unbind
	t2=$(now)
	[ "$(drivers)" = "$(host_drivers)" ] || ok=0
	# What two zpcidctl processes cost before they say anything (emulated dynamic linking).
	zpcidctl --version >/dev/null
	zpcidctl --version >/dev/null
	t3=$(now)
	echo "# bench-s390x $r zpcid $(echo "$t1 $t0" | awk '{ printf "%.2f", $1 - $2 }') bare $(echo "$t2 $t1" | awk '{ printf "%.2f", $1 - $2 }') cli $(echo "$t3 $t2" | awk '{ printf "%.2f", $1 - $2 }') functions $n"
	r=$((r + 1))
done
if [ "$ok" = 1 ]; then
	zt_ok "bench: $rounds rounds of bind and unbind of $n functions, through zpcid and bare"
else
	zt_fail "bench: bind and unbind of $n functions" "$(cat "$ZT_STATE/bench-bind.json" "$ZT_STATE/bench-unbind.json")" "$(zt_zpcid_log 20)"
fi
