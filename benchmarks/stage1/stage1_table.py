"""Stage-1 (CE) comparison of item modalities and fusions over seeds, on one dataset, in one run.

Usage:
  python benchmarks/stage1/stage1_table.py --dataset scientific --seeds 0,1,2 --out results/stage1_scientific
  python benchmarks/stage1/stage1_table.py --dataset beauty --variants "id|id:sum,id+attr sparse|id,attributes:sparse_moe" ...
  python benchmarks/stage1/stage1_table.py --variants "gBCE untied|id:sum:loss=gbce:tied_output=false" ...  (fields of SASRecConfig or TrainConfig)

Each variant x seed is a `rodpo-train` run folder under --out (finished runs are reused, interrupted ones resume);
the script then writes `runs.csv` (one row per run) and `summary.csv` / `summary.md` (mean and std over seeds),
and prints the summary as JSON. Model selection reads validation only; the test columns are the final report.
"""
import argparse, json, sys, time
from dataclasses import fields
from pathlib import Path

import pandas as pd

from rodpo.data import load_dataset, atomic_write
from rodpo.model import SASRecConfig
from rodpo.train import TrainConfig, fit, runs_table

DEFAULT_VARIANTS = (
    "ID|id:sum",
    "ID+text sum|id,text:sum", "ID+text dense_moe|id,text:dense_moe", "ID+text sparse_moe|id,text:sparse_moe",
    "ID+image sum|id,image:sum", "ID+image dense_moe|id,image:dense_moe", "ID+image sparse_moe|id,image:sparse_moe",
    "ID+text+image sum|id,text,image:sum", "ID+text+image dense_moe|id,text,image:dense_moe",
    "ID+text+image sparse_moe|id,text,image:sparse_moe",
)


def _value(default, v: str):
    "`v` as the type of a field's `default` ('true'/'false' for a bool)."
    if isinstance(default, bool):
        if v.lower() not in ("true", "false"): raise ValueError(f"{v!r}: a true/false field takes 'true' or 'false'")
        return v.lower() == "true"
    return v if default is None else type(default)(v)


def parse_variant(spec):
    "'label|mod1,mod2:fusion[:key=value,...]' -> (label, SASRecConfig keywords, TrainConfig keywords); each key a field of either."
    label, rest = spec.split("|")
    parts = rest.split(":")
    kw, train = dict(modalities=tuple(parts[0].split(",")), fusion=parts[1]), {}
    model_defaults, train_defaults = vars(SASRecConfig(n_items=1)), {f.name: f.default for f in fields(TrainConfig)}
    for extra in parts[2:]:
        k, v = extra.split("=")
        if k in model_defaults: kw[k] = _value(model_defaults[k], v)
        elif k in train_defaults: train[k] = _value(train_defaults[k], v)
        else: raise ValueError(f"variant {label!r}: {k!r} is a field of neither SASRecConfig nor TrainConfig")
    return label, kw, train


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="scientific")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--variants", default=None, help="comma-free list separated by ';' of 'label|modalities:fusion'")
    p.add_argument("--out", default=None)
    p.add_argument("--device", default="auto")
    a = p.parse_args()
    out = Path(a.out or f"results/stage1_{a.dataset}")
    variants = [parse_variant(v) for v in (a.variants.split(";") if a.variants else DEFAULT_VARIANTS)]
    seeds = [int(s) for s in a.seeds.split(",")]
    ds = load_dataset(a.dataset)
    t0 = time.perf_counter()
    folders, labels = [], {}
    for label, kw, train in variants:
        for seed in seeds:
            folder = out / (label.replace(" ", "_").replace("+", "-") + f"-s{seed}")
            cfg = TrainConfig(dataset=a.dataset, seed=seed, device=a.device, progress=False, **train)
            res = fit(ds, cfg, SASRecConfig.for_dataset(ds, **kw), folder, log=lambda *m: None)
            print(f"{label:28s} seed {seed}: valid ndcg@10 {res['valid']['ndcg@10']:.4f}  test ndcg@10 {res['test']['ndcg@10']:.4f}",
                  file=sys.stderr)
            folders.append(folder); labels[folder.name] = label
    table = runs_table(folders)
    table.insert(1, "variant", table["run"].map(labels))
    cols = ["valid_ndcg10", "test_ndcg@10", "test_hr@10", "test_mrr@10", "test_ndcg@5", "test_mrr@5"]
    g = table.groupby("variant", sort=False)[cols]
    summary = g.mean().round(4).astype(str) + " ± " + g.std(ddof=1).fillna(0).round(4).astype(str)  # one seed: ± 0
    summary.insert(0, "seeds", table.groupby("variant", sort=False).size())
    atomic_write(out / "runs.csv", lambda f: table.to_csv(f, index=False))
    atomic_write(out / "summary.csv", lambda f: summary.to_csv(f))
    atomic_write(out / "summary.md", lambda f: Path(f).write_text(summary.to_markdown() + "\n"))
    print(json.dumps(dict(dataset=a.dataset, seeds=seeds, wall_s=round(time.perf_counter() - t0, 1),
                          summary=summary.reset_index().to_dict(orient="records")), indent=1))


if __name__ == "__main__":
    main()
