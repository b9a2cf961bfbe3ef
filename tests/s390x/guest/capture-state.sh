# shellcheck shell=sh
# Brings the guest into the state recorded by the capture (tests/data/hosts/s390x-qemu-capture):
# vfio modules loaded, the "spare" function on vfio-pci, the "idle" one unbound, the rest on
# their virtio drivers, network interfaces up. kvm is tried (and fails: no SIE under TCG).
# Records each function's original driver for fixture/native-drivers first.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. /zpcid-test/lib.sh

# fixture/native-drivers: the driver each function has before anything is changed
{
	echo "# <pci address> <driver the kernel would probe without driver_override>"
	for a in $(zt_functions); do
		echo "$a $(zt_driver "$a")"
	done
} >"$ZT_STATE/native-drivers"

for m in vfio vfio_iommu_type1 vfio_pci; do
	zt_modprobe "$m" || echo "capture: modprobe $m failed"
done
zt_modprobe kvm 2>/dev/null || true
if addr=$(zt_by_role spare); then
	zt_rebind "$addr" vfio-pci || echo "capture: binding $addr to vfio-pci failed"
	zt_wait 5 test -c "/dev/vfio/$(zt_iommu_group "$addr")" || echo "capture: no /dev/vfio node"
fi
if addr=$(zt_by_role idle); then
	zt_unbind "$addr" || echo "capture: unbinding $addr failed"
fi
for n in /sys/class/net/*; do
	ip link set "$(basename "$n")" up 2>/dev/null || true
done
sleep 1
