"""Paired comparisons of runs that live in different folders: one option against another on the same seeds and test users.

Usage: python benchmarks/study/cross_runs.py --pair "NAME=FOLDER/ARM vs FOLDER/ARM" [--pair ...] [--metric ndcg@5] [--out OUT]

Each side names runs `FOLDER/ARM-seed<s>` with per-user ranks (`test_ranks.npz`), e.g. a DPO arm on one backbone
(`results/controls_softmax/beauty/sampled_softmax/topk_stochastic-beta1.0`) against the reference of another backbone
(`results/backbones/beauty/sampled_softmax_1000/reference`). Per pair, over the seeds both sides have: the first side's relative
change against the second, a paired bootstrap CI, the Wilcoxon p-value (`rodpo.experiment.paired_comparison`, users and seeds
paired), Holm-adjusted over the pairs, and each side's mean training seconds per run (`train_s` of `experiment_table`: a DPO run's
wall time, a stage-1 run's epochs x mean epoch time; neither includes the stage-1 model a DPO run starts from). Writes OUT.json and
OUT.md, prints the markdown.
"""
import argparse, sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from rodpo.experiment import _per_user, experiment_table, paired_comparison, holm, format_change, format_p
from rodpo.data import atomic_write
from rodpo.runs import save_json


def runs_of(side: Path):
    "The finished runs `side`-seed<s> (`rodpo.experiment.experiment_table` of its folder): seed -> training seconds."
    t = experiment_table(side.parent) if side.parent.exists() else None
    if t is None or not len(t): return {}
    r = t[t.strategy == side.name]
    return dict(zip(r.seed, r.train_s))


def parse_pair(text: str) -> tuple:
    name, _, sides = text.partition("=")
    a, sep, b = sides.partition(" vs ")
    if not name.strip() or not sep: raise SystemExit(f'--pair {text!r}: expected "NAME=FOLDER/ARM vs FOLDER/ARM"')
    return name.strip(), Path(a.strip()), Path(b.strip())


def compare(pairs, metric="ndcg@5", n_boot=1000) -> list:
    rows = []
    for name, a, b in pairs:
        ra, rb = runs_of(a), runs_of(b)
        seeds = sorted(int(s) for s in set(ra) & set(rb))
        if not seeds: raise SystemExit(f"{name}: no seed has finished runs on both sides ({a}-seed*, {b}-seed*)")
        c = paired_comparison(_per_user(a.parent, a.name, seeds, metric), _per_user(b.parent, b.name, seeds, metric), n_boot=n_boot)
        rows.append(dict(pair=name, a=str(a), b=str(b), seeds=seeds, metric=metric, **{k: float(v) for k, v in c.items()},
                         a_wall_s=round(float(np.mean([ra[s] for s in seeds])), 1), b_wall_s=round(float(np.mean([rb[s] for s in seeds])), 1)))
    for r, p in zip(rows, holm([r["p"] for r in rows])): r["p_holm"] = float(p)
    return rows


def markdown(rows, command) -> str:
    lines = [f"# Paired comparisons across folders\n\n`{command}`\n",
             f"| pair | seeds | first | second | {rows[0]['metric']}: first vs second [95% CI] | Holm p | first s/run | second s/run |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['pair']} | {len(r['seeds'])} | `{r['a']}` | `{r['b']}` | {r['mean']:.4f} vs {r['base_mean']:.4f}: {format_change(SimpleNamespace(**r))} | "
                     f"{format_p(r['p_holm'])} | {r['a_wall_s']} | {r['b_wall_s']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pair", action="append", required=True, help='"NAME=FOLDER/ARM vs FOLDER/ARM"; repeat for more pairs (Holm over them)')
    p.add_argument("--metric", default="ndcg@5")
    p.add_argument("--n_boot", type=int, default=1000)
    p.add_argument("--out", help="writes OUT.json and OUT.md")
    a = p.parse_args(argv)
    rows = compare([parse_pair(t) for t in a.pair], a.metric, a.n_boot)
    command = "python benchmarks/study/cross_runs.py " + " ".join(f'--pair "{t}"' for t in a.pair) + (f" --out {a.out}" if a.out else "")
    md = markdown(rows, command)
    if a.out:
        save_json(dict(command=command, rows=rows), Path(a.out).with_suffix(".json"))
        atomic_write(Path(a.out).with_suffix(".md"), lambda f: Path(f).write_text(md))
    print(md)


if __name__ == "__main__":
    main(sys.argv[1:])
