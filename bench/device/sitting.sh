#!/bin/bash
# Carried beside the checkout: .gl/ (Debian libvulkan1 + GL loader .debs) and .devgpu/devpkg.tar.xz (Node 20, the
# repo's node_modules minus typescript/playwright, ../shared/golden, and the tfjs peer bundled by esbuild into peer/).
# One sitting on the GPU: this main against the session's starting main (33e57d8) and the tfjs peer.
set -u
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
mkdir -p /tmp/dp && tar -C /tmp/dp -xJf .devgpu/devpkg.tar.xz
export PATH=/tmp/dp:$PATH ESBUILD_BINARY_PATH=/tmp/dp/node_modules/@esbuild/linux-x64/bin/esbuild
export XDG_RUNTIME_DIR=/tmp/xdg VITCATS_CACHE_DIR=/tmp/vcache; mkdir -p $XDG_RUNTIME_DIR $VITCATS_CACHE_DIR
nvidia-smi --query-gpu=name,driver_version --format=csv > $OUT/env.txt 2>&1
N="node --conditions=vitcatsvdogs-source --import tsx"
for d in . .devgpu/base; do (cd $d && ln -sfn /tmp/dp/node_modules node_modules && node scripts/embed-shaders.mjs); done
V=$OUT/sitting.log; : > $V
side() { local dir=$1; shift; el "$dir $*"; echo "### $dir $*" >> $V; (cd $dir && timeout 45 $N bench/vit.ts --json --no-profile "$@" >> $V 2>&1); tail -1 $V | cut -c1-120; }
for round in 1 2; do
  for args in "--batch 8 --steps 10 --infer 10" "--batch 64 --steps 10 --infer 10"; do side .devgpu/base $args; side . $args; done
done
for args in "--hidden 768 --heads 12 --mlp 3072 --batch 32 --steps 5 --infer 5"; do side .devgpu/base $args; side . $args; done
cd /tmp/dp/peer && { echo "### peer b8"; timeout 60 node bench_tfjs.mjs; echo "### peer b64"; timeout 40 node bench_tfjs.mjs --skip-matmul --batch 64; } > $OUT/peer.log 2>&1; el peer; grep JSON $OUT/peer.log | cut -c1-200
el end
