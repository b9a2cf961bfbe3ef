# shellcheck shell=sh
# Helpers for the in-VM test scenarios (busybox sh). Sourced by run-scenarios.sh and by each
# scenario (tests/s390x/guest/scenarios/*.sh).
#
# TAP: every result goes through zt_ok / zt_fail / zt_skip / zt_check / zt_is, which number it
# with a counter kept in a file, so scenarios may run in subshells.

ZT_DIR=${ZT_DIR:-/zpcid-test}
ZT_STATE=${ZT_STATE:-/tmp/zpcid-test}
ZT_SYS=/sys
mkdir -p "$ZT_STATE"

zt_count() { cat "$ZT_STATE/count" 2>/dev/null || echo 0; }
zt_failures() { cat "$ZT_STATE/failures" 2>/dev/null || echo 0; }

# zt_result ok|not-ok DESCRIPTION [DIRECTIVE]
zt_result() {
	_zt_n=$(($(zt_count) + 1))
	echo "$_zt_n" >"$ZT_STATE/count"
	if [ "$1" = ok ]; then
		echo "ok $_zt_n - $2${3:+ # $3}"
	else
		echo "$(($(zt_failures) + 1))" >"$ZT_STATE/failures"
		echo "not ok $_zt_n - $2${3:+ # $3}"
	fi
}
zt_diag() { echo "# $*"; }
zt_ok() { zt_result ok "$1"; }
# zt_fail DESCRIPTION [DIAGNOSTIC...]
zt_fail() {
	zt_result not-ok "$1"
	shift
	for _zt_d in "$@"; do zt_diag "$_zt_d"; done
}
zt_skip() { zt_result ok "$1" "SKIP ${2:-}"; }
# zt_check DESCRIPTION COMMAND [ARG...]: ok when the command succeeds (its output is diagnostics)
zt_check() {
	_zt_desc=$1
	shift
	if _zt_out=$("$@" 2>&1); then
		zt_ok "$_zt_desc"
	else
		zt_fail "$_zt_desc" "command failed: $*" ${_zt_out:+"$_zt_out"}
	fi
}
# zt_is DESCRIPTION GOT EXPECTED
zt_is() {
	if [ "$2" = "$3" ]; then
		zt_ok "$1"
	else
		zt_fail "$1" "got:      '$2'" "expected: '$3'"
	fi
}
# zt_require_bin NAME: skip the rest of the scenario when a zpcid binary was not built.
# Use as:  zt_require_bin zpcidctl || return 0
zt_require_bin() {
	if command -v "$1" >/dev/null 2>&1; then
		return 0
	fi
	zt_skip "${ZT_SCENARIO:-scenario}" "$1 not built"
	return 1
}

# zt_wait SECONDS COMMAND [ARG...]: poll until the command succeeds
zt_wait() {
	_zt_left=$(($1 * 10))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$_zt_left" -gt 0 ] || return 1
		_zt_left=$((_zt_left - 1))
		usleep 100000
	done
}

# --- the machine as QEMU was told about it ------------------------------------------------------

# zt_cmdline_param NAME: value of NAME=... on the kernel command line
zt_cmdline_param() {
	# shellcheck disable=SC2013 # words, not lines
	for _zt_w in $(cat /proc/cmdline); do
		case $_zt_w in
		"$1"=*) echo "${_zt_w#*=}" && return 0 ;;
		esac
	done
	return 1
}

# Expected functions, one per line: "KIND UID FID ROLE" (UID/FID "*" = QEMU assigns, ROLE "-" or
# a name such as spare or idle). From zpcid.fn=KIND/UID/FID[/ROLE],... on the command line.
zt_expected() {
	zt_cmdline_param zpcid.fn | tr ',' '\n' | awk -F/ 'NF >= 3 { print $1, $2, $3, ($4 == "" ? "-" : $4) }'
}

# --- sysfs helpers -----------------------------------------------------------------------------

