# shellcheck shell=sh
# zpcidctl --host-root / list --json against what QEMU was told (zpcid.fn) and what the kernel
# shows: FIDs, UIDs, addresses, slots named by FID.
zt_require_bin zpcidctl || return 0

out=$ZT_STATE/list.json
if ! zpcidctl --host-root / list --json >"$out" 2>"$ZT_STATE/list.err"; then
	zt_fail "zpcidctl list --json" "$(cat "$ZT_STATE/list.err")"
	return 0
fi
listed=$(zt_json_functions <"$out")
zt_is "list: one entry per PCI function" "$(echo "$listed" | grep -c .)" "$(zt_functions | grep -c .)"

# The functions QEMU was given a FID for
for want in "17 0005:00:00.0 5 net" "32 000a:00:00.0 10 blk" "48 - - rng"; do
	# shellcheck disable=SC2086 # split into fields
	set -- $want
	line=$(echo "$listed" | awk -v f="$1" '$1 == f')
	if [ -z "$line" ]; then
		zt_fail "list: fid $(printf '0x%x' "$1") listed" "$listed"
		continue
	fi
	# shellcheck disable=SC2086
	set -- $want $line
	# $1 fid, $2 address, $3 uid, $4 kind; listed: $5 fid $6 address $7 uid $8 state $9 driver
	addr=$(zt_by_fid "$1")
	zt_is "list: fid $(printf '0x%x' "$1"): address is the kernel's $addr" "$6" "$addr"
	if [ "$2" != - ]; then
		zt_is "list: fid $(printf '0x%x' "$1"): address and uid as QEMU was told" "$6 $7" "$2 $3"
	fi
	zt_is "list: fid $(printf '0x%x' "$1") ($4): on its host driver" "$8 $9" "host virtio-pci"
done

# Every listed function: uid, driver and slot as sysfs has them
echo "$listed" | while read -r fid addr uid _state drv slot; do
	kuid=$(($(zt_attr "$addr" uid)))
	kdrv=$(zt_driver "$addr")
	[ "$kdrv" != none ] || kdrv=-
	sname=$(printf '%08x' "$fid")
	sdir=$ZT_SYS/bus/pci/slots/$sname
	zt_is "list: $addr: uid, driver, slot $sname (address, power) match sysfs" \
		"$uid $drv ${addr%.*} $slot" \
		"$kuid $kdrv $(cat "$sdir/address" 2>/dev/null) $(cat "$sdir/power" 2>/dev/null)"
done
