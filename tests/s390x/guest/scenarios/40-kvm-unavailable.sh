# shellcheck shell=sh
# Under TCG the guest has no SIE: kvm.ko refuses to load with ENODEV, there is no /dev/kvm.

if out=$(zt_modprobe kvm 2>&1); then
	zt_fail "modprobe kvm fails" "it loaded"
else
	zt_ok "modprobe kvm fails"
fi
case $out in
*"No such device"*) zt_ok "kvm: error is ENODEV" ;;
*) zt_fail "kvm: error is ENODEV" "insmod said: $out" ;;
esac
if dmesg | grep -q "SIE is not available"; then
	zt_ok "kvm: kernel says SIE is not available"
else
	zt_fail "kvm: kernel says SIE is not available" "$(dmesg | grep -i kvm | tail -n 3)"
fi
zt_check "no /dev/kvm" test ! -e /dev/kvm
zt_check "no kvm module loaded" test ! -e "$ZT_SYS/module/kvm/initstate"
if grep '^features' /proc/cpuinfo | grep -qw sie; then
	zt_fail "cpuinfo features lack sie" "$(grep '^features' /proc/cpuinfo)"
else
	zt_ok "cpuinfo features lack sie"
fi