zt_functions() { ls "$ZT_SYS/bus/pci/devices" 2>/dev/null; }
zt_attr() { cat "$ZT_SYS/bus/pci/devices/$1/$2" 2>/dev/null; }
zt_driver() {
	if [ -L "$ZT_SYS/bus/pci/devices/$1/driver" ]; then
		basename "$(readlink "$ZT_SYS/bus/pci/devices/$1/driver")"
	else
		echo none
	fi
}
zt_iommu_group() { basename "$(readlink "$ZT_SYS/bus/pci/devices/$1/iommu_group")"; }

# Virtio kind of a function (net, blk, rng, ...) from its PCI IDs: modern devices are
# 0x1040 + virtio type, transitional ones carry the type in subsystem_device.
zt_kind() {
	[ "$(zt_attr "$1" vendor)" = 0x1af4 ] || {
		echo other
		return
	}
	_zt_dev=$(($(zt_attr "$1" device)))
	if [ "$_zt_dev" -ge $((0x1040)) ]; then
		_zt_type=$((_zt_dev - 0x1040))
	else
		_zt_type=$(($(zt_attr "$1" subsystem_device)))
	fi
	case $_zt_type in
	1) echo net ;;
	2) echo blk ;;
	4) echo rng ;;
	*) echo "virtio$_zt_type" ;;
	esac
}

# zt_by_fid FID: address of the function with that FID
zt_by_fid() {
	for _zt_a in $(zt_functions); do
		if [ $(($(zt_attr "$_zt_a" function_id))) -eq $(($1)) ]; then
			echo "$_zt_a"
			return 0
		fi
	done
	return 1
}

# zt_by_role ROLE: address of the function whose expectation has that role. Explicit FIDs are
# looked up directly; for an automatic FID the first function of that kind with no explicitly
# requested FID is taken.
zt_by_role() {
	_zt_line=$(zt_expected | awk -v r="$1" '$4 == r { print; exit }')
	[ -n "$_zt_line" ] || return 1
	read -r _zt_kind _zt_uid _zt_fid _zt_role <<EOF
$_zt_line
EOF
	if [ "$_zt_fid" != "*" ]; then
		zt_by_fid "$_zt_fid"
		return
	fi
	_zt_explicit=$(zt_expected | awk '$3 != "*" { print $3 }')
	for _zt_a in $(zt_functions); do
		[ "$(zt_kind "$_zt_a")" = "$_zt_kind" ] || continue
		_zt_f=$(($(zt_attr "$_zt_a" function_id)))
		_zt_taken=0
		for _zt_e in $_zt_explicit; do
			[ $((_zt_e)) -eq "$_zt_f" ] && _zt_taken=1
		done
		if [ "$_zt_taken" = 0 ]; then
			echo "$_zt_a"
			return 0
		fi
	done
	return 1
}

# Move a function to another driver the way zpcid does: unbind, driver_override, drivers_probe.
# zt_rebind ADDR DRIVER ("" = clear the override and let the kernel pick)
zt_rebind() {
	_zt_dev=$ZT_SYS/bus/pci/devices/$1
	if [ -L "$_zt_dev/driver" ]; then
		echo "$1" >"$_zt_dev/driver/unbind" || return 1
	fi
	echo "$2" >"$_zt_dev/driver_override" || return 1
	echo "$1" >"$ZT_SYS/bus/pci/drivers_probe" || return 1
}

# Unbind a function and leave it without a driver.
zt_unbind() {
	if [ -L "$ZT_SYS/bus/pci/devices/$1/driver" ]; then
		echo "$1" >"$ZT_SYS/bus/pci/devices/$1/driver/unbind"
	fi
}

# The guest's modprobe (tests/s390x/guest/modprobe); busybox sh would run its own applet.
zt_modprobe() { /usr/local/bin/modprobe "$@"; }

zt_module_loaded() { [ -e "$ZT_SYS/module/$(echo "$1" | tr - _)/initstate" ]; }
