"""Loss-side against sampler-side robustness on the same runs: every objective of a grid with `hard` and with `topk_stochastic` negatives,
beside `continue`, `continue-ce` and `dns` (DPO), all aligning the same references with the study's DPO budget at one beta. On a full-softmax
CE backbone `continue` is `continue-ce`, which is then not run twice.

Usage: python benchmarks/study/objectives.py results/regimes/scientific [--backbone bce] [--beta 1.0] [--seeds 0,1,2,3,4] [--workers 2]
       [--objectives pairwise,cdpo,ipo] [--out results/objectives/scientific]
       python benchmarks/study/objectives.py --tables results/objectives/scientific  (the tables alone, from the committed runs)

The references are retrained from the study folder's `<backbone>/experiment.json` (same configuration and seeds) and checked against its
test metrics. The folder OUT/<backbone> is an experiment folder (rodpo.experiment; resumable: a second call trains only what is missing).
With the study's one negative per position (m = 1), `sdpo` and `lpo` are `pairwise` (a softmax or a product over one term), so the default
grid leaves them out. cdpo and rdpo run twice: with eps 0.1 (TRL's suggestion) and with eps 'auto', the false-negative rate of the
sampler's negatives on the reference, counted on training items only (`rodpo.dpo.train_false_negative_rate`).

Tables (`rodpo.experiment.paired_comparison`: users resampled, seeds paired; Wilcoxon p; Holm over one backbone's rows of a dataset):
- `objectives.csv` (in OUT, one table for every backbone folder): every arm against `continue`, `continue-ce`, `dns`, `topk_stochastic` (plain DPO with the top-K sampler) and, for the
  top-K arms, the same objective with `hard` negatives; NDCG@5 and MRR@5. `holm_family` says which rows one adjustment covers
  (a backbone's rows of one dataset).
- `beyond.csv`: per arm, the test's beyond-accuracy metrics (pop@10, head@10, coverage@10, tail_ndcg@10) as mean and std over seeds, and their
  change from the same seed's reference (a catalogue-level figure such as coverage has one value per run, so seeds are the units here).
- `<backbone>/runs.csv` (rodpo.experiment.experiment_table) and `parameters.json` (the command, the grid and the wall time of each call).
"""
import argparse, json, shlex, sys, time
from pathlib import Path

import pandas as pd

from rodpo.data import atomic_write
from rodpo.experiment import (ExperimentConfig, plan, run_runs, _record_config, experiment_table, paired_comparison, _per_user, holm,
                              objective_label, _names)
from rodpo.losses import OBJECTIVES

GRID = ("pairwise", "cdpo", "rdpo", "ipo", "hinge", "simpo", {"form": "cdpo", "eps": "auto"}, {"form": "rdpo", "eps": "auto"}, "dpop")  # sdpo and lpo are pairwise with m = 1
SAMPLERS = ("hard", "topk_stochastic")
CONTROLS = ("continue", "continue-ce", "dns")
METRICS = ("ndcg@5", "mrr@5")
BEYOND = ("pop@10", "head@10", "coverage@10", "tail_ndcg@10")


def configs(base: dict, out: Path, seeds, beta: float, objectives) -> tuple[ExperimentConfig, ExperimentConfig]:
    "The grid (the samplers x `objectives`) and the controls (DPO only for dns), as two configurations of one experiment folder."
    common = dict(seeds=tuple(seeds), model=base["model"], stage1=base["stage1"], dpo=dict(base["dpo"], beta=beta), sampler=base["sampler"])
    grid = ExperimentConfig(base["dataset"], str(out), SAMPLERS, objectives=tuple(objectives), **common)
    ce = base["stage1"].get("loss") == "ce"  # a full-softmax CE backbone's continue is continue-ce
    controls = ExperimentConfig(base["dataset"], str(out), tuple(c for c in CONTROLS if not (ce and c == "continue-ce")), **common)
    return grid, controls


def arms(objectives) -> list[str]:
    "The arm names of the folder, in reading order: controls, then each sampler with each objective."
    return ["continue", "continue-ce", "dns"] + [s + objective_label(o) for s in SAMPLERS for o in objectives]


def comparisons(out: Path, n_boot: int = 1000) -> pd.DataFrame:
    "The rows of objectives.csv for one backbone folder: the arms against the bases named in the module's docstring, over the seeds both have."
    t, objectives = experiment_table(out), json.loads((out / "experiment.json").read_text())["objectives"]
    seeds_of = t.groupby("strategy").seed.apply(set).to_dict()
    rows = []
    for arm in arms(objectives):
        if arm not in seeds_of or arm == "continue": continue
        bases = ["continue", "continue-ce", "dns", "topk_stochastic"]
        if arm.startswith("topk_stochastic") and arm != "topk_stochastic": bases.append("hard" + arm.removeprefix("topk_stochastic"))
        if arm.startswith("hard") and arm != "hard": bases.append("hard")
        for b in bases:
            if b == arm or b not in seeds_of or (arm == "continue-ce" and b != "continue"): continue
            seeds = sorted(seeds_of[arm] & seeds_of[b])
            for k in METRICS:
                r = paired_comparison(_per_user(out, arm, seeds, k), _per_user(out, b, seeds, k), n_boot)
                rows.append(dict(backbone=out.name, arm=arm, base=b, metric=k, seeds=len(seeds), **r))
    df = pd.DataFrame(rows)
    df.insert(df.columns.get_loc("p") + 1, "p_holm", holm(df.p))
    df["holm_family"] = f"the {len(df)} rows of backbone {out.name} in this table"
    return df


