# shellcheck shell=sh
# zpcidctl --host-root / check --json on the live guest, before and after the vfio modules are
# loaded. Without SIE (TCG) there is no KVM: the passthrough verdict holds (vfio-pci binding
# works; before loading, the vfio checks only warn, since zpcid or libvirt load the modules),
# the interpretation verdict fails because of KVM, and loading vfio makes every vfio check pass.
# Runs before 30-vfio-sysfs-bind, which loads vfio.
zt_require_bin zpcidctl || return 0

# zt_check_report WHEN FILE STATUS: common expectations of one report
check_report() {
	zt_is "check $1: exit status 1 (interpretation not ready)" "$3" 1
	zt_is "check $1: verdict passthrough, no interpretation" \
		"$(zt_json_top verdict <"$2") $(zt_json_top passthrough <"$2") $(zt_json_top interpretation <"$2")" \
		'"passthrough" true false'
	zt_is "check $1: architecture, zpci facility, functions, IOMMU groups pass" \
		"$(for c in architecture zpci-facility functions iommu-groups uid-checking config-vfio-pci; do
			zt_json_check "$c" <"$2"
		done | tr '\n' ' ')" "pass pass pass pass pass pass "
	zt_is "check $1: sie and kvm-module fail (no SIE under TCG)" \
		"$(zt_json_check sie <"$2") $(zt_json_check kvm-module <"$2")" "fail fail"
}

if zt_module_loaded vfio_pci || zt_module_loaded vfio; then
	zt_fail "vfio is not loaded before this scenario"
fi
before=$ZT_STATE/check-before.json
rc=0
zpcidctl --host-root / check --json >"$before" 2>"$ZT_STATE/check-before.err" || rc=$?
check_report "before vfio" "$before" "$rc"
zt_is "check before vfio: vfio-modules and dev-vfio warn (loadable, not loaded)" \
	"$(zt_json_check vfio-modules <"$before") $(zt_json_check dev-vfio <"$before")" "warn warn"

for m in vfio vfio_iommu_type1 vfio_pci; do
	zt_modprobe "$m" || zt_fail "modprobe $m"
done

after=$ZT_STATE/check-after.json
rc=0
zpcidctl --host-root / check --json >"$after" 2>"$ZT_STATE/check-after.err" || rc=$?
check_report "after vfio" "$after" "$rc"
zt_is "check after vfio: vfio-modules and dev-vfio pass" \
	"$(zt_json_check vfio-modules <"$after") $(zt_json_check dev-vfio <"$after")" "pass pass"
# Everything passthrough needs from vfio and the functions is there: the failures left are the
# ones that no SIE means (and the hypervisor check: QEMU reports itself as KVM/Linux).
zt_is "check after vfio: only the KVM/SIE checks fail" "$(zt_json_failed <"$after")" \
	"hypervisor sie kvm-module dev-kvm kvm-cap-zpci-op"
rc=0
zpcidctl --host-root / check --verdict passthrough >/dev/null 2>&1 || rc=$?
zt_is "check --verdict passthrough: exit status 0 (passthrough ready)" "$rc" 0
