#!/usr/bin/env bash
# Rebuilds everything README's edit-quality tables are measured on, with their commands and
# seeds, into DATA (datasets, shards) and $FEATURECHANGER_HOME (runs 1, 2, 3: DCAE, PGAE, PCA;
# the judges, the localiser, the refiners), and prints each step's wall time. The DCAE's removal
# path comes first, so its validation can start while the rest builds (53 min to run 1's
# refiner in session 11; all of it about 1 h 45 min in session 10, and 55 min in session 13,
# on a machine two to three times faster, with validation runs between its steps; 2 CPU
# cores). Each step takes /tmp/fc-heavy.lock, so that other heavy work waits its turn instead
# of sharing the cores.
# Every net trains with --precision fp32, as the tables' were (before `auto` took bf16 on CPUs
# that compute it natively); PRECISION=auto bench/build_evaluation.sh ... builds with the default.
# The run ids assume a fresh home. A failing step stops the script; a rerun skips the datasets
# and shard sets whose folders exist, so remove a failed step's folder first.
#
#   FEATURECHANGER_HOME=/work/fc-homes/lead bench/build_evaluation.sh /work/fc-data
set -euo pipefail
DATA=${1:?usage: bench/build_evaluation.sh DATA_DIR}
: "${FEATURECHANGER_HOME:?set FEATURECHANGER_HOME to a fresh home for the runs}"
PRECISION=${PRECISION:-fp32}
FC="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/featurechanger"
mkdir -p "$DATA" && cd "$DATA"

step() {  # step NAME COMMAND...: run under the lock, print its wall time
    local name=$1 start
    shift
    echo "== $name: $*" >&2
    start=$(date +%s)
    flock /tmp/fc-heavy.lock "$@"
    echo "== $name took $(( $(date +%s) - start )) s" >&2
}

faces() {  # faces NAME COUNT SEED SHARDS [SUFFIX=ATTR=VALUE ...]: a dataset, its twins, shards
    local name=$1 count=$2 seed=$3 shards=$4 twin
    shift 4
    [ -d "$name" ] || step "synth $name" "$FC" data synth "$name" --count "$count" --seed "$seed"
    for twin in "$@"; do
        [ -d "$name-${twin%%=*}" ] || step "synth $name-${twin%%=*}" "$FC" data synth \
            "$name-${twin%%=*}" --count "$count" --seed "$seed" --counterfactual "${twin#*=}"
    done
    [ -d "$shards" ] || step "shard $name" "$FC" data shard "$name" --out "$shards"
}

faces synth20k 20000 0 shards20k
faces val6k 6000 2 shards-val6k twin=Eyeglasses=0 blond=Blond_Hair=1 smile=Smiling=1

# Run 1, the DCAE: 10 minutes at most. A busy machine can stop it short of its 20 epochs
# (320,000 images); it is then resumed to them, and the log says so.
state=$(step "train dcae" "$FC" train --model dcae --data shards20k --loss mse \
    --minutes 10 --precision "$PRECISION" --json)
echo "$state" >&2
case $state in
    *'"completed"'*) ;;
    *) echo "== the DCAE stopped early: resuming it" >&2
       step "resume dcae" "$FC" train --resume 1 --minutes 30 ;;
esac
step "vectors 1" "$FC" vectors --run 1
step "vectors 1 keep Male" "$FC" vectors --run 1 --keep Male
step "judge Eyeglasses" "$FC" classifier train --data shards20k --decorrelate Eyeglasses \
    --precision "$PRECISION"
step "localiser" "$FC" localiser train --data shards20k --attribute Eyeglasses \
    --precision "$PRECISION"
step "refiner 1" "$FC" refiner train --run 1 --attribute Eyeglasses --precision "$PRECISION"

faces val16k 16000 3 shards-val16k twin=Eyeglasses=0
faces eval16k 16000 1 shards-eval16k twin=Eyeglasses=0 smile=Smiling=1
step "judge Smiling" "$FC" classifier train --data shards20k --decorrelate Smiling \
    --precision "$PRECISION"
step "judge Blond_Hair" "$FC" classifier train --data shards20k --decorrelate Blond_Hair \
    --precision "$PRECISION"

step "train pgae" "$FC" train --model pgae --data shards20k --loss mse --precision "$PRECISION"
step "train pca" "$FC" train --model pca --data shards20k
for run in 2 3; do
    step "vectors $run" "$FC" vectors --run "$run"
    step "vectors $run keep Male" "$FC" vectors --run "$run" --keep Male
    step "refiner $run" "$FC" refiner train --run "$run" --attribute Eyeglasses \
        --precision "$PRECISION"
done
echo "== built: runs 1 (dcae), 2 (pgae), 3 (pca) in $FEATURECHANGER_HOME, data in $DATA"
