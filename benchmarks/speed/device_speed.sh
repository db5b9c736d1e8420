#!/usr/bin/env bash
# GPU speed in one call (under 8 minutes with the defaults), for a machine with one CUDA device and this repository installed
# (`pip install -e .`, a CUDA build of torch). Three measurements, each under its own time limit so that one slow part cannot
# starve the others:
#   1. stage-1 and DPO epochs on Beauty: benchmarks/speed/dpo_speed.py --device cuda --amp --compile --repeats 3
#      (eager and `torch.compile(mode="reduce-overhead")`, i.e. CUDA graphs; goal: topk_stochastic within 1.5x of stage 1);
#   2. the Beauty comparison end to end: rodpo-experiment, 3 references, `continue` and the 5 strategies, seeds 0-2, one process
#      per seed (goal: under 5 minutes);
#   3. the main job (rodpo-reproduce scientific, the README's command) on the GPU (goal: under 60 s).
# Usage: RODPO_DATA=<data root> OUT=<folder for results> bash benchmarks/speed/device_speed.sh [seconds for part 1] [part 2] [part 3]
# What comes back in $OUT: info.txt (the card, the driver, wall times per part), dpo_speed_cuda.json, the experiment's summary and
# run metrics (no checkpoints), the main job's summary, and the logs.
set -u
t1=${1:-150} t2=${2:-200} t3=${3:-90}
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" runs/logs
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/info.txt" 2>&1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" >> "$OUT/info.txt" 2>&1
part() {  # name limit command...: runs the command under the limit and records its wall time and exit status
  local name=$1 limit=$2; shift 2
  local start=$(date +%s)
  timeout "$limit" "$@" > "runs/logs/speed-$name.log" 2>&1
  echo "$name exit $? wall_s $(( $(date +%s) - start ))" >> "$OUT/info.txt"
  cp "runs/logs/speed-$name.log" "$OUT/"
}
part dpo_speed "$t1" python3 "$here/dpo_speed.py" --device cuda --amp --compile --repeats 3
sed -n '/^{/,$p' runs/logs/speed-dpo_speed.log > "$OUT/dpo_speed_cuda.json"
comparison() {
  for seed in 0 1 2; do
    rodpo-experiment --dataset beauty --seeds "$seed" --out runs/speed-beauty --model '{"modalities": ["id", "attributes"], "fusion": "sum"}' \
      --stage1 '{"device": "cuda"}' --dpo '{"device": "cuda"}' --no-summary > "runs/logs/speed-beauty-$seed.log" 2>&1 &
  done
  wait
  rodpo-experiment --dataset beauty --seeds 0,1,2 --out runs/speed-beauty --model '{"modalities": ["id", "attributes"], "fusion": "sum"}' \
    --stage1 '{"device": "cuda"}' --dpo '{"device": "cuda"}'
}
export -f comparison
part comparison "$t2" bash -c comparison
cp runs/speed-beauty/summary.* "$OUT/" 2>/dev/null
tar czf "$OUT/speed-beauty.tgz" --exclude='*.pt' runs/speed-beauty runs/logs/speed-beauty-*.log 2>/dev/null
rm -rf runs/speed-main  # a fresh folder: the committed results/reproduce/scientific holds finished runs, which would be reused
part main_job "$t3" rodpo-reproduce scientific -p device cuda -p out_dir runs/speed-main
cp runs/speed-main/summary.csv "$OUT/main_job_summary.csv" 2>/dev/null
cat "$OUT/info.txt"
