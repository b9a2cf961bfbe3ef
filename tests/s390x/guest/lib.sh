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
zt_diag() { echo "$*" | sed 's/^/# /'; }
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
# zt_class_dev ADDR net|block: the first network interface or disk of a virtio function
zt_class_dev() {
	for _zt_n in "$ZT_SYS/bus/pci/devices/$1"/virtio*/"$2"/*; do
		[ -e "$_zt_n" ] && basename "$_zt_n" && return 0
	done
	return 1
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

# --- zpcidctl JSON (json-glib's pretty printing: one member per line) ---------------------------

# zt_json_top KEY < FILE: value of a top-level member of an object, as printed ("none" quoted)
zt_json_top() {
	awk -v k="\"$1\"" '$1 == k && $2 == ":" && /^  "/ { v = $0; sub(/^[^:]*: /, "", v); sub(/,$/, "", v); print v; exit }'
}

# zt_json_check ID < FILE: status of the check ID in a "check --json" report
zt_json_check() {
	awk -v id="$1" '
		/^ *"id" : / { cur = $0; sub(/^ *"id" : "/, "", cur); sub(/".*/, "", cur) }
		/^ *"status" : / && cur == id { s = $0; sub(/^ *"status" : "/, "", s); sub(/".*/, "", s); print s; exit }'
}

# zt_json_failed < FILE: ids of the failing checks of a "check --json" report, one line
zt_json_failed() {
	awk '
		/^ *"id" : / { cur = $0; sub(/^ *"id" : "/, "", cur); sub(/".*/, "", cur) }
		/^ *"status" : "fail"/ { printf "%s%s", sep, cur; sep = " " }
		END { print "" }'
}

# zt_json_functions < FILE: "list --json" (or bind/unbind --json) as one line per function:
# fid(decimal) address uid(decimal) state driver slot_power
zt_json_functions() {
	awk '
		function val(line) { sub(/^ *"[^"]*" : /, "", line); sub(/,$/, "", line); gsub(/"/, "", line); return line }
		/^    "fid" : / { fid = val($0) }
		/^    "address" : / { addr = val($0) }
		/^    "uid" : / { uid = val($0) }
		/^    "state" : / { state = val($0) }
		/^    "driver" : / { drv = val($0); if (drv == "") drv = "-" }
		/^    "slot_power" : / { sp = val($0) }
		/^  }/ { print fid, addr, uid, state, drv, sp; fid = addr = uid = state = drv = sp = "" }'
}

# zt_json_error < FILE: the D-Bus error name of a zpcidctl --json error ("" when none)
zt_json_error() {
	awk '/^    "name" : / { v = $0; sub(/^ *"name" : "/, "", v); sub(/".*/, "", v); print v; exit }'
}

# --- zpcid on a private system bus ---------------------------------------------------------------
# dbus-daemon runs with guest/system-bus.conf (Debian's system bus policy plus
# /etc/dbus-1/system.d/org.zpcid1.conf); zpcid serves it with --system, so it may change the live
# host "/" of this VM. zpcidctl finds it through $ZPCID_BUS_ADDRESS.

ZT_RUN=/run/zpcid-test
ZT_BUS=unix:path=$ZT_RUN/system_bus_socket
ZT_ZPCID_STATE=$ZT_RUN/state
DBUS_SYSTEM_BUS_ADDRESS=$ZT_BUS
ZPCID_BUS_ADDRESS=$ZT_BUS
export DBUS_SYSTEM_BUS_ADDRESS ZPCID_BUS_ADDRESS

# zt_running PID: the process exists and is no zombie
zt_running() {
	[ -r "/proc/$1/stat" ] || return 1
	_zt_st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$_zt_st" ] && [ "$_zt_st" != Z ]
}
# zt_pid_alive PIDFILE
zt_pid_alive() { [ -f "$1" ] && zt_running "$(cat "$1")"; }

zt_bus_start() {
	zt_pid_alive "$ZT_RUN/bus.pid" && return 0
	mkdir -p "$ZT_RUN"
	rm -f "$ZT_RUN/system_bus_socket"
	dbus-daemon --config-file="$ZT_DIR/system-bus.conf" --nofork --nopidfile \
		</dev/null >>"$ZT_RUN/bus.log" 2>&1 &
	echo $! >"$ZT_RUN/bus.pid"
	zt_wait 20 test -S "$ZT_RUN/system_bus_socket"
}

# zpcidctl with a time limit, so that a hung daemon fails the scenario instead of the whole run
zt_ctl() { timeout 60 zpcidctl "$@"; }

# True when org.zpcid1 answers (a ServiceUnknown error comes back at once otherwise).
zt_zpcid_up() { timeout 20 zpcidctl list >/dev/null 2>&1; }

# zt_zpcid_start [ZPCID-OPTION...]: the bus and zpcid, unless zpcid runs already
zt_zpcid_start() {
	zt_pid_alive "$ZT_RUN/zpcid.pid" && return 0
	zt_bus_start || return 1
	mkdir -p "$ZT_ZPCID_STATE"
	zpcid --system --state-dir "$ZT_ZPCID_STATE" --libvirt-uri test:///default "$@" \
		</dev/null >>"$ZT_RUN/zpcid.log" 2>&1 &
	echo $! >"$ZT_RUN/zpcid.pid"
	_zt_left=600
	until zt_zpcid_up; do
		zt_pid_alive "$ZT_RUN/zpcid.pid" || return 1
		[ "$_zt_left" -gt 0 ] || return 1
		_zt_left=$((_zt_left - 1))
		usleep 100000
	done
}

_zt_gone() { ! zt_running "$1"; }

# zt_zpcid_stop [SIGNAL]: stop zpcid (default TERM) and wait until it is gone
zt_zpcid_stop() {
	zt_pid_alive "$ZT_RUN/zpcid.pid" || return 0
	_zt_pid=$(cat "$ZT_RUN/zpcid.pid")
	kill "-${1:-TERM}" "$_zt_pid"
	# a child of this shell is reaped here; otherwise init reaps it
	wait "$_zt_pid" 2>/dev/null || true
	zt_wait 20 _zt_gone "$_zt_pid" || return 1
	rm -f "$ZT_RUN/zpcid.pid"
}

# The last lines of zpcid's log, as TAP diagnostics
zt_zpcid_log() { tail -n "${1:-10}" "$ZT_RUN/zpcid.log" 2>/dev/null | sed 's/^/zpcid: /'; }
