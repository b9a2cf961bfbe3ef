#!/bin/sh
# Copies the zPCI-relevant part of this machine's /sys, /proc, /boot, /lib/modules and /dev
# into a host tree (layout: docs/host-trees.md), keeping the kernel's relative symlinks.
# Runs inside the test VM (busybox sh); works on any Linux host as well.
#
# Usage: capture-sysfs.sh OUTDIR [--stream]
#   --stream  also writes OUTDIR as gzip'd tar in base64 to stdout between the lines
#             ZPCID-CAPTURE-BEGIN and ZPCID-CAPTURE-END (read back by run-vm.sh --capture)
#
# Not copied: binary or large attributes (config, resource*, rom, vpd), I/O counters (stat,
# inflight), uevent, modalias, power/, msi_irqs/.
# Write-only attributes (bind, unbind, remove, ...) become empty files; device nodes under /dev
# become empty files; modules.dep keeps only the lines of the zPCI/vfio/kvm/virtio modules.
set -eu

[ $# -ge 1 ] || {
	echo "usage: $0 OUTDIR [--stream]" >&2
	exit 2
}
out=$1
stream=${2:-}
rm -rf "$out"
mkdir -p "$out"

# copy_entry SRC: one file or symlink, same relative path under $out
copy_entry() {
	src=$1
	dst=$out$src
	mkdir -p "$(dirname "$dst")"
	if [ -L "$src" ]; then
		ln -sfn "$(readlink "$src")" "$dst"
	elif [ -f "$src" ]; then
		case ${src##*/} in
		config | rom | vpd | resource | resource[0-9]* | uevent | modalias) return 0 ;;
		stat | inflight) return 0 ;; # I/O counters: differ on every run
		esac
		mode=$(stat -c %a "$src")
		case $mode in
		*[4567]??) cat "$src" >"$dst" 2>/dev/null || rm -f "$dst" ;;
		*) : >"$dst" ;; # write-only attribute
		esac
	elif [ -c "$src" ] || [ -b "$src" ]; then
		: >"$dst"
	fi
}

# copy_level DIR: the files and symlinks directly in DIR
copy_level() {
	[ -d "$1" ] || return 0
	mkdir -p "$out$1"
	for e in "$1"/* "$1"/.[!.]*; do
		[ -e "$e" ] || [ -L "$e" ] || continue
		if [ -L "$e" ] || [ ! -d "$e" ]; then
			copy_entry "$e"
		fi
	done
}

# copy_tree DIR: everything below DIR (small directories only)
copy_tree() {
	[ -d "$1" ] || return 0
	copy_level "$1"
	for e in "$1"/*; do
		if [ -d "$e" ] && [ ! -L "$e" ]; then
			copy_tree "$e"
		fi
	done
}

# A PCI function's directory: attributes, links, pfip/, and its virtio child with net/block.
copy_function() {
	d=$1
	copy_level "$d"
	copy_level "$d/pfip"
	for v in "$d"/virtio*; do
		[ -d "$v" ] || continue
		copy_level "$v"
		for n in "$v"/net/*; do
			if [ -d "$n" ]; then copy_level "$n"; fi
		done
		for b in "$v"/block/*; do
			[ -d "$b" ] || continue
			copy_level "$b"
			copy_level "$b/holders"
			for p in "$b"/*; do
				if [ -f "$p/partition" ]; then copy_level "$p"; fi
			done
		done
	done
}

S=/sys
for l in "$S"/bus/pci/devices/*; do
	[ -L "$l" ] || continue
	copy_entry "$l"
	real=$(cd "$l" && pwd -P)
	copy_function "$real"
done
copy_level "$S/bus/pci"
for drv in "$S"/bus/pci/drivers/*; do
	copy_level "$drv"
done
for slot in "$S"/bus/pci/slots/*; do
	copy_level "$slot"
done
for g in "$S"/kernel/iommu_groups/*; do
	copy_level "$g"
	copy_level "$g/devices"
done
for c in net block; do
	for l in "$S/class/$c"/*; do
		case $(readlink "$l") in
		*/devices/pci*) copy_entry "$l" ;;
		esac
	done
done
for m in vfio vfio_iommu_type1 vfio_pci vfio_pci_core irqbypass kvm virtio_net virtio_blk \
	virtio_rng; do
	[ -d "$S/module/$m" ] || continue
	copy_level "$S/module/$m"
	copy_level "$S/module/$m/parameters"
	copy_level "$S/module/$m/holders"
done
copy_tree "$S/firmware/uv"
copy_tree "$S/firmware/clp"

for f in /proc/cpuinfo /proc/sysinfo /proc/cmdline /proc/swaps /proc/sys/kernel/osrelease \
	/proc/sys/kernel/arch /proc/self/mountinfo; do
	[ -e "$f" ] || continue
	mkdir -p "$out$(dirname "$f")"
	cat "$f" >"$out$f"
done

rel=$(uname -r)
copy_entry "/boot/config-$rel"
if [ -e /proc/config.gz ]; then copy_entry /proc/config.gz; fi
mdir=/lib/modules/$rel
if [ -f "$mdir/modules.dep" ]; then
	mkdir -p "$out$mdir"
	cp "$mdir/modules.builtin" "$out$mdir/" 2>/dev/null || true
	grep -E '/(vfio[^/]*|kvm|irqbypass|virtio[^/]*|net_failover|failover)\.ko' "$mdir/modules.dep" \
		>"$out$mdir/modules.dep" || true
fi

for n in /dev/kvm /dev/vfio/*; do
	if [ -e "$n" ]; then copy_entry "$n"; fi
done

if [ "$stream" = --stream ]; then
	echo "ZPCID-CAPTURE-BEGIN"
	tar -C "$out" -cf - . | gzip -9 | base64
	echo "ZPCID-CAPTURE-END"
fi
