"""Compare negative strategies for the DPO stage over seeds on one dataset (rodpo.experiment), in one run.

Usage: python benchmarks/dpo_experiment.py --dataset scientific --seeds 0,1,2 --out results/dpo_scientific \
           [--strategies random,popularity,hard,topk_stochastic,dns] [--dpo '{"beta": 0.1}'] [--sampler '{"K": 50}'] [--model '{}']
Writes every run folder under --out (finished runs are reused), then summary.csv / summary.md, and prints the summary as JSON.
"""
import argparse, json, time
from pathlib import Path

from rodpo.data import atomic_write
from rodpo.experiment import ExperimentConfig, run_experiment, summarize_experiment
from rodpo.negatives import STRATEGIES


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="scientific")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--out", default=None)
    for k in ("model", "stage1", "dpo", "sampler"): p.add_argument(f"--{k}", default="{}", help=f"JSON overrides of the {k} configuration")
    a = p.parse_args()
    out = Path(a.out or f"results/dpo_{a.dataset}")
    cfg = ExperimentConfig(a.dataset, str(out), tuple(a.strategies.split(",")), tuple(int(s) for s in a.seeds.split(",")),
                           json.loads(a.model), json.loads(a.stage1), json.loads(a.dpo), json.loads(a.sampler))
    t0 = time.perf_counter()
    run_experiment(cfg)
    summary = summarize_experiment(out)
    atomic_write(out / "summary.csv", lambda f: summary.to_csv(f))
    atomic_write(out / "summary.md", lambda f: Path(f).write_text(summary.to_markdown() + "\n"))
    print(json.dumps(dict(dataset=a.dataset, wall_s=round(time.perf_counter() - t0, 1), summary=summary.reset_index().to_dict(orient="records")), indent=1))


if __name__ == "__main__":
    main()
