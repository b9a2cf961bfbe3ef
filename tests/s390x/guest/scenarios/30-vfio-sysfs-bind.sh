# shellcheck shell=sh
# Raw vfio-pci binding through sysfs, the way zpcid does it: unbind, driver_override,
# drivers_probe; /dev/vfio/<group> appears, and disappears again on unbind.

for m in vfio vfio_iommu_type1 vfio_pci; do
	zt_check "modprobe $m" zt_modprobe "$m"
done
zt_check "vfio-pci driver registered" test -d "$ZT_SYS/bus/pci/drivers/vfio-pci"
zt_check "/dev/vfio/vfio exists" test -c /dev/vfio/vfio

if ! addr=$(zt_by_role spare); then
	zt_fail "spare function for binding tests found" "zpcid.fn has no function with role spare"
	return 0
fi
group=$(zt_iommu_group "$addr")
orig=$(zt_driver "$addr")
zt_diag "using $addr (iommu group $group, driver $orig)"
zt_is "$addr starts on a virtio driver" "$orig" virtio-pci
zt_check "/dev/vfio/$group absent before binding" test ! -e "/dev/vfio/$group"

zt_check "$addr: unbind from $orig" zt_unbind "$addr"
zt_is "$addr: no driver after unbind" "$(zt_driver "$addr")" none

echo vfio-pci >"$ZT_SYS/bus/pci/devices/$addr/driver_override"
zt_is "$addr: driver_override reads back" "$(zt_attr "$addr" driver_override)" vfio-pci
if echo "$addr" >"$ZT_SYS/bus/pci/drivers/$orig/bind" 2>/dev/null; then
	zt_fail "$addr: bind to $orig refused while the override says vfio-pci"
	zt_unbind "$addr"
else
	zt_ok "$addr: bind to $orig refused while the override says vfio-pci"
fi

zt_check "$addr: drivers_probe" sh -c "echo $addr >$ZT_SYS/bus/pci/drivers_probe"
zt_is "$addr: bound to vfio-pci" "$(zt_driver "$addr")" vfio-pci
zt_check "/dev/vfio/$group is a character device" zt_wait 5 test -c "/dev/vfio/$group"
zt_check "vfio-pci lists $addr" test -L "$ZT_SYS/bus/pci/drivers/vfio-pci/$addr"

zt_check "$addr: unbind from vfio-pci" \
	sh -c "echo $addr >$ZT_SYS/bus/pci/drivers/vfio-pci/unbind"
zt_is "$addr: no driver after unbind from vfio-pci" "$(zt_driver "$addr")" none
zt_check "/dev/vfio/$group removed" zt_wait 5 test ! -e "/dev/vfio/$group"

zt_check "$addr: clear driver_override" sh -c "echo >$ZT_SYS/bus/pci/devices/$addr/driver_override"
zt_is "$addr: driver_override cleared" "$(zt_attr "$addr" driver_override)" "(null)"
zt_check "$addr: drivers_probe" sh -c "echo $addr >$ZT_SYS/bus/pci/drivers_probe"
zt_is "$addr: back on $orig" "$(zt_driver "$addr")" "$orig"
