#!/bin/bash
# Boots the emulated IBM Z machine built by build-image.sh and runs the in-VM scenarios
# (tests/s390x/guest/scenarios) or the sysfs capture.
#
# Usage: tests/s390x/run-vm.sh CACHE_DIR [--capture [OUTDIR]] [--only NAME,...] [--shell]
#   (default)          run the scenarios; print their TAP; exit 1 on any failure
#   --capture [OUTDIR] write the guest's zPCI tree to OUTDIR
#                      (default: tests/data/hosts/s390x-qemu-capture)
#   --only NAME,...    run only these scenarios (file names without .sh)
#   --shell            interactive busybox shell on the console (no timeout)
# Environment: ZPCID_VM_TIMEOUT (seconds, default 300), QEMU (default qemu-system-s390x).
#
# The machine (QEMU TCG, s390-ccw-virtio) gets these zPCI functions; the same list goes to the
# guest as zpcid.fn=KIND/UID/FID[/ROLE] so it can compare what its kernel shows:
#   virtio-net  uid 5,  fid 0x11      (explicit)
#   virtio-blk  uid 10, fid 0x20      (explicit; 8 MiB disk with one partition)
#   virtio-rng  uid auto, fid 0x30    (zpci device with a fid only)
#   virtio-rng  auto                  (no zpci device: QEMU creates one)   role spare -> vfio tests
#   virtio-net  auto                  (no zpci device)                      role idle  -> capture
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || {
	sed -n '5,11s/^# \{0,1\}//p' "$0" >&2
	exit 2
}
cache=$(cd "$1" && pwd)
shift
mode="test"
capture_out=$(realpath -m "$here/../data/hosts/s390x-qemu-capture")
only=
while [ $# -gt 0 ]; do
	case $1 in
	--capture)
		mode=capture
		if [ $# -ge 2 ] && [ "${2#--}" = "$2" ]; then
			capture_out=$2
			shift
		fi
		;;
	--only)
		only=$2
		shift
		;;
	--shell) mode=shell ;;
	*)
		echo "run-vm.sh: unknown argument $1" >&2
		exit 2
		;;
	esac
	shift
done

qemu=${QEMU:-qemu-system-s390x}
timeout_s=${ZPCID_VM_TIMEOUT:-300}
for f in vmlinuz initrd.img; do
	[ -f "$cache/$f" ] || {
		echo "run-vm.sh: $cache/$f missing: run tests/s390x/build-image.sh $cache first" >&2
		exit 2
	}
done
command -v "$qemu" >/dev/null || {
	echo "run-vm.sh: $qemu not found (apt-get install qemu-system-misc)" >&2
	exit 2
}

# 8 MiB raw disk with an MBR and one Linux partition (sectors 2048..16383)
disk=$cache/disk0.img
if [ ! -f "$disk" ]; then
	truncate -s 8M "$disk.tmp"
	printf '\x00\xfe\xff\xff\x83\xfe\xff\xff\x00\x08\x00\x00\x00\x38\x00\x00' |
		dd of="$disk.tmp" bs=1 seek=446 conv=notrunc status=none
	printf '\x55\xaa' | dd of="$disk.tmp" bs=1 seek=510 conv=notrunc status=none
	mv "$disk.tmp" "$disk"
fi

fn="net/5/0x11,blk/10/0x20,rng/*/0x30,rng/*/*/spare,net/*/*/idle"
append="console=ttysclp0 panic=-1 zpcid.mode=$mode zpcid.fn=$fn${only:+ zpcid.only=$only}"
# shellcheck disable=SC2054 # commas belong to QEMU option values
qemu_args=(
	-M s390-ccw-virtio -cpu max -m 1024 -smp 1
	-nodefaults -no-user-config -no-reboot -display none
	-kernel "$cache/vmlinuz" -initrd "$cache/initrd.img" -append "$append"
	-netdev user,id=hn0,restrict=on
	-netdev user,id=hn1,restrict=on
	-device zpci,uid=5,fid=0x11,target=net0
	-device virtio-net-pci,id=net0,netdev=hn0
	-drive if=none,id=disk0,format=raw,file="$disk"
	-device zpci,uid=10,fid=0x20,target=blk0
	-device virtio-blk-pci,id=blk0,drive=disk0
	-device zpci,fid=0x30,target=rng0
	-device virtio-rng-pci,id=rng0
	-device virtio-rng-pci,id=rng1
	-device virtio-net-pci,id=net1,netdev=hn1
)

