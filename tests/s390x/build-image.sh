#!/bin/bash
# Build (or refresh) everything the emulated IBM Z tests need, cached in CACHE_DIR:
#
#   CACHE_DIR/apt/            private apt configuration, lists and downloads (never /etc/apt)
#   CACHE_DIR/kernel/         Debian bookworm-backports s390x kernel package, unpacked, depmod run
#   CACHE_DIR/rootfs/         s390x runtime libraries (mmdebstrap --variant=extract)
#   CACHE_DIR/sysroot/        s390x sysroot with the -dev packages, for cross compiling
#   CACHE_DIR/s390x-cross.ini meson cross file
#   CACHE_DIR/build-s390x/    cross build of zpcid
#   CACHE_DIR/vmlinuz, CACHE_DIR/initrd.img   what tests/s390x/run-vm.sh boots
#
# Usage: tests/s390x/build-image.sh CACHE_DIR [SOURCE_DIR]
#
# Each step is skipped when its stamp (a hash of its inputs) matches, so a second run only
# rebuilds zpcid incrementally and repacks the initramfs if something in it changed.
# Environment:
#   ZPCID_S390X_SUITE    Debian suite of the guest userland and sysroot (default bookworm)
#   ZPCID_S390X_KERNEL   kernel package to use (default: what linux-image-s390x in
#                        SUITE-backports depends on)
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 CACHE_DIR [SOURCE_DIR]" >&2
	exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
cache=$(cd "$1" && pwd)
srcdir=$(cd "${2:-$here/../..}" && pwd)
suite=${ZPCID_S390X_SUITE:-bookworm}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

runtime_pkgs=(libc6 libglib2.0-0 libjson-glib-1.0-0 libxml2 libvirt0 libpolkit-gobject-1-0
	libsystemd0 dbus-daemon busybox-static)
sysroot_pkgs=(libc6-dev libglib2.0-dev libjson-glib-dev libxml2-dev libvirt-dev
	libpolkit-gobject-1-dev libsystemd-dev)
# Modules loaded in the guest; their dependencies (from modules.dep) come along.
guest_modules=(vfio vfio_iommu_type1 vfio_pci_core vfio_pci irqbypass kvm
	virtio_net virtio_blk virtio_rng ext4 crc32c_generic)

# One build at a time per cache directory
exec 9>"$cache/.lock"
flock 9

log() { printf '[build-image %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
hash_of() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

need=()
for tool in apt-get dpkg mmdebstrap depmod xz cpio gzip flock s390x-linux-gnu-gcc meson ninja pkg-config; do
	command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
	die "missing tools: ${need[*]} (apt-get install mmdebstrap kmod xz-utils cpio gcc-s390x-linux-gnu meson ninja-build pkg-config)"
fi
[ -r "$keyring" ] || die "$keyring missing (package debian-archive-keyring)"

# ---------------------------------------------------------------------------------------------
# apt sources: the machine's own mirrors, read at run time (no host name is written in the repo)
# ---------------------------------------------------------------------------------------------

# Print "URI SUITE" for every enabled deb entry of the machine's apt sources.
host_apt_entries() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && enabled != "no")
					for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j]
				types = ""; enabled = ""; nu = 0; ns = 0
			}
			/^#/ { next }
			/^[ \t]*$/ { flush(); next }
			/^[ \t]/ { next }
			{
				key = tolower($1); sub(/:$/, "", key)
				if (key == "types") { types = ""; for (k = 2; k <= NF; k++) types = types " " $k; types = types " " }
				else if (key == "enabled") enabled = tolower($2)
				else if (key == "uris") { nu = 0; for (k = 2; k <= NF; k++) u[++nu] = $k }
				else if (key == "suites") { ns = 0; for (k = 2; k <= NF; k++) s[++ns] = $k }
			}
			END { flush() }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk '$1 == "deb" {
			k = 2
			if ($k ~ /^\[/) { while ($k !~ /\]$/ && k < NF) k++; k++ }
			print $k, $(k + 1)
		}' "$f"
	done
}

host_codename=$(sed -n "s/^VERSION_CODENAME=//p" /etc/os-release | tr -d "\"")
entries=$(host_apt_entries)
main_uri=$(awk -v c="$host_codename" '$2 == c { print $1; exit }' <<<"$entries")
[ -n "$main_uri" ] || main_uri=$(awk '$2 !~ /-security$/ { print $1; exit }' <<<"$entries")
[ -n "$main_uri" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d}"
security_uri=$(awk '$2 ~ /-security$/ { print $1; exit }' <<<"$entries")

