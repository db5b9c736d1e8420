"""RoDPO on the HM4SR-style backbone (`rodpo.hm4sr`), beside rodpo's SASRec on the same data: stage 1 with its ablation, and the DPO arms
`continue`, `hard`, `topk_stochastic` and `dns` on the dense and on the sparse alignment MoE.

Usage: python benchmarks/study/hm4sr.py results/regimes/scientific [--backbone ce] [--seeds 0,1,2,3,4] [--ablation-seeds 0,1,2]
       [--beta 1.0] [--workers 2] [--out results/hm4sr/scientific]
       python benchmarks/study/hm4sr.py results/regimes/ml-100k --dataset ml-100k+text --modalities id,text --temporal
       python benchmarks/study/hm4sr.py --tables results/hm4sr/scientific  (the tables alone, from the committed runs)

The configuration is the SASRec study folder's `<backbone>/experiment.json` (`ce`: full-softmax CE, as HM4SR trains): its dataset,
modalities, stage-1 settings, DPO budget and sampler, with the model swapped for `backbone='hm4sr'` (its own fusion, the alignment MoE);
`--dataset` and `--modalities` replace the study's (MovieLens-100k's title text: `ml-100k+text`, `id,text`), and `--temporal` switches the
temporal MoE on (data with timestamps) and adds its ablation variant.
Experiment folders (rodpo.experiment; resumable: a second call trains only what is missing) under OUT:
- `dense/`, `sparse/`: the references (one a seed) and the four arms, `align_moe` 'dense' (HM4SR's) and 'sparse' (RoDPO's option);
- `stage1/<variant>/`: references only, one component switched off (`ABLATION`), on the ablation seeds; `no-category` only where the
  data has attributes (without them the category term is off everywhere).

Tables (`rodpo.experiment.paired_comparison`: users resampled, seeds paired; Wilcoxon p), each with its own Holm family, named in the
`holm_family` column:
- `dpo.csv`: within each MoE every arm against the reference and the DPO arms against `continue`, top-K against `hard`; across the MoEs each
  sparse run against the dense one of the same arm, and sparse top-K DPO against the dense reference (the paper's full RoDPO against HM4SR);
- `stage1.csv`: the dense and sparse references against SASRec's (the study folder's `<backbone>/reference`) and each ablation variant
  against the dense reference;
- `sasrec.csv`: the same DPO arms on the SASRec references of the same data (the study folder's `hard`, `topk_stochastic` at beta 1 against its
  `continue`, those it has; `dns` from `--controls`, results/controls_softmax/<dataset>/<backbone>, or else from the study folder), for the page
  to set beside `dpo.csv`;
- `runs.csv` in every experiment folder (rodpo.experiment.experiment_table) and `parameters.json` (commands, grid, wall times).
"""
import argparse, json, shlex, sys, time
from pathlib import Path

import pandas as pd

from rodpo.data import atomic_write
from rodpo.experiment import ExperimentConfig, plan, run_runs, _record_config, experiment_table, paired_comparison, _per_user, holm

ARMS = ("continue", "hard", "topk_stochastic", "dns")
MOES = ("dense", "sparse")
ABLATION = {  # variant -> the SASRecConfig fields it changes from the full (dense) backbone
    "no-align": dict(align_moe="none"),
    "no-id_cl": dict(id_cl_weight=0.0),
    "no-category": dict(category_weight=0.0),
    "no-placeholder": dict(placeholder_weight=0.0),
    "no-aux": dict(id_cl_weight=0.0, category_weight=0.0, placeholder_weight=0.0),
    "no-temporal": dict(temporal_moe=False),  # only with --temporal
}
METRICS = ("ndcg@5", "mrr@5")


def model_of(base: dict, **changes) -> dict:
    "The HM4SR model of a SASRec study's configuration: its modalities, the backbone's own fusion, and `changes`."
    m = {k: v for k, v in base["model"].items() if k not in ("fusion", "moe_ffn", "tied_output")}
    return dict(m, fusion="sum", backbone="hm4sr", **changes)


def configs(base: dict, out: Path, seeds, ablation_seeds, beta: float, ablation=tuple(ABLATION), **model) -> dict[str, ExperimentConfig]:
    "{folder: its configuration}: dense and sparse with the arms, and one references-only folder per ablation variant; `model`: fields over the study's."
    common = dict(stage1=base["stage1"], dpo=dict(base["dpo"], beta=beta), sampler=base["sampler"])
    c = {moe: ExperimentConfig(base["dataset"], str(out / moe), ARMS, tuple(seeds), model=model_of(base, **dict(model, align_moe=moe)), **common) for moe in MOES}
    for v in ablation:
        c[f"stage1/{v}"] = ExperimentConfig(base["dataset"], str(out / "stage1" / v), ("continue",), tuple(ablation_seeds),
                                            model=model_of(base, **{**model, "align_moe": "dense", **ABLATION[v]}), **common)
    return c


