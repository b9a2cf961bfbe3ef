# shellcheck shell=sh
# zpcid on the guest's system bus binds the virtio-net function (fid 0x11) to vfio-pci for real:
# refused while its interface is up (guard "net"), done with --allow-guard net; unbind gives it
# back to virtio-pci and removes /dev/vfio/<group>.
zt_require_bin zpcid || return 0
zt_require_bin zpcidctl || return 0

for m in vfio vfio_iommu_type1 vfio_pci; do
	zt_modprobe "$m" || zt_fail "modprobe $m"
done
if ! zt_zpcid_start; then
	zt_fail "zpcid serves org.zpcid1 on the private system bus" "$(zt_zpcid_log 20)" \
		"$(tail -n 5 "$ZT_RUN/bus.log" 2>/dev/null)"
	return 0
fi
zt_ok "zpcid serves org.zpcid1 on the private system bus"

addr=$(zt_by_fid 0x11) || {
	zt_fail "fid 0x11 present"
	return 0
}
group=$(zt_iommu_group "$addr")
ifname=$(zt_class_dev "$addr" net)
zt_is "$addr: starts on virtio-pci with an interface" "$(zt_driver "$addr") ${ifname:+yes}" "virtio-pci yes"
ip link set "$ifname" up

out=$ZT_STATE/bind-net.json
rc=0
zt_ctl bind 0x11 --json >"$out" 2>&1 || rc=$?
zt_is "bind 0x11 with $ifname up: refused with org.zpcid1.Error.Busy" \
	"$rc $(zt_json_error <"$out")" "2 org.zpcid1.Error.Busy"
if grep -q "$ifname.*, which is up" "$out" && grep -q 'guard .*net' "$out"; then
	zt_ok "bind 0x11: the refusal names $ifname and the net guard"
else
	zt_fail "bind 0x11: the refusal names $ifname and the net guard" "$(cat "$out")"
fi
zt_is "$addr: still on virtio-pci after the refusal" "$(zt_driver "$addr")" virtio-pci

rc=0
zt_ctl bind 0x11 --allow-guard net --json >"$out" 2>&1 || rc=$?
zt_is "bind 0x11 --allow-guard net: succeeds" "$rc" 0
[ "$rc" = 0 ] || zt_diag "$(cat "$out")" "$(zt_zpcid_log)"
zt_is "bind 0x11: the reply says vfio-pci" "$(zt_json_functions <"$out" | awk '{ print $5 }')" vfio-pci
zt_is "$addr: sysfs driver is vfio-pci" "$(zt_driver "$addr")" vfio-pci
zt_check "/dev/vfio/$group is a character device" zt_wait 5 test -c "/dev/vfio/$group"
zt_is "list shows 0x11 as vfio" \
	"$(zt_ctl list --json 2>/dev/null | zt_json_functions | awk '$1 == 17 { print $4, $5 }')" \
	"vfio vfio-pci"

rc=0
zt_ctl unbind 0x11 --json >"$out" 2>&1 || rc=$?
zt_is "unbind 0x11: succeeds" "$rc" 0
[ "$rc" = 0 ] || zt_diag "$(cat "$out")" "$(zt_zpcid_log)"
zt_is "$addr: back on virtio-pci" "$(zt_driver "$addr")" virtio-pci
zt_check "/dev/vfio/$group removed" zt_wait 5 test ! -e "/dev/vfio/$group"
zt_is "$addr: driver_override cleared" "$(zt_attr "$addr" driver_override)" "(null)"
zt_check "$addr: a network interface again" zt_wait 5 zt_class_dev "$addr" net
