"""Recompute a folder's comparison table from its committed files alone (each run's per-user test ranks, test_ranks.npz, and its metrics:
the run folders' metrics.json, or the experiment's runs.csv where the run folders keep only their ranks)
and check it against the committed table, to the last printed digit: an experiment folder's summary.csv (`summarize_experiment`: relative
changes, paired bootstrap CIs, Holm-adjusted Wilcoxon p-values), or a study folder's regimes.csv (`regimes_table`, against the baselines its
parameters.json names, as `regimes_tables.py --bases` wrote them; else the default ones).

Usage: python benchmarks/study/recompute_tables.py results/reproduce/scientific [results/regimes/scientific ...] [--write]
Exit status 1 when a table differs or a run has no per-user ranks (runs finished before ranks were stored must be rerun to have them).
"""
import argparse, difflib, io, json, sys
from pathlib import Path

from rodpo.experiment import summarize_experiment
from rodpo.regimes import regimes_table


def recompute(folder: Path) -> tuple[str, str]:
    "(table file name, its recomputed text)."
    if (folder / "summary.csv").exists() or (folder / "experiment.json").exists():
        name, t = "summary.csv", summarize_experiment(folder)
        index = True
    else:
        params = folder / "parameters.json"  # the baselines the table was made with (regimes_tables.py --bases), where it records them
        bases = json.loads(params.read_text()).get("bases") if params.exists() else None
        name, t = "regimes.csv", regimes_table(folder, **({"bases": tuple(bases)} if bases else {}))
        index = False
    buf = io.StringIO()
    t.to_csv(buf, index=index)
    return name, buf.getvalue()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+")
    p.add_argument("--write", action="store_true", help="write the recomputed table instead of checking it")
    a = p.parse_args()
    bad = 0
    for f in map(Path, a.folders):
        try: name, text = recompute(f)
        except FileNotFoundError as e:
            print(f"{f}: cannot recompute: {e}"); bad += 1; continue
        if a.write:
            (f / name).write_text(text); print(f"{f / name}: written"); continue
        old = (f / name).read_text() if (f / name).exists() else ""
        if old == text: print(f"{f / name}: recomputed from the per-user ranks, identical ({len(text.splitlines()) - 1} rows)")
        else:
            bad += 1
            print(f"{f / name}: differs from the recomputation:")
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True), "committed", "recomputed", n=0))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
