#!/usr/bin/env bash
# The regimes study (nbs/study.ipynb) on one CUDA machine, in one call: one papermill process per (dataset, seed), in parallel,
# each ending by the deadline; interrupted runs resume on the next call. Sports (Beauty and Toys are committed, run on a CPU) with
# ID + attributes (sum fusion), 3 seeds, DPO budget of 3 epochs (about 500 steps on Beauty), patience 1, the quarter reference at
# QUARTER epochs (default 5; the seeds run at once, so it cannot wait for their converged references: a quarter of those was 12 on
# Beauty and 6 on Toys). Usage: RODPO_DATA=<data root> OUT=<folder for packed results> [JOBS="sports:0 sports:1"] [QUARTER=6] bash benchmarks/study/device_regimes.sh [seconds]
# Run folders land in results/regimes/<dataset>; a last call per dataset without JOBS limits (or papermill with all seeds) writes
# the tables. What comes back: results/regimes/<dataset> without checkpoints (.pt), one archive per dataset, and the logs.
set -u
limit=${1:-450}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
JOBS=${JOBS:-"sports:0 sports:1 sports:2"}
QUARTER=${QUARTER:-5}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/info.txt" 2>&1
mkdir -p runs/logs
start=$(date +%s)
for job in $JOBS; do ds=${job%:*} seed=${job#*:}
  mkdir -p "results/regimes/$ds"
  timeout "$limit" papermill nbs/study.ipynb "runs/regimes-$ds-$seed.ipynb" -p dataset "$ds" -p seeds "[$seed]" -p dpo_epochs 3 -p patience 1 \
    -p quarter_epochs "$QUARTER" --log-output > "runs/logs/regimes-$ds-$seed.log" 2>&1 &
done
wait
echo "wall_s $(( $(date +%s) - start ))" >> "$OUT/info.txt"
for ds in $(for j in $JOBS; do echo "${j%:*}"; done | sort -u); do
  tar czf "$OUT/regimes_$ds.tgz" --exclude='*.pt' "results/regimes/$ds" runs/logs/regimes-$ds-*.log
done
ls -la "$OUT"
