# Sourced by checks.sh and sitting.sh on the device machine, from the repo root. Carried beside the checkout:
# .gl/ (Debian libvulkan1 + GL loader .debs) and .devgpu/devpkg.tar.xz (Node 20, the repo's node_modules minus
# typescript/playwright, ../shared/golden, and the tfjs peer bundled by esbuild into peer/).
set -u
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
mkdir -p /tmp/dp && tar -C /tmp/dp -xJf .devgpu/devpkg.tar.xz
export PATH=/tmp/dp:$PATH ESBUILD_BINARY_PATH=/tmp/dp/node_modules/@esbuild/linux-x64/bin/esbuild
export XDG_RUNTIME_DIR=/tmp/xdg VITCATS_CACHE_DIR=/tmp/vcache; mkdir -p $XDG_RUNTIME_DIR $VITCATS_CACHE_DIR
N="node --conditions=vitcatsvdogs-source --import tsx"
