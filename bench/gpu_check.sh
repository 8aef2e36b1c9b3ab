#!/usr/bin/env bash
# The one prepared GPU check (run through the device tool on a lent GPU machine):
# synthetic faces -> shards -> bench/training.py on CUDA -> DCAE and PGAE trained on CUDA.
# The GPU image has torch but not our SQL packages; they travel as wheels in .gpuwheels/.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --find-links .gpuwheels sqlalchemy alembic 2>&1 | tail -2
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 FEATURECHANGER_HOME=/tmp/fch-gpu
fc() { python3 -c 'from orchestrator.cli import main; main()' "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
fc data synth /tmp/faces --count 20000 --workers 16 --json > "$OUT/synth.json"
fc data shard /tmp/faces --out /tmp/shards --size 32 --size 64 --workers 16 --json > "$OUT/shard.json"
timeout 300 python3 bench/training.py --shards /tmp/shards --device cuda --rounds 2 \
    --loader-workers 0 8 2>&1 | tee "$OUT/bench_training.txt"
for model in dcae pgae; do
    epochs=20; [ "$model" = pgae ] && epochs=""
    timeout 150 fc train --model "$model" --data /tmp/shards --loss mse --device cuda \
        ${epochs:+--epochs $epochs} --json 2>"$OUT/train_$model.log" | tee "$OUT/train_$model.json"
    fc runs show "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' \
        "$OUT/train_$model.json")" --json > "$OUT/run_$model.json"
done
cat "$OUT"/run_*.json
