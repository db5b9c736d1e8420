#!/usr/bin/env bash
# Train stage-1 variants side by side (one process each, in parallel) and collect their metrics.
# Usage: OUT=<folder> bash benchmarks/stage1/stage1_variants.sh <seconds> "name|rodpo-train args" ...
# Model selection reads the validation metrics only; test metrics are written too, for the final report.
set -u
limit=$1; shift
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
mkdir -p runs
start=$(date +%s)
for spec in "$@"; do
  name=${spec%%|*}; args=${spec#*|}
  timeout "$limit" python3 -c "import sys; from rodpo.train import main; main(sys.argv[1:])" $args --progress false \
    --out_dir "runs/$name" > "runs/$name.log" 2>&1 &
done
wait
echo "wall_s $(( $(date +%s) - start ))" > "$OUT/wall.txt"
python3 - "$OUT/summary.json" <<'PY'
import glob, json, sys
rows = {}
for f in sorted(glob.glob("runs/*/metrics.json")):
    m = json.load(open(f))
    rows[f.split("/")[1]] = dict(best_epoch=m["best_epoch"], epochs=m["epochs"], mean_epoch_time=m["mean_epoch_time"],
                                 valid=m["valid"], test=m["test"])
json.dump(rows, open(sys.argv[1], "w"), indent=1)
for k, r in rows.items(): print(f"{k:28s} best@{r['best_epoch']:3d} valid ndcg@10 {r['valid']['ndcg@10']:.4f}")
PY
tar czf "$OUT/runs.tgz" --exclude='*.pt' runs
