#!/bin/bash
# Install everything the demo and the tests need, from Debian's mirror only.
# Idempotent: packages already present are not touched.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

packages=(
	# build
	gcc libc6-dev make meson ninja-build pkg-config python3 libsystemd-dev
	# VM rig: QEMU, the initramfs, our module's build
	qemu-system-x86 busybox-static cpio kmod perl dkms
	# the aarch64 guest (tests/vm/test_arm64.py) and module builds for 6.12 (its linux-kbuild needs pahole)
	qemu-system-arm pahole
	# libvirt as Debian ships it (libvirtd, virtlogd, virsh, the libvirt-qemu user): tests/vm/test_libvirt.py
	libvirt-daemon-system libvirt-clients
	# sanitizers, TSan and libFuzzer (clang), ck_ring baseline, arm64 cross-compile check
	clang libclang-rt-14-dev llvm libck-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross
	# ivshmem-bench's peers (optional at build time): iceoryx's C binding and its iox-roudi, UCX
	libiceoryx-binding-c-dev iceoryx libucx-dev
	# ivshmem-bridge's tests: ucx_perftest, network namespaces and veth (ip), man page check
	ucx-utils iproute2 groff
	# the Python binding's tests; the Debian packages (dpkg-buildpackage, lintian: ./test.sh packages)
	python3-pytest debhelper dh-python dh-dkms lintian fakeroot dpkg-dev
)
apt_install "${packages[@]}"
