"""Which items may a BCE negative be? Any item but the target (`neg_exclude='target'`, the study's BCE backbone) or any item outside
the user's training window (`neg_exclude='history'`, as the original SASRec samples). Trains the 'history' references with the
configuration of finished 'target' references (everything else equal) and compares them on test, paired over users and seeds.

Usage: python benchmarks/study/bce_negatives.py --refs results/regimes/beauty/bce --out results/bce_negatives/beauty --seeds 0,1,2
Writes one run folder per seed under --out (history-seed<s>; finished runs are reused, interrupted ones resume), then
bce_negatives.json / .md and parameters.json (command and wall time): per-seed and mean test HR/NDCG@5,10, best epochs, training and validation seconds (from each run's history), and the relative change of 'history' against 'target'
(paired bootstrap 95% CI over users, Wilcoxon p). Per-user results come from each run's committed test_ranks.npz (else its test_per_user.csv,
which runs write and git does not keep); `--compare_only` recomputes the files from the committed runs without training.
"""
import argparse, json
from pathlib import Path

import pandas as pd
import torch

from rodpo.data import load_dataset, atomic_write, TrainBatches
from rodpo.experiment import paired_comparison, format_change, format_p, _per_user
from rodpo.metrics import format_spread
from rodpo.model import SASRecConfig
from rodpo.train import TrainConfig, fit

METRICS = ("hr@5", "hr@10", "ndcg@5", "ndcg@10")


def history_hit_share(ds, max_len: int) -> float:
    "Expected share of 'target' negatives (uniform over the items but the target) that are items of the user's training window: the mean over training positions of (distinct items of the row but the target) / (n_items - 1)."
    total, n = 0.0, 0
    for x, y in TrainBatches(ds.sequences, max_len=max_len, batch_size=4096, bucket=0).epoch(0):
        rows = torch.cat([x, y], 1).sort(1).values
        distinct = ((rows[:, 1:] != rows[:, :-1]) & (rows[:, 1:] > 0)).sum(1) + (rows[:, 0] > 0).long()  # distinct nonzero items per row
        m = y > 0
        total += float(((distinct[:, None] - 1) * m).sum()) / (ds.n_items - 1); n += int(m.sum())
    return total / n


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--refs", required=True, help="folder holding finished BCE references reference-seed<s>/ (a study's bce folder)")
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n_boot", type=int, default=1000)
    p.add_argument("--compare_only", action="store_true", help="train nothing: compare the finished runs under --out with the references")
    a = p.parse_args()
    refs, out, seeds = Path(a.refs), Path(a.out), [int(s) for s in a.seeds.split(",")]
    rows, ds = [], None
    for seed in seeds:
        ref = refs / f"reference-seed{seed}"
        if not (ref / "metrics.json").exists(): raise SystemExit(f"bce_negatives: {ref} has no finished reference (metrics.json); train it first")
        cfg = json.loads((ref / "config.json").read_text())
        if cfg["train"]["loss"] != "bce" or cfg["train"].get("neg_exclude", "target") != "target":
            raise SystemExit(f"bce_negatives: {ref} is not a BCE reference with neg_exclude='target'")
        if ds is None: ds = load_dataset(cfg["train"]["dataset"])
        if a.compare_only: hist = json.loads((out / f"history-seed{seed}" / "metrics.json").read_text())
        else: hist = fit(ds, TrainConfig(**{**cfg["train"], "neg_exclude": "history"}), SASRecConfig(**cfg["model"]), out / f"history-seed{seed}", log=lambda *x: None)
        for variant, run, m in (("target", ref, json.loads((ref / "metrics.json").read_text())), ("history", out / f"history-seed{seed}", hist)):
            h = json.loads((run / "history.json").read_text())
            rows.append(dict(variant=variant, seed=seed, best_epoch=m["best_epoch"], epochs=m["epochs"], **{k: m["test"][k] for k in METRICS},
                             train_eval_s=round(sum(e["train_time"] + e["eval_time"] for e in h), 1)))
    table = pd.DataFrame(rows)
    comp = []
    for k in METRICS:
        r = paired_comparison(_per_user(out, "history", seeds, k), _per_user(refs, "reference", seeds, k), a.n_boot)
        comp.append(dict(metric=k, **r))
    comp = pd.DataFrame(comp)
    share = history_hit_share(ds, cfg["model"]["max_len"])
    res = dict(refs=str(refs), seeds=seeds, history_hit_share=share, runs=table.to_dict("records"), history_vs_target=comp.to_dict("records"),
               command="python benchmarks/study/bce_negatives.py " + " ".join(f"--{k} {v}" for k, v in vars(a).items() if k != "compare_only"))
    md = [f"# BCE negatives: any item but the target vs outside the user's history ({cfg['train']['dataset']}, seeds {a.seeds})", "",
          "Test, mean ± std over seeds (best epochs per seed):", "", "| negatives | " + " | ".join(METRICS) + " | best epochs |", "|---" * (len(METRICS) + 2) + "|"]
    for v in ("target", "history"):
        md.append(f"| {v} | " + " | ".join(format_spread(table[table.variant == v][k]) for k in METRICS)
                  + " | " + " ".join(str(e) for e in table[table.variant == v].best_epoch) + " |")
    md += ["", f"Share of 'target' negatives that are items of the user's training window (exact expectation over training positions): {100 * share:.3f}%."]
    md += ["", "'history' against 'target' (relative change of the mean [paired bootstrap 95% CI over users, seeds paired], Wilcoxon p):", ""]
    md += [f"- {r.metric}: {format_change(r)}, p {format_p(r.p)}" for r in comp.itertuples()]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "bce_negatives.json", lambda f: Path(f).write_text(json.dumps(res, indent=2, default=float)))
    atomic_write(out / "bce_negatives.md", lambda f: Path(f).write_text("\n".join(md) + "\n"))
    wall = float(table[table.variant == "history"].train_eval_s.sum())
    params = dict(command=res["command"], refs=str(refs), seeds=seeds,
                  wall=f"{wall:,.0f} s: training and evaluation of the {len(seeds)} 'history' runs, summed from their histories (one process)")
    atomic_write(out / "parameters.json", lambda f: Path(f).write_text(json.dumps(params, indent=2) + "\n"))
    print(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
