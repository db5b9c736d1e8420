"""The README's tables of the regimes study, from the committed results of each dataset (nbs/study.ipynb outputs).

Usage: python benchmarks/study/regimes_report.py results/regimes/scientific results/regimes/beauty [--out results/regimes/report.md] [--readme]
For each dataset folder: topk_stochastic and hard against continue (and topk_stochastic against hard) on NDCG@5 and MRR@5, every
backbone and beta, with the paired bootstrap 95% CI and the Holm-adjusted p-value of that dataset's table (regimes.csv); the stage-1
references per backbone; each backbone's validation-selected arm against the full-CE reference (versus_full_ce.csv); and the
largest effect of any arm against continue. Writes the markdown to --out and prints it. With --readme: only each dataset's table, in the
layout of the README's tables, printed, after an overview (topk_stochastic and hard at beta 1 against continue, NDCG@5, every dataset).
"""
import argparse, json
from pathlib import Path

import pandas as pd

from rodpo.data import atomic_write
from rodpo.experiment import experiment_table, format_p, format_change
from rodpo.metrics import format_spread

ORDER = ("ce", "ce-quarter", "sampled_softmax", "bce")


def cell(r): return f"{format_change(r)} p={format_p(r.p_holm)}"


def comparisons(t: pd.DataFrame, readme: bool = False) -> pd.DataFrame:
    """hard and topk_stochastic at each beta against continue and (topk_stochastic) against hard, NDCG@5 and MRR@5, backbones in ORDER.
    readme: the README's layout (arm as 'hard, beta 1.0', a seeds column, metrics grouped by baseline)."""
    rows = []
    for (b, arm), g in t.groupby(["backbone", "arm"], sort=False):
        if not arm.startswith(("topk_stochastic", "hard")): continue
        row = {"backbone": b, "arm": "{}, beta {}".format(*arm.split("-beta")), "seeds": int(g.seeds.max())} if readme else dict(backbone=b, arm=arm)
        pairs = [(k, base) for base in ("continue", "hard") for k in ("ndcg@5", "mrr@5")] if readme else \
                [(k, base) for k in ("ndcg@5", "mrr@5") for base in ("continue", "hard")]
        for k, base in pairs:
            r = g[(g.metric == k) & (g.base.str.split("-beta").str[0] == base)]
            if len(r): row[f"{k.upper()} vs {base}"] = (f"{format_change(r.iloc[0])}, p {format_p(r.iloc[0].p_holm)}" if readme else cell(r.iloc[0]))
        rows.append(row)
    order = {b: i for i, b in enumerate(ORDER)}
    return pd.DataFrame(rows).sort_values("backbone", key=lambda s: s.map(order), kind="stable").fillna("")


def overview(folders) -> pd.DataFrame:
    "NDCG@5 against continue of topk_stochastic and hard at beta 1 (the cells of `comparisons`), one column per dataset."
    cols = []
    for f in folders:
        t = pd.read_csv(f / "regimes.csv")
        c = comparisons(t, readme=True)
        name = json.loads((f / "parameters.json").read_text())["dataset"]
        cols.append(c[c.arm.str.endswith("beta 1.0")].set_index(["backbone", "arm"])["NDCG@5 vs continue"].rename(f"{name} ({t.seeds.max()} seeds)"))
    return pd.concat(cols, axis=1, sort=False).reset_index().fillna("")


def references(folder: Path) -> pd.DataFrame:
    rows = []
    for b in ORDER:
        t = experiment_table(folder / b) if (folder / b).is_dir() else pd.DataFrame()
        if not len(t): continue
        t = t[t.strategy == "reference"]
        best = [json.loads((folder / b / r / "metrics.json").read_text())["best_epoch"] for r in t.run]
        rows.append({"backbone": b, "seeds": len(t), "best epoch": " ".join(map(str, best)),
                     **{k.upper(): format_spread(t[f'test_{k}']) for k in ("ndcg@5", "mrr@5", "ndcg@10", "hr@10")}})
    return pd.DataFrame(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+")
    p.add_argument("--out", default="results/regimes/report.md")
    p.add_argument("--readme", action="store_true", help="print the overview and each dataset's table in the README's layout instead")
    a = p.parse_args()
    folders = list(map(Path, a.folders))
    if a.readme:
        print(f"overview\n\n{overview(folders).to_markdown(index=False)}\n")
        for f in folders: print(f"{f}\n\n{comparisons(pd.read_csv(f / 'regimes.csv'), readme=True).to_markdown(index=False)}\n")
        return
    parts = ["### Overview: NDCG@5 against `continue` at beta 1 (relative change [95% CI], Holm-adjusted p over each dataset's table)\n\n"
             + overview(folders).to_markdown(index=False) + "\n"]
    for f in folders:
        t = pd.read_csv(f / "regimes.csv")
        params = json.loads((f / "parameters.json").read_text())
        parts.append(f"### {params['dataset']} ({t.seeds.max()} seeds)\n\nStage-1 references (test):\n\n{references(f).to_markdown(index=False)}\n")
        tab = comparisons(t)
        parts.append("Against `continue` and `hard` (relative change of the mean [95% CI], Holm-adjusted p over the dataset's table):\n\n" + tab.to_markdown(index=False) + "\n")
        c = t[t.base == "continue"].sort_values("rel_change", ascending=False).iloc[0]
        parts.append(f"Largest change of any arm against `continue`: {c.backbone} {c.arm} {c.metric.upper()} {cell(c)} (MDE {100 * c.mde:.2f}%).\n")
        if (f / "versus_full_ce.csv").exists():
            v = pd.read_csv(f / "versus_full_ce.csv")
            v["change vs full-CE reference"] = [cell(r) for r in v.itertuples()]
            parts.append("Each backbone's validation-selected arm against the converged full-CE reference (test):\n\n"
                         + v[["backbone", "selected_arm", "metric", "mean", "base_mean", "change vs full-CE reference"]].round(4).to_markdown(index=False) + "\n")
    md = "\n".join(parts)
    atomic_write(a.out, lambda f: Path(f).write_text(md))
    print(md)


if __name__ == "__main__":
    main()
