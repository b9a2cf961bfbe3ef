# shellcheck shell=sh
# zpcidctl xml 0x11 0x20 asks zpcid for libvirt hostdev XML: one <hostdev> per function with the
# PCI source address and the zPCI uid/fid of the function (policy mirror: the guest sees the
# host's).
zt_require_bin zpcid || return 0
zt_require_bin zpcidctl || return 0

if ! zt_zpcid_start; then
	zt_fail "zpcid serves org.zpcid1" "$(zt_zpcid_log 20)"
	return 0
fi
out=$ZT_STATE/xml.out
rc=0
zt_ctl xml 0x11 0x20 >"$out" 2>&1 || rc=$?
zt_is "zpcidctl xml 0x11 0x20: succeeds" "$rc" 0
zt_is "two <hostdev> elements" "$(grep -c '<hostdev ' "$out")" 2
for want in '0x0005 0x00000011 0x0005' '0x000a 0x00000020 0x000a'; do
	# shellcheck disable=SC2086 # split into fields
	set -- $want
	if grep -q "<zpci uid=\"$1\" fid=\"$2\"/>" "$out"; then
		zt_ok "xml: <zpci uid=\"$1\" fid=\"$2\"/>"
	else
		zt_fail "xml: <zpci uid=\"$1\" fid=\"$2\"/>" "$(cat "$out")"
	fi
	if grep -q "<address domain=\"$3\" bus=\"0x00\" slot=\"0x00\" function=\"0x0\"/>" "$out"; then
		zt_ok "xml: source address domain $3 (the function's PCI address)"
	else
		zt_fail "xml: source address domain $3 (the function's PCI address)" "$(cat "$out")"
	fi
done
zt_is "xml: both functions managed vfio hostdevs" \
	"$(grep -c "<hostdev mode=\"subsystem\" type=\"pci\" managed=\"yes\">" "$out")" 2
zt_is "xml: functions unchanged by it" "$(zt_driver 0005:00:00.0) $(zt_driver 000a:00:00.0)" \
	"virtio-pci virtio-pci"
