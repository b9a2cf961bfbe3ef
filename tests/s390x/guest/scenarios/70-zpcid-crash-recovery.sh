# shellcheck shell=sh
# A bind that dies half way is repaired when zpcid starts: the function ends as it was before
# or as the bind wanted, never in between, and the journal (binder.json in the state directory)
# keeps no open transaction. Uses the virtio-rng function fid 0x30.
#  1. deterministic: zpcid-bind-helper (the binder code of zpcid, a test program) kills itself
#     with SIGKILL at crash point 6 of the bind, right after the unbind from virtio-pci (points
#     1-2: the journal's first record, 3-4: around the override write, 5-6: around the unbind;
#     forward steps are not journaled one by one). It refuses the real root, so it works on a
#     second sysfs/proc mount under /tmp/hostroot.
#  2. zpcid itself gets SIGKILL while it carries out a bind asked over D-Bus; where it dies
#     depends on timing, the repair must hold either way.
zt_require_bin zpcid || return 0
zt_require_bin zpcidctl || return 0

addr=$(zt_by_fid 0x30) || {
	zt_fail "fid 0x30 present"
	return 0
}
journal=$ZT_ZPCID_STATE/binder.json
open_txn() { grep -q '"operation"' "$journal" 2>/dev/null; }
state() { echo "$(zt_driver "$addr") $(zt_attr "$addr" driver_override)"; }
# After a repair: all before (virtio-pci, no override) or all after (vfio-pci and its override)
check_repaired() {
	case $(state) in
	"virtio-pci (null)") zt_ok "$1: $addr all before the bind (virtio-pci)" ;;
	"vfio-pci vfio-pci") zt_ok "$1: $addr all after the bind (vfio-pci)" ;;
	*) zt_fail "$1: $addr all before or all after the bind" "driver and override: $(state)" \
		"$(zt_zpcid_log)" ;;
	esac
	if open_txn; then
		zt_fail "$1: the journal has no open transaction" "$(cat "$journal")"
	else
		zt_ok "$1: the journal has no open transaction"
	fi
	zt_is "$1: zpcid lists 0x30 with the kernel's driver" \
		"$(zt_ctl list --json 2>/dev/null | zt_json_functions | awk '$1 == 48 { print $5 }')" \
		"$(zt_driver "$addr")"
}
# Back to virtio-pci for the next part and the next scenarios
restore() {
	if [ "$(zt_driver "$addr")" = vfio-pci ]; then
		zt_ctl unbind 0x30 >/dev/null 2>&1 || zt_diag "unbind 0x30 failed"
	fi
	zt_is "$1: $addr on virtio-pci again" "$(state)" "virtio-pci (null)"
}

for m in vfio vfio_iommu_type1 vfio_pci; do
	zt_modprobe "$m" || zt_fail "modprobe $m"
done
zt_is "$addr starts on virtio-pci" "$(state)" "virtio-pci (null)"

# --- 1. the binder killed at a known step -------------------------------------------------------
if command -v zpcid-bind-helper >/dev/null 2>&1; then
	zt_zpcid_stop || zt_fail "zpcid stops on SIGTERM"
	hr=/tmp/hostroot
	mkdir -p "$hr/sys" "$hr/proc" "$hr/dev"
	mountpoint -q "$hr/sys" 2>/dev/null || mount -t sysfs sysfs "$hr/sys"
	mountpoint -q "$hr/proc" 2>/dev/null || mount -t proc proc "$hr/proc"
	mkdir -p "$ZT_ZPCID_STATE"
	rc=0
	ZPCID_CRASH_AT_STEP=6 zpcid-bind-helper "$hr" "$ZT_ZPCID_STATE" bind 0x30 \
		>"$ZT_STATE/helper.out" 2>&1 || rc=$?
	zt_is "helper: killed by SIGKILL in the middle of bind 0x30" "$rc" 137
	if open_txn; then
		zt_ok "helper: the journal holds the open transaction"
	else
		zt_fail "helper: the journal holds the open transaction" "$(cat "$journal" 2>/dev/null)"
	fi
	zt_is "helper: $addr left half moved (no driver, override vfio-pci)" "$(state)" "none vfio-pci"
	umount "$hr/proc" "$hr/sys"
	if zt_zpcid_start; then
		zt_ok "helper: zpcid starts on the journal"
		check_repaired "helper crash"
	else
		zt_fail "helper: zpcid starts on the journal" "$(zt_zpcid_log 20)"
	fi
	restore "helper crash"
else
	zt_skip "binder killed at a known step" "zpcid-bind-helper not built"
fi

# --- 2. zpcid killed while it binds --------------------------------------------------------------
if ! zt_zpcid_start; then
	zt_fail "zpcid serves org.zpcid1" "$(zt_zpcid_log 20)"
	return 0
fi
pid=$(cat "$ZT_RUN/zpcid.pid")
zt_ctl bind 0x30 >"$ZT_STATE/killed-bind.out" 2>&1 &
client=$!
# Kill as soon as the transaction is in the journal (or the bind is over).
n=0
while ! open_txn && [ "$(zt_driver "$addr")" = virtio-pci ] && [ "$n" -lt 3000 ]; do
	n=$((n + 1))
done
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
if open_txn; then
	zt_diag "zpcid killed with the bind's transaction open (driver $(zt_driver "$addr"))"
else
	zt_diag "zpcid killed outside the transaction (driver $(zt_driver "$addr"))"
fi
wait "$client" 2>/dev/null || true
zt_check "zpcid is gone after SIGKILL" zt_wait 10 _zt_gone "$pid"
rm -f "$ZT_RUN/zpcid.pid"
if zt_zpcid_start; then
	zt_ok "zpcid starts again after SIGKILL"
	check_repaired "SIGKILL"
else
	zt_fail "zpcid starts again after SIGKILL" "$(zt_zpcid_log 20)"
fi
restore "SIGKILL"
