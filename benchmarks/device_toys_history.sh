#!/usr/bin/env bash
# One CUDA machine, one call: the DPO-stage speed benchmark (fp32 and bfloat16 autocast), then a Toys experiment from the
# committed stage-1 references: hard and topk_stochastic with history items excluded from the negatives
# (results/dpo_toys_exclude_history) and, as its control, the same two strategies without exclusion
# (results/dpo_toys_control), 3 seeds, one process per seed and setting.
# Usage: RODPO_DATA=<data root> REFS=<folder with reference-seed0..2 of results/dpo_toys, best.pt included> OUT=<folder> \
#        bash benchmarks/device_toys_history.sh [seconds per process]
set -u
limit=${1:-300}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/info.txt" 2>&1
start=$(date +%s)
python3 benchmarks/dpo_speed.py --device cuda --amp > "$OUT/dpo_speed_cuda.json" 2> "$OUT/dpo_speed.err"
echo "speed_s $(( $(date +%s) - start ))" >> "$OUT/info.txt"
DPO='{"lr":1e-4,"beta":0.1,"ce_weight":1.0,"form":"pairwise","eval_every":5}'
ATTR='{"modalities":["id","attributes"],"fusion":"sum"}'
mkdir -p runs/logs
for setting in control:false exclude_history:true; do
  name=${setting%:*} ex=${setting#*:}; out=results/dpo_toys_$name
  mkdir -p "$out" && cp -r "$REFS"/reference-seed* "$out"/
  for seed in 0 1 2; do
    timeout "$limit" python3 benchmarks/dpo_experiment.py --dataset toys --seeds "$seed" --strategies hard,topk_stochastic --out "$out" \
      --model "$ATTR" --dpo "$DPO" --sampler "{\"m\":1,\"K\":50,\"exclude_history\":$ex}" --no-summary > "runs/logs/toys-$name-$seed.log" 2>&1 &
  done
done
wait
echo "wall_s $(( $(date +%s) - start ))" >> "$OUT/info.txt"
tar czf "$OUT/toys_history.tgz" --exclude='*.pt' results/dpo_toys_control results/dpo_toys_exclude_history runs/logs/toys-*.log
ls -la "$OUT"
