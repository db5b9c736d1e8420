"""A study folder's tables from its finished runs, for studies made of several papermill calls (one seed or backbone each), which write no
combined table: regimes.csv, summary_vs_<base>.csv for each of `--bases` (default continue, hard, reference), summary_vs_continue.md, versus_full_ce.csv (with a ce backbone), regimes.html, and
parameters.json recording the seeds found and `--note` (how the runs were made), and regimes.json rewritten as the one configuration of the
whole folder (the union of the calls' seeds and backbones, the quarter reference's epochs), so that `run_regimes` with it finds every run done.

Usage: python benchmarks/study/regimes_tables.py results/regimes/beauty --note "seed 0: ...; seeds 1, 2: bce only; papermill ..." [--title TEXT]
       [--bases continue,reference,negatives,dns]  (`negatives`: each DPO arm against the negatives-only control of its strategy)
"""
import argparse, json
from pathlib import Path

from rodpo.data import atomic_write
from rodpo.regimes import RegimesConfig, BACKBONE_ORDER, regimes_table, regimes_summary, versus_full_ce, regimes_figure


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder")
    p.add_argument("--note", required=True, help="which runs the folder holds and the commands that made them")
    p.add_argument("--title", default=None)
    p.add_argument("--bases", default="continue,hard,reference", help="baselines every arm is compared with (Holm over the whole table)")
    a = p.parse_args()
    out = Path(a.folder)
    bases = a.bases.split(",")
    t = regimes_table(out, bases=tuple(bases))
    atomic_write(out / "regimes.csv", lambda f: t.to_csv(f, index=False))
    for base in bases:
        s = regimes_summary(t, base)
        if not len(s): continue
        atomic_write(out / f"summary_vs_{base}.csv", lambda f: s.to_csv(f, index=False))
        if base == "continue": atomic_write(out / "summary_vs_continue.md", lambda f: Path(f).write_text(s.to_markdown(index=False) + "\n"))
    v = versus_full_ce(out)
    if len(v): atomic_write(out / "versus_full_ce.csv", lambda f: v.to_csv(f, index=False))
    else: (out / "versus_full_ce.csv").unlink(missing_ok=True)  # no full-CE backbone in this study
    fig = regimes_figure(t, title=a.title or out.name)
    atomic_write(out / "regimes.html", lambda f: fig.write_html(f, include_plotlyjs="directory"))
    old = json.loads((out / "parameters.json").read_text()) if (out / "parameters.json").exists() else {}
    quarter = out / "ce-quarter" / "experiment.json"
    found = dict(seeds=sorted({int(r.name.rsplit("seed", 1)[1]) for r in out.glob("*/*-seed*") if (r / "metrics.json").exists()}),
                 backbones=[b for b in BACKBONE_ORDER if b != "ce-quarter" and (out / b / "experiment.json").exists()], quarter=quarter.exists(),
                 quarter_epochs=json.loads(quarter.read_text())["stage1"]["max_epochs"] if quarter.exists() else None)  # the folder's, not the last call's
    params = {k: v for k, v in old.items() if k not in ("seeds", "note", "quick", "wall_s", "out_dir")}
    atomic_write(out / "parameters.json", lambda f: Path(f).write_text(json.dumps(dict(params, dataset=params.get("dataset", out.name), **found, bases=bases, note=a.note), indent=1) + "\n"))
    if (out / "regimes.json").exists():  # each call wrote its own seeds and backbones
        cfg = dict(json.loads((out / "regimes.json").read_text()), **found)
        RegimesConfig(**cfg)  # a valid configuration
        atomic_write(out / "regimes.json", lambda f: Path(f).write_text(json.dumps(cfg, indent=2) + "\n"))
    print(regimes_summary(t, "continue").to_markdown(index=False))


if __name__ == "__main__":
    main()
