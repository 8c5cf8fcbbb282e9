#!/bin/bash
# One device session: GPU tests, benches with each kernel variant, kernels. Logs under $OUT.
source bench/device/setup.sh
before() { [ $(( $(date +%s) - T0 )) -lt $1 ] || { el "skipped (time): ${*:2}"; return 1; }; }
ln -sfn /tmp/dp/node_modules node_modules
mkdir -p ../shared && ln -sfn /tmp/dp/golden ../shared/golden
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv; nproc; node --version; } > $OUT/env.txt 2>&1
node scripts/embed-shaders.mjs
el "setup done"; cat $OUT/env.txt
# 1. the test suite on the GPU (all but the browser / packaging / web-server files)
mkdir -p /tmp/gt; for f in test/*.test.ts; do case $f in *browser*|*package*|*web-serve*|*cli.test*|*trainer.test*) ;; *) ln -sf $PWD/$f /tmp/gt/;; esac; done
VITCATS_TEST_DIR=/tmp/gt timeout 200 $N test/run.ts > $OUT/tests.log 2>&1; el "tests rc=$?"; grep -E "FAIL|passed" $OUT/tests.log | head -40
# 2. ViT benches: autotuned, then each forced variant
V=$OUT/vit.log; : > $V
vit() { before $1 "$@" || return; shift; el "vit $* ${VA:-}"; echo "### $* ${VA:-}" >> $V; env "$@" timeout 45 $N bench/vit.ts --json ${VA:-} --steps 10 --infer 10 ${PROF:---no-profile} >> $V 2>&1; tail -1 $V | cut -c1-250; }
PROF=" " vit 400 A=auto
for m in shared register subgroup4; do vit 400 VITCATS_MATMUL_VARIANT=$m; done
for a in unfused fused-tiles fused-texture; do vit 400 VITCATS_ATTENTION_VARIANT=$a; done
VA="--batch 64" vit 400 VITCATS_MATMUL_VARIANT=subgroup4
cp $VITCATS_CACHE_DIR/autotune.json $OUT/ 2>/dev/null
B384="--image 384 --hidden 768 --heads 12 --mlp 3072 --batch 8 --steps 5 --infer 5"
VA="$B384" vit 440 VITCATS_ATTENTION_VARIANT=fused-tiles
VA="$B384" vit 450 VITCATS_ATTENTION_VARIANT=unfused
# 4. kernels, validated then timed
K=$OUT/kernels.log; : > $K
before 460 kernels && { timeout 50 $N bench/kernels.ts --json --only attention >> $K 2>&1; el "kernels attention rc=$?"; }
PROF=" " VA="--batch 64" vit 480 A=auto64
VA="--batch 64" vit 490 VITCATS_ATTENTION_VARIANT=unfused
VA="--hidden 768 --heads 12 --mlp 3072 --batch 32 --steps 5 --infer 5" vit 500 A=vitb224
before 520 kernels && { timeout 40 $N bench/kernels.ts --json --quick >> $K 2>&1; el "kernels quick rc=$?"; }
grep -v "^{" $K | grep -E "attention|linear|matmul" | head -40
el "end"
