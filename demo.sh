#!/bin/bash
# The live demo: our ivshmem-server, two QEMU guests running Debian's kernel with
# ivshmem.ko, and a host peer, all talking over named channels in one shared region.
#
#   ./demo.sh            installs what it needs (as root), builds, runs the demo
#   ./demo.sh --no-deps  skip the apt-get step (everything already installed)
#
# Environment: IVSHMEM_VM_KVM=1 boots the guests with KVM instead of TCG.
set -euo pipefail
top=$(cd "$(dirname "$0")" && pwd)
cd "$top"
. scripts/lib.sh

if [ "${1:-}" != "--no-deps" ]; then
	need_root "./demo.sh"
	bash scripts/deps.sh
	bash scripts/guest-kernel.sh >/dev/null
fi
log "building (meson + ninja)"
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
ninja -C build >/dev/null || die "build failed: run 'ninja -C build' to see why"
log "building ivshmem.ko against the guest kernel's headers"
bash scripts/build-kmod.sh build >/dev/null || die "module build failed: run 'scripts/build-kmod.sh build' to see why"
exec python3 demo/demo.py
