#!/bin/bash
# One sitting on the GPU: this main against the session's starting main (33e57d8, in .devgpu/base) and the tfjs peer.
source bench/device/setup.sh
nvidia-smi --query-gpu=name,driver_version --format=csv > $OUT/env.txt 2>&1
for d in . .devgpu/base; do (cd $d && ln -sfn /tmp/dp/node_modules node_modules && node scripts/embed-shaders.mjs); done
V=$OUT/sitting.log; : > $V
side() { local dir=$1; shift; el "$dir $*"; echo "### $dir $*" >> $V; (cd $dir && timeout 45 $N bench/vit.ts --json --no-profile "$@" >> $V 2>&1); tail -1 $V | cut -c1-120; }
for round in 1 2; do
  for args in "--batch 8 --steps 10 --infer 10" "--batch 64 --steps 10 --infer 10"; do side .devgpu/base $args; side . $args; done
done
for args in "--hidden 768 --heads 12 --mlp 3072 --batch 32 --steps 5 --infer 5"; do side .devgpu/base $args; side . $args; done
cd /tmp/dp/peer && { echo "### peer b8"; timeout 60 node bench_tfjs.mjs; echo "### peer b64"; timeout 40 node bench_tfjs.mjs --skip-matmul --batch 64; } > $OUT/peer.log 2>&1; el peer; grep JSON $OUT/peer.log | cut -c1-200
el end
