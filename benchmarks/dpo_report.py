"""One table of the strategy comparisons of several datasets, for the README.

Usage: python benchmarks/dpo_report.py results/dpo_beauty results/dpo_sports results/dpo_toys results/dpo_scientific [--out results/dpo_all]
       [--labels "name 1,name 2,..."]  (the first column, one per folder; default: each experiment's dataset)
Reads each experiment folder (rodpo.experiment.summarize_experiment), writes <out>.csv (every column) and <out>.md
(NDCG@5 and MRR@5: mean ± std over seeds, change [95% CI] and Holm-adjusted p against continue, the reference and hard,
false-negative rate), and prints the markdown. Holm's correction runs within each folder's table.
"""
import argparse, json
from pathlib import Path

import pandas as pd

from rodpo.data import atomic_write
from rodpo.experiment import summarize_experiment


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+")
    p.add_argument("--out", default="results/dpo_all")
    p.add_argument("--labels", default=None, help="comma-separated names of the folders' rows (default: their datasets)")
    a = p.parse_args()
    labels = a.labels.split(",") if a.labels else [json.loads((Path(f) / "experiment.json").read_text())["dataset"] for f in a.folders]
    if len(labels) != len(a.folders): p.error(f"--labels names {len(labels)} folders, but {len(a.folders)} were given")
    tables = []
    for f, label in zip(a.folders, labels):
        s = summarize_experiment(f).reset_index()
        s.insert(0, "dataset", label)
        tables.append(s)
    t = pd.concat(tables, ignore_index=True)
    atomic_write(a.out + ".csv", lambda f: t.to_csv(f, index=False))
    rows = []
    for _, r in t.iterrows():
        row = dict(dataset=r.dataset, strategy=r.strategy, seeds=r.seeds)
        for k in ("ndcg@5", "mrr@5"):
            row[k.upper()] = r[k]
            for base in ("continue", "reference", "hard"):
                v = r.get(f"{k} vs {base}")
                row[f"{k} vs {base} (Holm p)"] = f"{v} ({r[f'{k} p_holm vs {base}']})" if isinstance(v, str) and v != "—" else ""
        fnr = r.false_negative_rate
        row["FN rate"] = f"{fnr:.2%}" if isinstance(fnr, float) else ""
        rows.append(row)
    md = pd.DataFrame(rows).to_markdown(index=False)
    atomic_write(a.out + ".md", lambda f: Path(f).write_text(md + "\n"))
    print(md)


if __name__ == "__main__":
    main()