def _seeds(folder: Path, arm: str) -> set:
    return {int(p.name.rsplit("-seed", 1)[1]) for p in folder.glob(f"{arm}-seed*") if (p / "test_ranks.npz").exists() or (p / "test_per_user.csv").exists()}


def _compare(rows: list, a: tuple, b: tuple, n_boot: int, **tags):
    "Append the rows of arm a = (folder, arm) against b over the seeds both have, one per metric."
    seeds = sorted(_seeds(*a) & _seeds(*b))
    if not seeds: return
    for k in METRICS:
        r = paired_comparison(_per_user(a[0], a[1], seeds, k), _per_user(b[0], b[1], seeds, k), n_boot)
        rows.append(dict(**tags, metric=k, seeds=len(seeds), **r))


def _family(rows: list, name: str) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df.insert(df.columns.get_loc("p") + 1, "p_holm", holm(df.p))
    df["holm_family"] = f"the {len(df)} rows of {name}"
    return df


def dpo_table(out: Path, n_boot: int = 1000) -> pd.DataFrame:
    rows = []
    for moe in MOES:
        f = out / moe
        for arm in ARMS:
            _compare(rows, (f, arm), (f, "reference"), n_boot, moe=moe, arm=arm, base="reference")
            if arm != "continue": _compare(rows, (f, arm), (f, "continue"), n_boot, moe=moe, arm=arm, base="continue")
        _compare(rows, (f, "topk_stochastic"), (f, "hard"), n_boot, moe=moe, arm="topk_stochastic", base="hard")
    for arm in ("reference",) + ARMS:
        _compare(rows, (out / "sparse", arm), (out / "dense", arm), n_boot, moe="sparse", arm=arm, base=f"dense {arm}")
    _compare(rows, (out / "sparse", "topk_stochastic"), (out / "dense", "reference"), n_boot, moe="sparse", arm="topk_stochastic", base="dense reference")
    return _family(rows, "this table (dpo.csv)")


def stage1_table(out: Path, sasrec: Path, n_boot: int = 1000) -> pd.DataFrame:
    rows = []
    for moe in MOES: _compare(rows, (out / moe, "reference"), (sasrec, "reference"), n_boot, variant=moe, base="sasrec")
    for v in ABLATION:
        if (out / "stage1" / v).exists(): _compare(rows, (out / "stage1" / v, "reference"), (out / "dense", "reference"), n_boot, variant=v, base="dense")
    return _family(rows, "this table (stage1.csv)")


def sasrec_table(sasrec: Path, controls: Path | None, n_boot: int = 1000) -> pd.DataFrame:
    rows = []
    for arm in ("hard-beta1.0", "topk_stochastic-beta1.0"): _compare(rows, (sasrec, arm), (sasrec, "continue"), n_boot, folder=str(sasrec), arm=arm, base="continue")
    dns = controls if controls is not None else sasrec  # the regimes study ran dns beside its arms on some datasets (ml-100k)
    _compare(rows, (dns, "dns-beta1.0"), (dns, "continue"), n_boot, folder=str(dns), arm="dns-beta1.0", base="continue")
    return _family(rows, "this table (sasrec.csv)")