def beyond(out: Path) -> pd.DataFrame:
    "The rows of beyond.csv for one backbone folder: per arm, mean and std over seeds of the beyond-accuracy metrics, and the mean change from the same seed's reference."
    t = experiment_table(out)
    ref = t[t.strategy == "reference"].set_index("seed")
    rows = []
    for arm, g in t.groupby("strategy", sort=False):
        g = g.set_index("seed")
        row = dict(backbone=out.name, arm=arm, seeds=len(g))
        for k in BEYOND:
            v = g[f"test_{k}"]
            row[k], row[f"{k}_std"] = v.mean(), v.std(ddof=1)
            if arm != "reference":
                d = v - ref.loc[g.index, f"test_{k}"]
                row[f"{k}_vs_reference"], row[f"{k}_up_seeds"] = d.mean(), int((d > 0).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def tables(folder: Path):
    "Write objectives.csv and beyond.csv of a dataset folder (every backbone sub-folder; Holm within each), and each backbone's runs.csv."
    backbones = sorted(p.parent for p in folder.glob("*/experiment.json"))
    for b in backbones:
        t = experiment_table(b)
        atomic_write(b / "runs.csv", lambda f: t.to_csv(f, index=False))
    c = pd.concat([comparisons(b) for b in backbones], ignore_index=True)
    atomic_write(folder / "objectives.csv", lambda f: c.to_csv(f, index=False))
    be = pd.concat([beyond(b) for b in backbones], ignore_index=True)
    atomic_write(folder / "beyond.csv", lambda f: be.to_csv(f, index=False))
    return c, be


def identical(new: Path, old: Path) -> bool:
    "Whether a retrained reference has every test metric of the study's (metrics added since, such as pop@10, are not in the study's)."
    a, b = (json.loads((r / "metrics.json").read_text())["test"] for r in (new, old))
    return all(a[k] == v for k, v in b.items())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("study", nargs="?", help="a study folder (results/regimes/<dataset>) whose <backbone>/experiment.json gives the configuration")
    p.add_argument("--backbone", default="bce")
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--seeds", default=None, help="default: the study's")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--objectives", type=_names, default=GRID, help=f"comma-separated names in rodpo.losses.OBJECTIVES ({', '.join(OBJECTIVES)}), "
                   "or a JSON list of names and {\"form\": name, **hyperparameters}; default: the grid above, with eps 0.1 and eps 'auto'")
    p.add_argument("--out", default=None, help="default: results/objectives/<dataset>")
    p.add_argument("--tables", metavar="FOLDER", help="only write the tables of FOLDER (results/objectives/<dataset>) from its finished runs")
    a = p.parse_args(argv)
    if a.tables:
        c, _ = tables(Path(a.tables))
        return print(c[c.metric == "ndcg@5"][["backbone", "arm", "base", "rel_change", "ci_low", "ci_high", "p_holm"]].to_string())
    if not a.study: p.error("give a study folder (results/regimes/<dataset>), or --tables FOLDER")
    study = Path(a.study)
    base = json.loads((study / a.backbone / "experiment.json").read_text())
    out = Path(a.out or f"results/objectives/{study.name}") / a.backbone
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else base["seeds"]
    objectives = list(a.objectives)
    grid, controls = configs(base, out, seeds, a.beta, objectives)
    runs = {}
    for cfg in (controls, grid):
        for r in plan(cfg)[0]: runs.setdefault(r.name, r)
    todo = sum(not (out / name / "metrics.json").exists() for name in runs)
    out.mkdir(parents=True, exist_ok=True)
    _record_config(controls, out); _record_config(grid, out)
    t0 = time.time()
    run_runs(grid, list(runs.values()), workers=a.workers)
    wall = round(time.time() - t0)
    same = {s: identical(out / f"reference-seed{s}", study / a.backbone / f"reference-seed{s}") for s in seeds}
    f = out.parent / "parameters.json"
    old = json.loads(f.read_text()) if f.exists() else dict(dataset=base["dataset"], calls=[])
    cmd = shlex.join(["python", "benchmarks/study/objectives.py", *(argv if argv is not None else sys.argv[1:])])
    old["calls"].append(dict(command=cmd, backbone=a.backbone, seeds=seeds, beta=a.beta, objectives=objectives, samplers=list(SAMPLERS),
                             controls=list(controls.strategies), dpo=base["dpo"], sampler=base["sampler"], wall_s=wall, workers=a.workers,
                             references_identical_to_study=same, runs=len(runs), trained=todo))
    atomic_write(f, lambda fh: Path(fh).write_text(json.dumps(old, indent=1) + "\n"))
    c, _ = tables(out.parent)
    print(c[c.metric == "ndcg@5"][["backbone", "arm", "base", "rel_change", "ci_low", "ci_high", "p_holm"]].to_string())


if __name__ == "__main__":
    main()
