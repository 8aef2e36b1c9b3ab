#!/usr/bin/env sh
# Start one Celery worker per GPU of this machine, each its own process tree that sees only its
# GPU (CUDA_VISIBLE_DEVICES), with one pool process: CUDA is initialised inside that process,
# never in a parent that forks. Stops them all when it is stopped; if one of them ends, stops the
# others and exits 1, so that the container's restart policy brings every GPU back.
#   GPUS="0 1" start-gpu-workers     (default: every GPU nvidia-smi lists)
set -eu
GPUS=${GPUS:-$(nvidia-smi --query-gpu=index --format=csv,noheader)}
pids=""
for gpu in $GPUS; do
    CUDA_VISIBLE_DEVICES=$gpu FEATURECHANGER_DEVICE=cuda \
        celery -A worker.celery_app worker -Q gpu -c 1 -n "gpu$gpu@%h" -l INFO &
    pids="$pids $!"
done
trap 'kill -TERM $pids 2>/dev/null; wait; exit 0' INT TERM
while :; do
    for pid in $pids; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "start-gpu-workers: worker $pid ended; stopping the others" >&2
            kill -TERM $pids 2>/dev/null || true
            wait || true
            exit 1
        fi
    done
    sleep 5 &
    wait $! || true  # interruptible by the trap, unlike a plain sleep
done
