"""Does the gap between a dataset's BCE and full-CE references predict how much top-K stochastic DPO gains on the BCE backbone?

Usage: python benchmarks/study/gap_vs_gain.py results/regimes/scientific results/regimes/beauty results/regimes/toys results/regimes/ml-100k
       [--arm topk_stochastic] [--beta 1.0] [--controls results/controls] [--out results/regimes/gap_vs_gain]

For each study folder: the mean test NDCG@5 of its `ce` and `bce` references over the seeds both have and the relative gap (BCE against CE),
and from its `regimes.csv` the arm's relative change on the BCE backbone against `continue` (the gain). The simpler alternatives on the BCE
backbone come from `--controls`/<dataset>/regimes.csv where that folder exists (`controls.py`: the same references and budget), else from the
study's own table: the arm against the negatives-only control with its negatives and against `dns`; `dns`, the negatives alone and
`continue-ce` against `continue` (95% CI, Holm-adjusted p of the table they come from). The arm against `continue-ce` (the BCE model
continued with full CE), paired over users and seeds from the runs' per-user ranks, Holm-adjusted over the datasets that have both, and
what a run of each costs (mean wall seconds, `train_s`). Across the datasets, the Spearman rank correlation of gap and gain: with a
handful of datasets it describes, it does not test. Writes OUT.json and OUT.md, prints the markdown.
"""
import argparse, json, sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from rodpo.experiment import format_change, format_p, paired_comparison, holm, experiment_table, _per_user


def references(folder: Path, backbone: str) -> dict:
    "seed -> test NDCG@5 of the backbone's references."
    out = {}
    for f in sorted((folder / backbone).glob("reference-seed*/metrics.json")):
        out[int(f.parent.name.removeprefix("reference-seed"))] = json.loads(f.read_text())["test"]["ndcg@5"]
    return out


def change(t: pd.DataFrame, arm: str, base: str):
    if t is None: return None
    r = t[(t.backbone == "bce") & (t.arm == arm) & (t.base == base) & (t.metric == "ndcg@5")]
    if not len(r): return None
    r = r.iloc[0]
    return dict(rel_change=float(r.rel_change), ci_low=float(r.ci_low), ci_high=float(r.ci_high), p_holm=float(r.p_holm), seeds=int(r.seeds))


def versus_switch(runs: Path, arm: str, switch: str = "continue-ce") -> dict | None:
    "The arm against `switch` on NDCG@5 (paired over users and the seeds both have), and each one's mean training seconds per run; None where either is missing."
    t = experiment_table(runs) if runs.exists() else None
    if t is None or not len(t): return None
    seeds = sorted(set(t[t.strategy == arm].seed) & set(t[t.strategy == switch].seed))
    if not seeds: return None
    c = paired_comparison(_per_user(runs, arm, seeds, "ndcg@5"), _per_user(runs, switch, seeds, "ndcg@5"))
    cost = {k: round(float(t[(t.strategy == k) & t.seed.isin(seeds)].train_s.mean()), 1) for k in (arm, switch)}
    return dict(rel_change=float(c["rel_change"]), ci_low=c["ci_low"], ci_high=c["ci_high"], p=c["p"], seeds=len(seeds), train_s=cost)


