"""Choose the DPO stage's default anchor on validation: the anchor term (the backbone's own loss) computed with dropout (a second,
training-mode forward pass) or deterministic (from the DPO pass), for the `continue` arm and DPO arms, over the references of a study.

Usage: python benchmarks/study/anchor_choice.py --refs results/regimes/scientific/ce --out results/regimes/scientific/anchor --seeds 0,1,2,3,4 \
           [--arms continue,hard,topk_stochastic] [--dpo '{"lr": 1e-4, "ce_weight": 1.0}']
Writes one DPO run folder per (arm, anchor, seed) under --out (finished runs are reused), then anchor.csv / anchor.md: validation
NDCG@10 of the selected model per arm and anchor, mean ± std over seeds, and the paired difference over seeds. Test is not read here.
"""
import argparse, json, time
from pathlib import Path

import numpy as np
import pandas as pd

from rodpo.data import load_dataset, atomic_write
from rodpo.dpo import DPOConfig, fit_dpo, ANCHORS
from rodpo.negatives import SamplerConfig
from rodpo.metrics import format_spread


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--refs", required=True, help="folder holding reference-seed<s>/ (a study's backbone folder)")
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--arms", default="continue,hard,topk_stochastic")
    p.add_argument("--dpo", default='{"lr": 1e-4, "ce_weight": 1.0}', help="JSON overrides of DPOConfig")
    p.add_argument("--sampler", default='{"m": 1, "K": 50}', help="JSON overrides of SamplerConfig")
    a = p.parse_args()
    refs, out = Path(a.refs), Path(a.out)
    dataset = json.loads((refs / f"reference-seed{a.seeds.split(',')[0]}" / "config.json").read_text())["train"]["dataset"]
    ds = load_dataset(dataset)
    rows, t0 = [], time.perf_counter()
    for seed in map(int, a.seeds.split(",")):
        for arm in a.arms.split(","):
            for anchor in ANCHORS:
                kw = dict(json.loads(a.dpo), anchor=anchor, progress=False, seed=seed)
                cfg = DPOConfig(str(refs / f"reference-seed{seed}"), control=arm == "continue", sampler=SamplerConfig("topk_stochastic" if arm == "continue" else arm, **json.loads(a.sampler)), **kw)
                r = fit_dpo(ds, cfg, out / f"{arm}-{anchor}-seed{seed}", log=lambda *x: None)
                rows.append(dict(arm=arm, anchor=anchor, seed=seed, valid=r["valid"][cfg.metric], reference_valid=r["reference_valid"][cfg.metric],
                                 steps=r["steps"], best_step=r["best_step"]))
                print(json.dumps(rows[-1]), flush=True)
    t = pd.DataFrame(rows)
    g = t.pivot_table(index=["arm", "seed"], columns="anchor", values="valid")
    summary = pd.DataFrame({anchor: t[t.anchor == anchor].groupby("arm").valid.agg(lambda v: format_spread(v, 5)) for anchor in ANCHORS})
    d = (g["dropout"] - g["deterministic"]).groupby("arm")
    summary["dropout - deterministic"] = d.mean().map("{:+.5f}".format) + " ± " + d.std(ddof=1).map("{:.5f}".format)
    summary["seeds dropout better"] = (g["dropout"] > g["deterministic"]).groupby("arm").sum().astype(str) + f"/{g.index.get_level_values('seed').nunique()}"
    summary["reference"] = t.groupby("arm").reference_valid.mean().map("{:.5f}".format)
    atomic_write(out / "anchor.csv", lambda f: t.to_csv(f, index=False))
    atomic_write(out / "anchor.md", lambda f: Path(f).write_text(f"Validation NDCG@10 of the selected model ({dataset}, {refs})\n\n" + summary.to_markdown() + "\n"))
    print(summary.to_markdown()); print(json.dumps(dict(wall_s=round(time.perf_counter() - t0, 1))))


if __name__ == "__main__":
    main()