aptdir=$cache/apt
mkdir -p "$aptdir"/etc/sources.list.d "$aptdir"/etc/preferences.d "$aptdir"/lists/partial \
	"$aptdir"/archives/partial "$aptdir"/state
{
	echo "deb [signed-by=$keyring] $main_uri $suite main"
	echo "deb [signed-by=$keyring] $main_uri $suite-updates main"
	if [ -n "$security_uri" ]; then
		echo "deb [signed-by=$keyring] $security_uri $suite-security main"
	fi
} >"$aptdir/guest.list"
{
	cat "$aptdir/guest.list"
	echo "deb [signed-by=$keyring] $main_uri $suite-backports main"
} >"$aptdir/etc/sources.list"
: >"$aptdir/state/status"
cat >"$aptdir/apt.conf" <<EOF
Dir::Etc::SourceList "$aptdir/etc/sources.list";
Dir::Etc::SourceParts "$aptdir/etc/sources.list.d";
Dir::Etc::Preferences "$aptdir/etc/preferences";
Dir::Etc::PreferencesParts "$aptdir/etc/preferences.d";
Dir::State "$aptdir/state";
Dir::State::Lists "$aptdir/lists";
Dir::State::status "$aptdir/state/status";
Dir::Cache "$aptdir/cache";
Dir::Cache::Archives "$aptdir/archives";
APT::Architecture "s390x";
APT::Architectures { "s390x"; };
APT::Sandbox::User "root";
Acquire::Languages "none";
Debug::NoLocking "true";
EOF
papt() { APT_CONFIG="$aptdir/apt.conf" "$@"; }
sources_hash=$(sha256sum "$aptdir/etc/sources.list" | cut -c1-16)

# ---------------------------------------------------------------------------------------------
# kernel
# ---------------------------------------------------------------------------------------------
kstamp=$(hash_of kernel-v1 "$sources_hash" "${ZPCID_S390X_KERNEL:-}")
if ! stamp_ok "$cache/kernel.stamp" "$kstamp"; then
	log "fetching the $suite-backports s390x kernel"
	papt apt-get -q update >&2
	kpkg=${ZPCID_S390X_KERNEL:-}
	if [ -z "$kpkg" ]; then
		kpkg=$(papt apt-cache show "linux-image-s390x/$suite-backports" |
			sed -n 's/^Depends: *\(linux-image-[^ ,]*\).*/\1/p' | head -n1)
	fi
	[ -n "$kpkg" ] || die "cannot resolve linux-image-s390x in $suite-backports"
	rm -rf "$aptdir/debs" "$cache/kernel" "$cache/kernel.tmp"
	mkdir -p "$aptdir/debs"
	(cd "$aptdir/debs" && papt apt-get -q download "$kpkg/$suite-backports" >&2)
	dpkg -x "$aptdir"/debs/"$kpkg"_*_s390x.deb "$cache/kernel.tmp"
	krel=$(basename "$(ls -d "$cache"/kernel.tmp/lib/modules/*)")
	depmod -b "$cache/kernel.tmp" "$krel"
	echo "$krel" >"$cache/kernel.tmp/RELEASE"
	rm -rf "$aptdir/debs"
	mv "$cache/kernel.tmp" "$cache/kernel"
	echo "$kstamp" >"$cache/kernel.stamp"
fi
krel=$(cat "$cache/kernel/RELEASE")
kdir=$cache/kernel/lib/modules/$krel
grep -q '^CONFIG_VFIO_PCI=m' "$cache/kernel/boot/config-$krel" || die "kernel $krel has no CONFIG_VFIO_PCI=m"
log "kernel $krel"

