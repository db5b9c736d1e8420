#!/usr/bin/env bash
# Stage-1 acceptance runs and speed figures on a CUDA machine, in one call.
# Usage: RODPO_DATA=<data root> OUT=<results folder> bash benchmarks/device_stage1.sh [seconds]
# Trains SASRec (method defaults) to early stopping on Beauty (seeds 0,1,2), Sports and Toys (seeds 0,1,2)
# in parallel on one GPU, then packs metrics, histories and configurations into $OUT.
set -u
limit=${1:-420}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 benchmarks/stage1_speed.py --device cuda --batch_sizes 256 > "$OUT/speed_cuda.json" 2> "$OUT/speed_cuda.err"
start=$(date +%s)
for ds in beauty sports toys; do
  for seed in 0 1 2; do
    timeout "$limit" python3 -c "import sys; from rodpo.train import main; main(sys.argv[1:])" --dataset "$ds" --seed "$seed" --device cuda --progress false \
      --out_dir "runs/gpu-$ds-s$seed" > "runs-$ds-$seed.log" 2>&1 &
  done
done
wait
echo "wall_s $(( $(date +%s) - start ))" > "$OUT/wall.txt"
mkdir -p runs
tar czf "$OUT/runs.tgz" --exclude='*.pt' runs runs-*.log