if [ "$mode" = shell ]; then
	exec "$qemu" "${qemu_args[@]}" -serial mon:stdio
fi

console=$cache/console-$mode.log
echo "# booting $($qemu --version | head -n1), console log: $console" >&2
start=$(date +%s)
rc=0
timeout -k 10 "$timeout_s" "$qemu" "${qemu_args[@]}" -serial "file:$console" \
	</dev/null >"$cache/qemu-$mode.log" 2>&1 || rc=$?
echo "# qemu exited with status $rc after $(($(date +%s) - start)) s" >&2
if [ "$rc" -ne 0 ]; then
	[ "$rc" -ne 124 ] || echo "# timeout after $timeout_s s" >&2
	sed 's/^/# qemu: /' "$cache/qemu-$mode.log" >&2
fi

# The console log with CR stripped, between BEGIN and END markers
between() {
	tr -d '\r' <"$console" | awk -v b="$1" -v e="$2" '$0 == e { exit } on { print } $0 == b { on = 1 }'
}
console_tail() {
	echo "# last console lines:" >&2
	tr -d '\r' <"$console" | tail -n 40 | sed 's/^/#   /' >&2
}

if [ "$mode" = capture ]; then
	if ! tr -d '\r' <"$console" | grep -qx ZPCID-CAPTURE-END; then
		echo "run-vm.sh: capture incomplete" >&2
		console_tail
		exit 1
	fi
	tmp=$(mktemp -d "$cache/capture.XXXXXX")
	between ZPCID-CAPTURE-BEGIN ZPCID-CAPTURE-END | base64 -d | gzip -dc | tar -C "$tmp" -xf -
	krel=$(cat "$tmp/proc/sys/kernel/osrelease")
	qver=$($qemu --version | sed -n '1s/^QEMU emulator version //p')
	echo "QEMU $qver TCG s390-ccw-virtio guest, Debian kernel $krel: 5 virtio zPCI functions" \
		"(net uid 5 fid 0x11, blk uid 10 fid 0x20, rng fid 0x30, auto rng on vfio-pci," \
		"auto net unbound), UID checking on, no SIE so no KVM; captured by" \
		"tests/s390x/run-vm.sh --capture" >"$tmp/README"
	mkdir -p "$tmp/fixture"
	echo "221 0" >"$tmp/fixture/kvm-check-extension"
	# git keeps no empty directories: drop them so a checkout equals what was captured
	find "$tmp" -mindepth 1 -type d -empty -delete
	rm -rf "$capture_out"
	mkdir -p "$(dirname "$capture_out")"
	mv "$tmp" "$capture_out"
	chmod 755 "$capture_out"
	echo "# capture written to $capture_out ($(find "$capture_out" | wc -l) entries," \
		"$(du -sh "$capture_out" | cut -f1))" >&2
	exit 0
fi

tap=$(between ZPCID-TAP-BEGIN ZPCID-TAP-END)
echo "$tap"
if ! tr -d '\r' <"$console" | grep -qx ZPCID-TAP-END; then
	echo "not ok - the guest did not finish its scenarios"
	console_tail
	exit 1
fi
plan=$(echo "$tap" | sed -n 's/^1\.\.\([0-9]*\)$/\1/p')
results=$(echo "$tap" | grep -cE '^(not )?ok ' || true)
failed=$(echo "$tap" | grep -E '^not ok ' | grep -cvE '# *TODO' || true)
skipped=$(echo "$tap" | grep -cE '^ok .*# *SKIP' || true)
if [ -z "$plan" ] || [ "$plan" != "$results" ]; then
	echo "# plan '$plan' does not match $results results" >&2
	failed=$((failed + 1))
fi
echo "$((results - failed - skipped)) passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