# ---------------------------------------------------------------------------------------------
# s390x runtime root and sysroot (extracted only; nothing is executed)
# ---------------------------------------------------------------------------------------------
# root: plain extraction; otherwise let mmdebstrap pick (unshare or fakechroot)
if [ "$(id -u)" = 0 ]; then mmdebstrap_mode=root; else mmdebstrap_mode=auto; fi
extract() { # NAME PKG...
	local name=$1 stamp
	shift
	stamp=$(hash_of extract-v1 "$suite" "$(cat "$aptdir/guest.list")" "$@")
	stamp_ok "$cache/$name.stamp" "$stamp" && return 0
	log "extracting s390x $name (${*})"
	rm -rf "${cache:?}/$name" "$cache/$name.tmp"
	local incl
	incl=$(
		IFS=,
		echo "$*"
	)
	mmdebstrap --quiet --variant=extract --arch=s390x --mode="$mmdebstrap_mode" \
		--skip=check/qemu,chroot/mount --include="$incl" \
		"$suite" "$cache/$name.tmp" "$aptdir/guest.list" >&2
	rm -rf "$cache/$name.tmp/dev"
	# Absolute symlinks (libz.so -> /lib/...) would resolve on this machine: make them relative.
	local l t
	while IFS= read -r -d '' l; do
		t=$(readlink "$l")
		ln -sfn "$(realpath -m --relative-to="$(dirname "$l")" "$cache/$name.tmp$t")" "$l"
	done < <(find "$cache/$name.tmp" -type l -lname '/*' -print0)
	mv "$cache/$name.tmp" "$cache/$name"
	echo "$stamp" >"$cache/$name.stamp"
}
extract rootfs "${runtime_pkgs[@]}"
extract sysroot "${sysroot_pkgs[@]}"
sysroot=$cache/sysroot

# ---------------------------------------------------------------------------------------------
# meson cross file and cross build
# ---------------------------------------------------------------------------------------------
cross=$cache/s390x-cross.ini
cat >"$cross.new" <<EOF
# Generated by tests/s390x/build-image.sh
[binaries]
c = 's390x-linux-gnu-gcc'
ar = 's390x-linux-gnu-gcc-ar'
strip = 's390x-linux-gnu-strip'
pkgconfig = 'pkg-config'
exe_wrapper = ['qemu-s390x-static', '-L', '$sysroot']

[built-in options]
c_args = ['--sysroot=$sysroot']
c_link_args = ['--sysroot=$sysroot']

[properties]
sys_root = '$sysroot'
pkg_config_libdir = ['$sysroot/usr/lib/s390x-linux-gnu/pkgconfig', '$sysroot/usr/share/pkgconfig']

[host_machine]
system = 'linux'
cpu_family = 's390x'
cpu = 's390x'
endian = 'big'
EOF
if ! cmp -s "$cross.new" "$cross"; then
	mv "$cross.new" "$cross"
	rm -rf "$cache/build-s390x"
else
	rm -f "$cross.new"
fi

bdir=$cache/build-s390x
if [ "$(cat "$cache/build-s390x.src" 2>/dev/null)" != "$srcdir" ]; then
	rm -rf "$bdir"
fi
if [ ! -f "$bdir/build.ninja" ]; then
	log "configuring the s390x cross build"
	rm -rf "$bdir"
	meson setup "$bdir" "$srcdir" --cross-file "$cross" -Dtests-s390x=disabled >&2
	echo "$srcdir" >"$cache/build-s390x.src"
fi
log "cross building zpcid"
ninja -C "$bdir" >&2

# ---------------------------------------------------------------------------------------------
# initramfs
# ---------------------------------------------------------------------------------------------
is_s390x_elf() { # big-endian ELF, e_machine 22 (EM_S390)
	[ "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' ')" = 7f454c46 ] &&
		[ "$(od -An -tx1 -j18 -N2 "$1" | tr -d ' ')" = 0016 ]
}

# Built executables: everything s390x and executable outside meson's private directories.
built=()
while IFS= read -r -d '' f; do
	is_s390x_elf "$f" && built+=("$f")
done < <(find "$bdir" \( -name meson-private -o -name '*.p' -o -name meson-logs \) -prune -o \
	-type f -perm -u+x -print0 | sort -z)

