#!/usr/bin/env bash
# The strategy comparison on one CUDA machine, in one call, one process per (dataset, seed) in parallel:
#   beauty, sports, toys: ID + attributes, sum fusion; scientific: ID + text + image, sparse-MoE fusion,
#   plus the topk_stochastic sweeps over K and beta on scientific (one process per seed and sweep, started once
#   that seed's reference is trained). DPO hyperparameters: chosen on Scientific validation (results/dpo_scientific_search.jsonl).
# Usage: RODPO_DATA=<data root> OUT=<folder for packed results> [ONLY="beauty:1 sports:0"] bash benchmarks/device_dpo.sh [seconds per process]
#   ONLY limits the call to those dataset:seed runs (reference and the five strategies, no sweeps).
# Run folders land in results/dpo_<dataset>; interrupted runs resume on the next call. Tables: benchmarks/dpo_experiment.py (rodpo-experiment)
# on the same --out (it trains nothing when every run is finished).
set -u
limit=${1:-470}
here=$(dirname "$0")
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
DPO='{"lr":1e-4,"beta":0.1,"ce_weight":1.0,"form":"pairwise","eval_every":5}'
SAMPLER='{"m":1,"K":50}'
ATTR='{"modalities":["id","attributes"],"fusion":"sum"}'
MM='{"modalities":["id","text","image"],"fusion":"sparse_moe"}'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/info.txt" 2>&1
mkdir -p runs/logs
start=$(date +%s); deadline=$((start + limit))
exp() {  # dataset seed model [extra args]; every process ends by the deadline
  local ds=$1 seed=$2 model=$3; shift 3
  timeout "$((deadline - $(date +%s)))" python3 "$here/dpo_experiment.py" --dataset "$ds" --seeds "$seed" --out "results/dpo_$ds" --model "$model" \
    --dpo "$DPO" --sampler "$SAMPLER" --no-summary "$@"
}
if [ -n "${ONLY:-}" ]; then
  for job in $ONLY; do ds=${job%:*} seed=${job#*:}
    if [ "$ds" = scientific ]; then model=$MM; else model=$ATTR; fi
    exp "$ds" "$seed" "$model" > "runs/logs/dpo-$ds-$seed.log" 2>&1 &
  done
else for seed in 0 1 2; do
  for ds in beauty sports toys; do exp "$ds" "$seed" "$ATTR" > "runs/logs/dpo-$ds-$seed.log" 2>&1 & done
  exp scientific "$seed" "$MM" > "runs/logs/dpo-scientific-$seed.log" 2>&1 &
  ( timeout "$limit" bash -c "until [ -f results/dpo_scientific/reference-seed$seed/metrics.json ]; do sleep 2; done" &&
    exp scientific "$seed" "$MM" --sweep K=1,5,10,20,50,100,200 --sweep beta=0.01,0.03,0.1,0.3,1.0 --sweep-only ) > "runs/logs/dpo-scientific-$seed-sweeps.log" 2>&1 &
done; fi
wait
echo "wall_s $(( $(date +%s) - start ))" >> "$OUT/info.txt"
dsets="beauty sports toys scientific"; [ -n "${ONLY:-}" ] && dsets=$(for j in $ONLY; do echo "${j%:*}"; done | sort -u)
for ds in $dsets; do
  tar czf "$OUT/dpo_$ds.tgz" --exclude='*.pt' "results/dpo_$ds" runs/logs/dpo-$ds-*.log
done
for ds in $dsets; do  # the references, one file per seed (the size limit), so that unfinished DPO runs can continue elsewhere
  for f in results/dpo_$ds/reference-seed*/best.pt; do [ "$ds" = scientific ] && continue; [ -f "$f" ] && tar czf "$OUT/ref_${ds}_$(basename "$(dirname "$f")").tgz" "$f"; done
done
ls -la "$OUT"
