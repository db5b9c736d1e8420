"""How often the approximate pool's index must be rebuilt: test metrics of each `index_refresh` against the most frequent one, paired over
users and seeds, and the pools' recall of the exact top-K by the index's age, from an experiment folder with an `index_refresh` sweep.

    python benchmarks/scale/ann_refresh.py results/ann_pool/beauty-refresh

The folder is what `rodpo-experiment --strategies topk_stochastic --sampler '{"pool": "ann", ...}' --sweep 'index_refresh=100,1000'
--sweep_only` writes (its `sweeps.json` names the run of each value and seed). As `ann_pool_quality.py` does: per-user test values from each
run's `test_ranks.npz`, `rodpo.experiment.paired_comparison` for the relative change with its paired bootstrap 95% CI and the Wilcoxon
p-value; recall from the runs' `diagnostics.json` (`pool_recall`, measured on `rank_rows` positions, by `index_age`). Writes refresh.json
and refresh.md in the folder and prints the JSON.
"""
from __future__ import annotations
import json, sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ann_pool_quality import age_label, compare, recall_by_age, shown, sweep_runs  # noqa: E402

AGES = ((0, 9), (10, 49), (50, 99), (100, 199), (200, 299), (300, 399), (400, 10**9))


def one(folder: Path) -> dict:
    runs = {int(v): r for v, r in sweep_runs(folder, "index_refresh", "index_refresh=100,1000").items()}
    if len(runs) < 2: raise SystemExit(f"{folder}: the sweep has one index_refresh ({next(iter(runs))}); it needs two or more to compare")
    base = min(runs)
    seeds = sorted(set.intersection(*(set(r) for r in runs.values())))
    out = dict(folder=shown(folder), seeds=seeds, baseline=base, refresh={})
    for value, by_seed in sorted(runs.items()):
        diags = {s: json.loads((by_seed[s]/"diagnostics.json").read_text()) for s in seeds}
        diag = [d for s in seeds for d in diags[s]]
        metrics = [json.loads((by_seed[s]/"metrics.json").read_text()) for s in seeds]
        out["refresh"][value] = dict(
            comparison=None if value == base else compare(by_seed, runs[base], seeds, str(value), str(base)),
            builds=[sum(d["index_age"] == 0 for d in diags[s]) for s in seeds],
            pool_recall=round(float(np.mean([d["pool_recall"] for d in diag if "pool_recall" in d])), 4), pool_recall_by_index_age=recall_by_age(diag, AGES),
            false_negative_rate=round(float(np.mean([m["mean_false_negative_rate"] for m in metrics])), 5),
            steps=[m["steps"] for m in metrics], dpo_wall_s=[m["wall_s"] for m in metrics])
    cfg = json.loads((runs[base][seeds[0]]/"config.json").read_text())["dpo"]["sampler"]
    out["sampler"] = {k: v for k, v in cfg.items() if k != "index_refresh"}
    md = [f"# How often to rebuild the index: {out['folder']}", "",
          f"`python benchmarks/scale/ann_refresh.py {out['folder']}`; topk_stochastic DPO, seeds {seeds}; index {cfg['index']}, {cfg['candidates']} candidates, "
          f"{cfg['nprobe']} cells searched", "", f"Test metrics against `index_refresh` {base}, paired over users and seeds:", "",
          "| index_refresh | metric | mean | vs the baseline [95% CI] | Wilcoxon p |", "|---|---|---|---|---|"]
    for value, r in out["refresh"].items():
        if r["comparison"]:
            md += [f"| {value} | {k} | {c[str(value)]:.5f} (baseline {c[str(base)]:.5f}) | {c['change']} | {c['p_text']} |" for k, c in r["comparison"].items()]
    md += ["", "Index builds per run, recall of the exact top-K in the pools (over all measured steps and by the index's age: mean, lowest step, steps), "
           "false-negative rate, DPO steps and wall time (s) per run:", "",
           "| index_refresh | builds | recall | " + " | ".join(f"age {age_label(lo, hi)}" for lo, hi in AGES) + " | FN rate | steps | wall s |",
           "|---|---|---|" + "---|" * len(AGES) + "---|---|---|"]
    for value, r in out["refresh"].items():
        ages = [r["pool_recall_by_index_age"].get(age_label(lo, hi)) for lo, hi in AGES]
        md.append(f"| {value} | {r['builds']} | {r['pool_recall']} | " + " | ".join(f"{a['mean']} ({a['min']}, {a['steps']})" if a else "" for a in ages)
                  + f" | {r['false_negative_rate']} | {r['steps']} | {r['dpo_wall_s']} |")
    (folder/"refresh.json").write_text(json.dumps(out, indent=1) + "\n")
    (folder/"refresh.md").write_text("\n".join(md) + "\n")
    return out


def main(argv=None):
    folders = [Path(f) for f in (argv if argv is not None else sys.argv[1:])]
    if not folders: raise SystemExit(__doc__)
    print(json.dumps([one(f) for f in folders], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