# Module closure from modules.dep (paths relative to the module directory).
modpaths=$(awk -v want=" ${guest_modules[*]} " '
	{
		f = $1; sub(/:$/, "", f)
		n = f; sub(/.*\//, "", n); sub(/\.ko(\.[a-z]+)?$/, "", n); gsub(/-/, "_", n)
		if (index(want, " " n " ")) { print f; for (i = 2; i <= NF; i++) print $i }
	}' "$kdir/modules.dep" | sort -u)

fingerprint=$(
	{
		echo initramfs-v2 "$krel"
		cat "$cache/rootfs.stamp"
		sha256sum "$srcdir/xml/org.zpcid1.conf"
		echo "$modpaths"
		find "$here/guest" "$here/capture-sysfs.sh" -type f -printf '%P %s %T@\n' | sort
		for f in "${built[@]}"; do
			stat -c '%n %s %Y' "$f"
		done
	} | sha256sum | cut -c1-16
)
cmp -s "$cache/kernel/boot/vmlinuz-$krel" "$cache/vmlinuz" ||
	cp "$cache/kernel/boot/vmlinuz-$krel" "$cache/vmlinuz"
if stamp_ok "$cache/initrd.stamp" "$fingerprint" && [ -f "$cache/initrd.img" ]; then
	log "initramfs up to date"
	exit 0
fi

log "packing the initramfs"
stage=$cache/initramfs.d
rm -rf "$stage"
mkdir -p "$stage"
# Runtime root without documentation, manuals and translations.
tar -C "$cache/rootfs" --exclude=./usr/share/doc --exclude=./usr/share/man \
	--exclude=./usr/share/locale --exclude=./usr/share/info --exclude=./usr/share/lintian \
	--exclude=./var/cache --exclude=./var/lib/apt --exclude=./var/lib/dpkg -cf - . |
	tar -C "$stage" -xf -
mkdir -p "$stage"/{proc,sys,dev,tmp,run,root,mnt,boot,usr/local/bin,usr/libexec/zpcid/tests} \
	"$stage/lib/modules/$krel"

# Kernel side: the module files decompressed (busybox insmod), modules.dep & co. as depmod
# wrote them (first field .ko.xz, like the real host), the kernel config.
cp "$kdir"/modules.{dep,builtin,builtin.modinfo,order,alias,softdep,symbols,devname} \
	"$stage/lib/modules/$krel/"
while IFS= read -r m; do
	[ -n "$m" ] || continue
	mkdir -p "$stage/lib/modules/$krel/$(dirname "$m")"
	case $m in
	*.xz) xz -dc "$kdir/$m" >"$stage/lib/modules/$krel/${m%.xz}" ;;
	*) cp "$kdir/$m" "$stage/lib/modules/$krel/$m" ;;
	esac
done <<<"$modpaths"
cp "$cache/kernel/boot/config-$krel" "$stage/boot/"

# Built binaries: tests/test-* into /usr/libexec/zpcid/tests, the rest into /usr/local/bin.
for f in "${built[@]}"; do
	rel=${f#"$bdir"/}
	case $rel in
	tests/test-*) cp "$f" "$stage/usr/libexec/zpcid/tests/" ;;
	*) cp "$f" "$stage/usr/local/bin/" ;;
	esac
done

# Test driver
install -m 0755 "$here/guest/init" "$stage/init"
[ -e "$stage/bin/sh" ] || ln -s busybox "$stage/bin/sh"
mkdir -p "$stage/zpcid-test/scenarios"
install -m 0644 "$here"/guest/*.sh "$here/guest/system-bus.conf" "$stage/zpcid-test/"
install -m 0644 "$here"/guest/scenarios/*.sh "$stage/zpcid-test/scenarios/"
install -m 0755 "$here/capture-sysfs.sh" "$stage/zpcid-test/capture-sysfs.sh"
install -m 0755 "$here/guest/modprobe" "$stage/usr/local/bin/modprobe"
# dbus-daemon and zpcid look up users: root is the only one (the extracted root has no passwd)
[ -e "$stage/etc/passwd" ] || echo "root:x:0:0:root:/root:/bin/sh" >"$stage/etc/passwd"
[ -e "$stage/etc/group" ] || echo "root:x:0:" >"$stage/etc/group"
# zpcid's system bus policy, which the guest's private system bus includes (guest/lib.sh)
install -D -m 0644 "$srcdir/xml/org.zpcid1.conf" "$stage/etc/dbus-1/system.d/org.zpcid1.conf"

(cd "$stage" && find . -print0 | LC_ALL=C sort -z |
	cpio --quiet --null -o -H newc -R 0:0) | gzip -1 >"$cache/initrd.img.tmp"
mv "$cache/initrd.img.tmp" "$cache/initrd.img"
rm -rf "$stage"
echo "$fingerprint" >"$cache/initrd.stamp"
log "initramfs $(du -h "$cache/initrd.img" | cut -f1), binaries: ${built[*]:-none}"
