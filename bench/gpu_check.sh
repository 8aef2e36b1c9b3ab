#!/usr/bin/env bash
# The one prepared GPU check (run through the device tool on a lent GPU machine), in one call:
# 1. bench/training.py on CUDA (throughput per batch source, share of peak, DFC cost);
# 2. the README's removal pipeline on CUDA for each of MODELS (default: dcae pgae), with the
#    CPU build's commands and seeds (bench/build_evaluation.sh): judge, localiser, then per
#    model training, vectors, refiner and `evaluate --remove Eyeglasses --keep Male` on the
#    validation set val6k, timing each step. BENCH=0 leaves part 1 out, MODELS= part 2.
#    Every net trains at the default --precision auto: bf16 autocast on CUDA (README's session
#    20 figures trained the judge, localiser and refiner in fp32, before the option).
# The GPU image has torch but not our SQL packages; they travel as wheels in .gpuwheels/
# (`pip download --no-deps --only-binary=:all: --python-version 3.12 --platform
# manylinux2014_x86_64 -d .gpuwheels sqlalchemy alembic mako`, the folder ignored and carried).
# On the CPU it runs as a dry run: DEVICE=cpu COUNT=2000 VAL_COUNT=600 DRY=1 bench/gpu_check.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out} DEVICE=${DEVICE:-cuda} COUNT=${COUNT:-20000} VAL_COUNT=${VAL_COUNT:-6000}
WORK=${WORK:-/tmp/fc-gpu} DRY=${DRY:-} BENCH=${BENCH:-1} MODELS=${MODELS-dcae pgae}
mkdir -p "$OUT" "$WORK"
exec > >(tee "$OUT/check.txt") 2>&1
if [ -d .gpuwheels ]; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpuwheels/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 FEATURECHANGER_HOME=$WORK/home
REPO=$PWD
mkdir -p "$WORK/bin" && export PATH=$WORK/bin:$PATH  # the console script, not installed there
printf '#!/bin/sh\nexec python3 -m orchestrator.cli "$@"\n' >"$WORK/bin/featurechanger"
chmod +x "$WORK/bin/featurechanger"
step() {  # step NAME LIMIT_S COMMAND...: run it, keep its JSON, print its wall time
    local name=$1 limit=$2 start rc
    shift 2
    start=$EPOCHREALTIME
    timeout "$limit" "$@" >"$WORK/$name.json" 2>"$WORK/$name.log"
    rc=$?
    awk -v n="$name" -v rc="$rc" -v s="$start" -v e="$EPOCHREALTIME" \
        'BEGIN { printf "== %-12s rc %d, %6.1f s\n", n, rc, e - s }'
    [ "$rc" = 0 ] || tail -5 "$WORK/$name.log"
    return "$rc"
}
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true)
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
cd "$WORK"
step synth 120 featurechanger data synth synth20k --count "$COUNT" --seed 0 --workers 16
step synth-val 60 featurechanger data synth val6k --count "$VAL_COUNT" --seed 2 --workers 16
step synth-twin 60 featurechanger data synth val6k-twin --count "$VAL_COUNT" --seed 2 --workers 16 \
    --counterfactual Eyeglasses=0
step shard 60 featurechanger data shard synth20k --out shards20k --size 32 --size 64 --workers 16
step shard-val 60 featurechanger data shard val6k --out shards-val6k --workers 16
if [ "$BENCH" = 1 ]; then
    timeout 200 python3 "$REPO/bench/training.py" --shards shards20k --device "$DEVICE" \
        ${DRY:+--steps 3 --rounds 1} --loader-workers 0 8 2>&1 | grep -v '^\s*$' \
        | tee "$OUT/bench_training.txt"
fi
if [ -n "$MODELS" ]; then
    step judge 120 featurechanger classifier train --data shards20k --decorrelate Eyeglasses \
        --device "$DEVICE"
    step localiser 120 featurechanger localiser train --data shards20k --attribute Eyeglasses \
        ${DRY:+--epochs 1} --device "$DEVICE"
fi
for model in $MODELS; do  # the README's removal pipeline, per model
    size=""  # the CPU build's defaults; a dry run shrinks them
    [ -n "$DRY" ] && size=$([ "$model" = dcae ] && echo "--epochs 1" ||
                           echo "--fade-images 200 --stabilise-images 200")
    step "train-$model" 300 featurechanger train --model "$model" --data shards20k --loss mse \
        --device "$DEVICE" --minutes 10 $size --json || continue
    cat "train-$model.json"
    run=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["run_id"])' \
        "train-$model.json")
    step "vectors-$model" 60 featurechanger vectors --run "$run" --device "$DEVICE"
    step "keep-$model" 60 featurechanger vectors --run "$run" --keep Male --device "$DEVICE"
    step "refiner-$model" 120 featurechanger refiner train --run "$run" \
        --attribute Eyeglasses ${DRY:+--epochs 1} --device "$DEVICE"
    step "evaluate-$model" 120 featurechanger evaluate --run "$run" --remove Eyeglasses \
        --keep Male --data shards-val6k --split all --twin val6k-twin --device "$DEVICE" --json \
        && python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print({k: round(r[k], 4)
            for k in ("n", "success", "preserved", "male_preserved", "male_label_preserved",
                      "truth_psnr", "band_truth_psnr", "band_do_nothing_psnr")})' \
            "evaluate-$model.json"
done
featurechanger runs list --json
tar -C "$WORK" -czf "$OUT/steps.tgz" $(cd "$WORK" && ls ./*.log ./*.json)  # one file back
