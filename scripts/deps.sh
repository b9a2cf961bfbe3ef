# Debian 12 packages zpcid needs, in one place; sourced by main-job.sh and test-suite.sh.
# shellcheck shell=bash

ZPCID_BUILD_PACKAGES=(
    meson ninja-build pkg-config gcc gettext
    libglib2.0-dev libglib2.0-dev-bin libjson-glib-dev libxml2-dev libvirt-dev
    libpolkit-gobject-1-dev libsystemd-dev
    dbus-daemon python3
)

ZPCID_TEST_PACKAGES=(
    "${ZPCID_BUILD_PACKAGES[@]}"
    libxml2-utils libvirt-clients libvirt0 libvirt-daemon libvirt-daemon-driver-qemu
    qemu-system-misc qemu-user-static gcc-s390x-linux-gnu mmdebstrap xz-utils cpio kmod
    python3-dbusmock python3-gi valgrind clang
    libglib2.0-bin groff-base man-db
    # systemd-analyze (check-unit); unshare and nsenter (test-dbus-faults)
    systemd util-linux
)

# What scripts/fuzz.sh needs besides the build packages: clang and its libFuzzer runtime.
ZPCID_FUZZ_PACKAGES=(
    "${ZPCID_BUILD_PACKAGES[@]}"
    clang libclang-rt-14-dev
)

# What bench/bench.sh (meson compile -C BUILD bench) needs besides the test packages.
ZPCID_BENCH_PACKAGES=(
    "${ZPCID_TEST_PACKAGES[@]}"
    gnuplot-nox driverctl util-linux
)

# Installs whichever of the named packages are missing (apt-get update only when needed).
zpcid_install_packages() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "zpcid: missing packages: ${missing[*]}; run this script as root or with sudo." >&2
        return 1
    fi
    echo "zpcid: installing ${missing[*]}" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}
