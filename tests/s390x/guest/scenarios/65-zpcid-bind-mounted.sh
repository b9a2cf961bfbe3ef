# shellcheck shell=sh
# The virtio-blk function (fid 0x20) carries a mounted file system: zpcid refuses to bind it
# with Busy naming the mount; after umount it binds, and unbind gives it back to virtio-pci.
zt_require_bin zpcid || return 0
zt_require_bin zpcidctl || return 0

if ! zt_zpcid_start; then
	zt_fail "zpcid serves org.zpcid1" "$(zt_zpcid_log 20)"
	return 0
fi
addr=$(zt_by_fid 0x20) || {
	zt_fail "fid 0x20 present"
	return 0
}
disk=$(zt_class_dev "$addr" block)
part=/dev/${disk}1
zt_check "$part exists (the disk's partition)" zt_wait 5 test -b "$part"
# ext4 (which mounts ext2) wants a crc32c driver at every mount
zt_check "modprobe crc32c_generic" zt_modprobe crc32c_generic
zt_check "modprobe ext4" zt_modprobe ext4
zt_check "mke2fs $part" mke2fs -q "$part"
mnt=/mnt/zpcid-blk
mkdir -p "$mnt"
if ! mount -t ext2 "$part" "$mnt"; then
	zt_fail "mount $part on $mnt" "$(dmesg | tail -n 5)"
	return 0
fi
zt_ok "mount $part on $mnt"

out=$ZT_STATE/bind-blk.json
rc=0
zt_ctl bind 0x20 --json >"$out" 2>&1 || rc=$?
zt_is "bind 0x20 while $part is mounted: refused with org.zpcid1.Error.Busy" \
	"$rc $(zt_json_error <"$out")" "2 org.zpcid1.Error.Busy"
if grep -q "mounted on .*$mnt" "$out"; then
	zt_ok "bind 0x20: the refusal names the mount point $mnt"
else
	zt_fail "bind 0x20: the refusal names the mount point $mnt" "$(cat "$out")"
fi
zt_is "$addr: still on virtio-pci, still mounted" \
	"$(zt_driver "$addr") $(grep -c " $mnt " /proc/mounts)" "virtio-pci 1"

zt_check "umount $mnt" umount "$mnt"
rc=0
zt_ctl bind 0x20 --json >"$out" 2>&1 || rc=$?
zt_is "bind 0x20 after umount: succeeds" "$rc" 0
[ "$rc" = 0 ] || zt_diag "$(cat "$out")" "$(zt_zpcid_log)"
zt_is "$addr: sysfs driver is vfio-pci" "$(zt_driver "$addr")" vfio-pci
zt_check "$part is gone with virtio-blk" zt_wait 5 test ! -e "$part"

rc=0
zt_ctl unbind 0x20 --json >"$out" 2>&1 || rc=$?
zt_is "unbind 0x20: succeeds" "$rc" 0
[ "$rc" = 0 ] || zt_diag "$(cat "$out")" "$(zt_zpcid_log)"
zt_is "$addr: back on virtio-pci" "$(zt_driver "$addr")" virtio-pci
zt_check "$part is back" zt_wait 5 test -b "$part"