def tables(folder: Path, n_boot: int = 1000):
    "Write the tables of a results/hm4sr/<dataset> folder from its finished runs and parameters.json (which names the SASRec folders)."
    p = json.loads((folder / "parameters.json").read_text())
    for f in sorted(x.parent for x in folder.glob("**/experiment.json")):
        t = experiment_table(f)
        atomic_write(f / "runs.csv", lambda fh: t.to_csv(fh, index=False))
    out = {}
    for name, df in (("dpo", dpo_table(folder, n_boot)), ("stage1", stage1_table(folder, Path(p["sasrec"]), n_boot)),
                     ("sasrec", sasrec_table(Path(p["sasrec"]), Path(p["controls"]) if p.get("controls") else None, n_boot))):
        atomic_write(folder / f"{name}.csv", lambda fh: df.to_csv(fh, index=False))
        out[name] = df
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", nargs="?", help="a SASRec study folder (results/regimes/<dataset>) whose <backbone>/experiment.json gives the configuration")
    ap.add_argument("--backbone", default="ce", help="the study's backbone folder to copy (default ce: full-softmax CE, as HM4SR trains)")
    ap.add_argument("--seeds", default=None, help="seeds of the dense and sparse folders (default: the study's)")
    ap.add_argument("--ablation-seeds", default="0,1,2")
    ap.add_argument("--ablation", default=None, help=f"comma-separated variants among {', '.join(ABLATION)}; default: all, less no-category "
                    "where the study's references have no attributes (the category term is then off in every variant)")
    ap.add_argument("--dataset", default=None, help="the dataset to train on instead of the study's (same users and splits), e.g. ml-100k+text")
    ap.add_argument("--modalities", default=None, help="comma-separated modalities instead of the study's model's (e.g. id,text)")
    ap.add_argument("--temporal", action="store_true", help="switch the temporal MoE on (the data needs timestamps) and add the no-temporal ablation")
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--controls", default=None, help="the SASRec controls folder with its dns arm (default: results/controls_softmax/<dataset>/<backbone> if present)")
    ap.add_argument("--only", default=None, help="comma-separated folders to train in this call (dense, sparse, stage1/<variant>); default: all")
    ap.add_argument("--out", default=None, help="default: results/hm4sr/<dataset>")
    ap.add_argument("--tables", metavar="FOLDER", help="only write the tables of FOLDER (results/hm4sr/<dataset>) from its finished runs")
    a = ap.parse_args(argv)
    if a.tables:
        t = tables(Path(a.tables))
        return print(t["dpo"][t["dpo"].metric == "ndcg@5"].drop(columns=["holm_family"]).to_string())
    if not a.study: ap.error("give a study folder (results/regimes/<dataset>), or --tables FOLDER")
    study = Path(a.study)
    base = json.loads((study / a.backbone / "experiment.json").read_text())
    if a.dataset: base["dataset"] = a.dataset
    if base["stage1"].get("loss", "bce") != "ce": ap.error(f"--backbone {a.backbone} trains with {base['stage1'].get('loss')}: HM4SR trains with full-softmax CE (give a ce folder)")
    out = Path(a.out or f"results/hm4sr/{study.name}")
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else base["seeds"]
    abl = [int(s) for s in a.ablation_seeds.split(",")]
    controls = Path(a.controls) if a.controls else Path(f"results/controls_softmax/{study.name}/{a.backbone}")
    if a.ablation: variants = a.ablation.split(",")
    else:
        attrs = json.loads((study / a.backbone / f"reference-seed{base['seeds'][0]}" / "config.json").read_text())["model"]["n_attributes"]
        variants = [v for v in ABLATION if (attrs or v != "no-category") and (a.temporal or v != "no-temporal")]
    if unknown := set(variants) - set(ABLATION): ap.error(f"--ablation {sorted(unknown)}: the variants are {', '.join(ABLATION)}")
    model = dict(**({"modalities": a.modalities.split(",")} if a.modalities else {}), **({"temporal_moe": True} if a.temporal else {}))
    cfgs = configs(base, out, seeds, abl, a.beta, variants, **model)
    only = a.only.split(",") if a.only else list(cfgs)
    if unknown := set(only) - set(cfgs): ap.error(f"--only {sorted(unknown)}: the folders are {', '.join(cfgs)}")
    f = out / "parameters.json"
    params = json.loads(f.read_text()) if f.exists() else dict(dataset=base["dataset"], sasrec=str(study / a.backbone), calls=[])
    params["controls"] = str(controls) if controls.exists() else None
    cmd = shlex.join(["python", "benchmarks/study/hm4sr.py", *(argv if argv is not None else sys.argv[1:])])
    for name in only:
        cfg = cfgs[name]
        d = Path(cfg.out_dir); d.mkdir(parents=True, exist_ok=True)
        _record_config(cfg, d)
        runs = plan(cfg, arms=name in MOES)[0]
        todo = sum(not (d / r.name / "metrics.json").exists() for r in runs)
        t0 = time.time()
        run_runs(cfg, runs, workers=a.workers)
        if f.exists(): params["calls"] = json.loads(f.read_text())["calls"]  # as written now: calls on other folders may run beside this one
        params["calls"].append(dict(command=cmd, folder=name, seeds=list(cfg.seeds), model=cfg.model, stage1=cfg.stage1, dpo=cfg.dpo, sampler=cfg.sampler,
                                    strategies=list(cfg.strategies) if name in MOES else [], runs=len(runs), trained=todo,
                                    wall_s=round(time.time() - t0), workers=a.workers))
        atomic_write(f, lambda fh: Path(fh).write_text(json.dumps(params, indent=1) + "\n"))  # after each folder: a crash keeps what finished
    t = tables(out)
    print(t["dpo"][t["dpo"].metric == "ndcg@5"].drop(columns=["holm_family"]).to_string())


if __name__ == "__main__":
    main()
