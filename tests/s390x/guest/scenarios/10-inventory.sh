# shellcheck shell=sh
# The zPCI functions the guest kernel shows match what QEMU was told (zpcid.fn on the command
# line): count, kinds, explicit UID/FID, automatic ones unique, slot names, attribute formats.

zt_diag "guest kernel $(uname -r) on $(uname -m)"
zt_is "the guest runs Debian's 6.12 s390x kernel" "$(uname -m) $(uname -r | cut -d. -f1-2)" "s390x 6.12"

expected=$(zt_expected)
funcs=$(zt_functions)
zt_is "number of PCI functions" "$(echo "$funcs" | grep -c .)" "$(echo "$expected" | grep -c .)"
zt_is "function kinds" "$(for a in $funcs; do zt_kind "$a"; done | sort | tr '\n' ' ')" \
	"$(echo "$expected" | awk '{ print $1 }' | sort | tr '\n' ' ')"

# Explicit UID/FID as requested
echo "$expected" | while read -r kind uid fid _role; do
	[ "$fid" != "*" ] || continue
	if ! addr=$(zt_by_fid "$fid"); then
		zt_fail "fid $fid: function present" "functions: $funcs"
		continue
	fi
	got="$(zt_kind "$addr") $(zt_attr "$addr" uid)"
	if [ "$uid" = "*" ]; then
		zt_is "fid $fid ($addr): kind" "${got% *}" "$kind"
	else
		zt_is "fid $fid ($addr): kind and uid" "$got" "$kind $(printf '0x%x' "$uid")"
	fi
done

# Every requested UID is in use by a function of the right kind (covers automatic FIDs)
echo "$expected" | while read -r kind uid fid _role; do
	if [ "$uid" = "*" ] || [ "$fid" != "*" ]; then
		continue
	fi
	found=none
	for a in $funcs; do
		[ $(($(zt_attr "$a" uid))) -eq $((uid)) ] && found=$(zt_kind "$a")
	done
	zt_is "uid $uid: kind" "$found" "$kind"
done

zt_is "UIDs are unique" "$(for a in $funcs; do zt_attr "$a" uid; done | sort | uniq -d)" ""
zt_is "FIDs are unique" "$(for a in $funcs; do zt_attr "$a" function_id; done | sort | uniq -d)" ""
zt_is "IOMMU groups are one per function" \
	"$(for a in $funcs; do zt_iommu_group "$a"; done | sort -u | grep -c .)" "$(echo "$funcs" | grep -c .)"

for a in $funcs; do
	d=$ZT_SYS/bus/pci/devices/$a
	missing=""
	for f in function_id function_handle uid uid_is_unique pchid pfgid pft vfn port \
		mio_enabled util_string vendor device driver_override pfip/segment0 pfip/segment3 \
		iommu_group; do
		[ -e "$d/$f" ] || missing="$missing $f"
	done
	zt_is "$a: zPCI attributes present" "$missing" ""

	bad=""
	zt_attr "$a" function_id | grep -Eq '^0x[0-9a-f]{8}$' || bad="$bad function_id"
	zt_attr "$a" function_handle | grep -Eq '^0x[0-9a-f]{8}$' || bad="$bad function_handle"
	zt_attr "$a" uid | grep -Eq '^0x[1-9a-f][0-9a-f]*$' || bad="$bad uid"
	zt_attr "$a" pchid | grep -Eq '^0x[0-9a-f]{4}$' || bad="$bad pchid"
	zt_attr "$a" pfgid | grep -Eq '^0x[0-9a-f]{2}$' || bad="$bad pfgid"
	zt_attr "$a" pft | grep -Eq '^0x[0-9a-f]{2}$' || bad="$bad pft"
	zt_attr "$a" vfn | grep -Eq '^0x[0-9a-f]{4}$' || bad="$bad vfn"
	zt_attr "$a" port | grep -Eq '^[0-9]+$' || bad="$bad port"
	zt_attr "$a" mio_enabled | grep -Eq '^[01]$' || bad="$bad mio_enabled"
	zt_attr "$a" uid_is_unique | grep -Eq '^[01]$' || bad="$bad uid_is_unique"
	[ "$(wc -c <"$d/util_string")" -eq 64 ] || bad="$bad util_string"
	zt_is "$a: attribute formats" "$bad" ""

	fid=$(($(zt_attr "$a" function_id)))
	uid=$(($(zt_attr "$a" uid)))
	slot=$ZT_SYS/bus/pci/slots/$(printf '%08x' "$fid")
	zt_is "$a: slot $(basename "$slot") (named by FID) has its address and power 1" \
		"$(cat "$slot/address" 2>/dev/null) $(cat "$slot/power" 2>/dev/null)" "${a%.*} 1"

	if [ "$(zt_attr "$a" uid_is_unique)" = 1 ]; then
		zt_is "$a: UID checking: domain and index follow the UID" \
			"$(printf '%04x' "$uid") $(zt_attr "$a" index)" "${a%%:*} $uid"
	else
		zt_is "$a: no UID checking: no index attribute" "$(ls "$d/index" 2>/dev/null)" ""
	fi

	case $(zt_kind "$a") in
	net)
		ifname=none
		for n in "$d"/virtio*/net/*; do
			[ -e "$n" ] && ifname=$(basename "$n")
		done
		zt_is "$a: network interface $ifname in class/net" \
			"$(readlink -f "$ZT_SYS/class/net/$ifname" 2>/dev/null)" "$(readlink -f "$d"/virtio*/net/"$ifname")"
		;;
	blk)
		disk=none
		for n in "$d"/virtio*/block/*; do
			[ -e "$n" ] && disk=$(basename "$n")
		done
		zt_is "$a: disk $disk in class/block" \
			"$(readlink -f "$ZT_SYS/class/block/$disk" 2>/dev/null)" "$(readlink -f "$d"/virtio*/block/"$disk")"
		;;
	esac
done