def fmt(c) -> str:
    return "not run" if c is None else f"{format_change(SimpleNamespace(**c))}, p {format_p(c['p_holm'])}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", help="study folders (results/regimes/<dataset>), each with ce and bce references and regimes.csv")
    p.add_argument("--arm", default="topk_stochastic")
    p.add_argument("--beta", default="1.0", help="the arm's beta, as in its run names")
    p.add_argument("--controls", default="results/controls", help="folder of controls.py outputs, one sub-folder per dataset")
    p.add_argument("--out", default="results/regimes/gap_vs_gain")
    a = p.parse_args(argv)
    arm = f"{a.arm}-beta{a.beta}"
    rows = []
    for folder in map(Path, a.folders):
        ce, bce = references(folder, "ce"), references(folder, "bce")
        seeds = sorted(set(ce) & set(bce))
        if not seeds: raise SystemExit(f"{folder}: no seed has both a ce and a bce reference")
        t = pd.read_csv(folder / "regimes.csv")
        c_ce, c_bce = float(np.mean([ce[s] for s in seeds])), float(np.mean([bce[s] for s in seeds]))
        ctl = Path(a.controls) / folder.name / "regimes.csv"
        alt, source = (pd.read_csv(ctl), "controls") if ctl.exists() else (t, "study")
        rows.append(dict(dataset=folder.name, seeds=seeds, ce_ndcg5=round(c_ce, 5), bce_ndcg5=round(c_bce, 5), gap=round(c_bce / c_ce - 1, 4),
                         vs_continue=change(t, arm, "continue"), alternatives=source, alt_vs_continue=change(alt, arm, "continue"),
                         vs_negatives=change(alt, arm, f"negatives-{a.arm}"), vs_dns=change(alt, arm, f"dns-beta{a.beta}"),
                         dns_vs_continue=change(alt, f"dns-beta{a.beta}", "continue"), negatives_vs_continue=change(alt, f"negatives-{a.arm}", "continue"),
                         continue_ce_vs_continue=change(alt, "continue-ce", "continue"),
                         vs_continue_ce=versus_switch((Path(a.controls) / folder.name if source == "controls" else folder) / "bce", arm)))
    have = [r["vs_continue_ce"] for r in rows if r["vs_continue_ce"]]
    for c, ph in zip(have, holm([c["p"] for c in have])): c["p_holm"] = float(ph)
    gaps = pd.Series([r["gap"] for r in rows]); gains = pd.Series([r["vs_continue"]["rel_change"] if r["vs_continue"] else np.nan for r in rows])
    ok = gains.notna()
    rho = float(gaps[ok].rank().corr(gains[ok].rank())) if ok.sum() >= 3 else None  # Spearman: Pearson on ranks
    out = dict(command="python benchmarks/study/gap_vs_gain.py " + " ".join(argv if argv is not None else sys.argv[1:]), arm=arm,
               rows=rows, spearman_gap_gain=None if rho is None else round(rho, 3), datasets=int(ok.sum()))
    md = [f"`{out['command']}`", "",
          f"| dataset | seeds | CE reference NDCG@5 | BCE reference NDCG@5 | BCE vs CE | {arm} vs continue (BCE, the study) |",
          "|---|---|---|---|---|---|"]
    md += [f"| {r['dataset']} | {len(r['seeds'])} | {r['ce_ndcg5']:.4f} | {r['bce_ndcg5']:.4f} | {100 * r['gap']:+.1f}% | {fmt(r['vs_continue'])} |" for r in rows]
    md += ["", f"The simpler alternatives on the BCE backbone (the same references and budget; from `{a.controls}/<dataset>` where it exists, else the study's table):", "",
           f"| dataset | {arm} vs continue | vs the same negatives without DPO | vs dns | dns vs continue | the negatives without DPO vs continue | continue-ce vs continue | from |",
           "|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['dataset']} | {fmt(r['alt_vs_continue'])} | {fmt(r['vs_negatives'])} | {fmt(r['vs_dns'])} | {fmt(r['dns_vs_continue'])} | {fmt(r['negatives_vs_continue'])} | "
           f"{fmt(r['continue_ce_vs_continue'])} | {'`' + a.controls + '/' + r['dataset'] + '`' if r['alternatives'] == 'controls' else 'the study'} |" for r in rows]
    md += ["", f"{arm} against the BCE model continued with full CE (`continue-ce`), paired over users and seeds (Holm over the datasets), and the mean wall seconds of a run of each (two runs shared the 2-core machine):", "",
           f"| dataset | seeds | {arm} vs continue-ce | {arm} s/run | continue-ce s/run |", "|---|---|---|---|---|"]
    md += [f"| {r['dataset']} | {c['seeds']} | {fmt(c)} | {c['train_s'][arm]} | {c['train_s']['continue-ce']} |" for r in rows if (c := r["vs_continue_ce"])]
    md += ["", f"Spearman rank correlation of the gap's size (BCE below CE) and the gain over `continue`, {int(ok.sum())} datasets: "
           + ("not computed (fewer than 3)" if rho is None else f"{-rho:+.2f}") + " (descriptive: a handful of datasets tests nothing)."]
    text = "\n".join(md) + "\n"
    stem = Path(a.out); stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n"); stem.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
