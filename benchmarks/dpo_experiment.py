"""Compare negative strategies for the DPO stage over seeds on one dataset (rodpo.experiment), in one run.

Usage: python benchmarks/dpo_experiment.py --dataset scientific --seeds 0,1,2 --out results/dpo_scientific \
           [--strategies continue,random,popularity,hard,topk_stochastic,dns] [--dpo '{"beta": 0.1}'] [--sampler '{"K": 50}'] [--model '{}'] \
           [--sweep K=1,5,10,20,50,100,200 --sweep beta=0.01,0.1,1] [--sweep-only] [--no-summary]
Writes every run folder under --out (finished runs and folders of interrupted runs are reused), then summary.csv / summary.md
(and sweep_<param>.csv / .html per sweep), and prints the summary as JSON. With --no-summary only the runs are made (for one
process per seed on the same --out; a last call without it writes the tables).
"""
import argparse, json, time
from pathlib import Path

from rodpo.data import atomic_write
from rodpo.experiment import ExperimentConfig, run_experiment, summarize_experiment, run_sweep, sweep_table, sweep_figure, experiment_table
from rodpo.experiment import ARMS


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="scientific")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--strategies", default=",".join(ARMS), help="the continue control and negative strategies")
    p.add_argument("--out", default=None)
    for k in ("model", "stage1", "dpo", "sampler"): p.add_argument(f"--{k}", default="{}", help=f"JSON overrides of the {k} configuration")
    p.add_argument("--sweep", action="append", default=[], help="param=v1,v2,... : a topk_stochastic sweep after the comparison (repeatable)")
    p.add_argument("--no-summary", action="store_true", help="train only; write no tables")
    p.add_argument("--sweep-only", action="store_true", help="run only the sweeps (the references are trained or reused)")
    a = p.parse_args()
    out = Path(a.out or f"results/dpo_{a.dataset}")
    cfg = ExperimentConfig(a.dataset, str(out), tuple(a.strategies.split(",")), tuple(int(s) for s in a.seeds.split(",")),
                           json.loads(a.model), json.loads(a.stage1), json.loads(a.dpo), json.loads(a.sampler))
    sweeps = []
    for spec in a.sweep:
        param, _, values = spec.partition("=")
        sweeps.append((param, [json.loads(v) for v in values.split(",")]))
    t0 = time.perf_counter()
    if not a.sweep_only: run_experiment(cfg)
    for param, values in sweeps: run_sweep(cfg, param, values)
    if a.no_summary: return
    for param, values in sweeps:
        t = sweep_table(out, param)
        atomic_write(out / f"sweep_{param}.csv", lambda f: t.to_csv(f, index=False))
        table = experiment_table(out)
        fig = sweep_figure(t, param, reference=table[table.strategy == "reference"])
        atomic_write(out / f"sweep_{param}.html", lambda f: fig.write_html(f, include_plotlyjs="cdn"))
    summary = summarize_experiment(out)
    atomic_write(out / "summary.csv", lambda f: summary.to_csv(f))
    atomic_write(out / "summary.md", lambda f: Path(f).write_text(summary.to_markdown() + "\n"))
    print(json.dumps(dict(dataset=a.dataset, wall_s=round(time.perf_counter() - t0, 1), summary=summary.reset_index().to_dict(orient="records")), indent=1))


if __name__ == "__main__":
    main()
