"The repository tells the truth about itself: README commands, README text, CI."
import json
import pytest
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_has_two_commands_and_ci_runs_the_test_one():
    cmds = readme_commands()
    assert len(cmds) == 2, cmds
    main, tests = cmds
    assert "rodpo-reproduce" in main and "pytest" in tests
    ci_lines = (ROOT / ".ci/run").read_text().splitlines()
    assert tests in ci_lines, "the README's test command must appear verbatim in .ci/run"
    assert main.split(" && ")[:2] == tests.split(" && ")[:2], "both commands install the same way"


def test_readme_is_index_notebook():
    r = subprocess.run([sys.executable, str(ROOT / ".ci/readme.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_papermill_tag_survives_nbdev_clean():
    import tomllib
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["nbdev"]
    assert "tags" in cfg["allowed_cell_metadata_keys"]


def test_skipped_browser_tests_say_so_in_one_line(tmp_path):
    "Without Chromium the browser tests skip (outside CI), and pytest's summary says so in one line with how to run them."
    import os
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "RODPO_REQUIRE_BROWSER")}
    env["RODPO_CHROMIUM"] = str(tmp_path / "no-chromium")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_browser.py", "-k", "docs_site_pages"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("browser tests: 1 skipped: RODPO_CHROMIUM=")]
    assert len(lines) == 1 and "sudo apt-get install -y chromium" in lines[0], r.stdout


def test_every_committed_dpo_run_starts_at_margin_zero():
    """The implicit reward is taken without dropout: step 1 of every committed DPO run has reward margin 0 and the loss of its objective
    at margin 0 (log 2 for DPO; the continue control has no DPO term); SimPO reads the policy's logits alone, so no value is fixed."""
    import json, math
    import torch
    from rodpo.losses import dpo_loss
    def step1(m):
        p = m.get("preference") or {"form": "pairwise"}
        if p["form"] == "simpo": return None
        z = torch.zeros(1)
        return dpo_loss(z, z[:, None], z, z[:, None], m["beta"], p["form"], policy_logp=z, ref_logp=z,
                        **{k: v for k, v in p.items() if k not in ("form", "measured")}).item()
    runs = [json.loads(f.read_text()) for f in ROOT.glob("results/**/metrics.json")]
    is_control = lambda m: m.get("strategy", "").startswith(("continue", "negatives-"))  # no DPO term: continue, continue-<loss>, negatives-<strategy>
    dpo = [m for m in runs if "first_step" in m and not is_control(m)]
    control = [m for m in runs if "first_step" in m and is_control(m)]
    assert len(dpo) >= 200 and len(control) >= 40  # the regimes study and the main job
    assert all(abs(m["first_step"]["loss"] - step1(m)) < 1e-4 and abs(m["first_step"]["reward_margin"]) < 1e-4 for m in dpo if step1(m) is not None)
    assert sum(step1(m) is None for m in dpo) < len(dpo) / 10  # simpo only
    assert all("loss" not in m["first_step"] and m["first_step"]["anchor_loss"] > 0 for m in control)


def test_each_committed_study_folder_holds_the_grid_of_its_configuration():
    "Each committed regimes folder's regimes.json names exactly its finished runs: every backbone x seed x arm x beta it lists, and nothing else."
    import json
    from rodpo.regimes import RegimesConfig
    folders = sorted(ROOT.glob("results/regimes/*/regimes.json"))
    assert len(folders) >= 3
    for f in folders:
        cfg, out = RegimesConfig(**json.loads(f.read_text())), f.parent
        want = {f"{b}/{run}-seed{s}" for b in cfg.backbones + (("ce-quarter",) if cfg.quarter else ()) for s in cfg.seeds
                for run in ["reference", "continue"] + [f"{arm}-beta{beta}" for arm in cfg.arms if arm != "continue" for beta in cfg.betas]}
        have = {str(p.parent.relative_to(out)) for p in out.glob("*/*-seed*/metrics.json") if p.parent.parent.name != "anchor"}  # anchor/: the anchor choice
        assert want == have, f"{out}: missing {sorted(want - have)[:4]}, not in regimes.json {sorted(have - want)[:4]}"


def test_benchmark_scripts_are_where_the_docs_say():
    "Every benchmark script that the README, the notebooks, the tests or benchmarks/ name exists; each script's usage line gives its own path, and benchmarks/README.md lists it."
    scripts = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "benchmarks").glob("*/*") if p.suffix in (".py", ".sh"))
    assert len(scripts) >= 10 and not list((ROOT / "benchmarks").glob("*.py")) + list((ROOT / "benchmarks").glob("*.sh")), "scripts live in benchmarks/<group>/"
    texts = {p: p.read_text(encoding="utf-8") for pattern in ("README.md", "nbs/*.ipynb", "tests/*.py", "docs/*.md", "benchmarks/*.md", "benchmarks/*/*")
             for p in ROOT.glob(pattern) if p.is_file()}
    named = {m: p.relative_to(ROOT).as_posix() for p, t in texts.items() for m in re.findall(r"benchmarks/[\w/]+\.(?:py|sh)\b", t)}
    missing = {m: where for m, where in named.items() if not (ROOT / m).is_file()}
    assert not missing, f"named but not in the repository (path: where): {missing}"
    listing = (ROOT / "benchmarks/README.md").read_text()
    for s in scripts:
        assert s in texts[ROOT / s], f"{s}: its usage line should give its own path"
        assert s.removeprefix("benchmarks/") in listing, f"benchmarks/README.md does not list {s}"


@pytest.mark.parametrize("folder, n_runs", [("reproduce", 33), ("reproduce_k_sweep", 39)])
def test_main_job_table_recomputes_from_committed_per_user_ranks(tmp_path, folder, n_runs):
    "The committed main job's summary.csv follows from its committed files alone: runs.csv and each run's test_ranks.npz (no metrics.json is committed, so that the README's main job trains on a fresh clone instead of reusing them)."
    import shutil
    from rodpo.experiment import summarize_experiment
    from rodpo.runs import load_ranks
    src = ROOT / "results" / folder / "scientific"
    runs = sorted(p.parent for p in src.glob("*-seed*/test_ranks.npz"))
    assert len(runs) == n_runs
    shutil.copy(src / "runs.csv", tmp_path / "runs.csv")
    for run in runs:  # only what is committed: no metrics.json, no test_per_user.csv, no checkpoint
        (tmp_path / run.name).mkdir()
        shutil.copy(run / "test_ranks.npz", tmp_path / run.name / "test_ranks.npz")
        users, ranks = load_ranks(run)
        assert len(users) == len(ranks) == len(set(users.tolist())) == 2_928 and ranks.min() >= 1  # every Scientific test user, once
    summary = summarize_experiment(tmp_path)
    out = tmp_path / "summary.csv"
    summary.to_csv(out)
    assert out.read_text() == (src / "summary.csv").read_text()
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "study" / "recompute_tables.py"), str(src)], capture_output=True, text=True)
    assert r.returncode == 0 and "identical" in r.stdout, r.stdout + r.stderr


def test_every_committed_run_folder_accepts_its_configuration_today():
    "A configuration field added since a run was saved must not make its folder refuse the same run (fields declared with `rodpo.data.added`): every committed run's config.json, read back through today's DPOConfig or TrainConfig, compares equal, so studies and the main job reuse their runs."
    import json
    from dataclasses import asdict, fields
    from rodpo.dpo import DPOConfig, recorded
    from rodpo.train import TrainConfig
    from rodpo.runs import _comparable
    n = 0
    for f in sorted(ROOT.glob("results/**/config.json")):
        old = json.loads(f.read_text())
        part, cls = ("dpo", DPOConfig) if "dpo" in old else ("train", TrainConfig) if "train" in old else (None, None)
        if part is None: continue
        names = {x.name for x in fields(cls)}
        new = asdict(cls(**{k: v for k, v in old[part].items() if k in names and v is not None}))  # a field the run did not read is recorded as None
        new = dict(old, **{part: recorded(new) if part == "dpo" else new})
        assert _comparable(new) == _comparable(old), f
        n += 1
    assert n >= 400


@pytest.mark.parametrize("dataset", ["beauty", "toys", "beauty-nprobe32", "beauty-pq4", "toys-pq4", "beauty-pq4x1", "toys-pq4x1", "beauty-l2", "toys-l2"])
def test_ann_pool_comparison_recomputes_from_committed_per_user_ranks(tmp_path, dataset):
    "results/ann_pool/<dataset>/ann_vs_exact.json: the approximate against the exact pool, recomputed from the committed run folders alone."
    import importlib.util, shutil
    folder = ROOT / "results" / "ann_pool" / dataset
    shutil.copytree(folder, tmp_path / dataset, ignore=shutil.ignore_patterns("*.pt", "ann_vs_exact.*"))
    spec = importlib.util.spec_from_file_location("ann_pool_quality", ROOT / "benchmarks" / "scale" / "ann_pool_quality.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    new, old = mod.one(tmp_path / dataset), json.loads((folder / "ann_vs_exact.json").read_text())
    assert new["comparison"] == old["comparison"] and new["seeds"] == old["seeds"] == [0, 1, 2]
    assert (new["pool_recall"], new["pool_recall_by_index_age"], new["false_negative_rate"]) == (old["pool_recall"], old["pool_recall_by_index_age"], old["false_negative_rate"])


@pytest.mark.parametrize("dataset", ["beauty-refresh", "toys-refresh"])
def test_ann_refresh_comparison_recomputes_from_committed_per_user_ranks(tmp_path, dataset):
    "results/ann_pool/<dataset>/refresh.json: the index rebuilt once a run against every 100 steps, recomputed from the committed run folders alone."
    import importlib.util, shutil
    folder = ROOT / "results" / "ann_pool" / dataset
    shutil.copytree(folder, tmp_path / dataset, ignore=shutil.ignore_patterns("*.pt", "refresh.*"))
    spec = importlib.util.spec_from_file_location("ann_refresh", ROOT / "benchmarks" / "scale" / "ann_refresh.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    new, old = mod.one(tmp_path / dataset), json.loads((folder / "refresh.json").read_text())
    new = json.loads(json.dumps(new))  # as written: refresh values as keys become strings
    assert {k: v for k, v in new.items() if k != "folder"} == {k: v for k, v in old.items() if k != "folder"} and new["seeds"] == [0, 1, 2]
    steps = old["refresh"]["100"]["steps"][0]  # 528 steps a run on Beauty, 459 on Toys
    assert old["refresh"]["100"]["builds"] == [-(-steps // 100)] * 3 and old["refresh"]["1000"]["builds"] == [1, 1, 1]


def recomputed_table(src: Path, tmp_path: Path, runs: int, ignore=("*.pt", "regimes.csv", "summary_vs_*", "versus_full_ce.csv")) -> str:
    "A study folder's regimes.csv, recomputed by benchmarks/study/recompute_tables.py from a copy without its tables (after checking it holds `runs` per-user rank files); the committed one must equal it."
    import shutil
    shutil.copytree(src, tmp_path / src.name, ignore=shutil.ignore_patterns(*ignore))
    assert len(list((tmp_path / src.name).glob("*/*-seed*/test_ranks.npz"))) == runs
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "study" / "recompute_tables.py"), str(tmp_path / src.name), "--write"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return (tmp_path / src.name / "regimes.csv").read_text()


@pytest.mark.parametrize("dataset,runs,rows", [("ml-100k", 33, "dns-beta1.0,ndcg@5"), ("scientific", 160, "bce,topk_stochastic-beta1.0,hard-beta1.0,ndcg@5"),
                                               ("toys", 96, "ce-quarter,topk_stochastic-beta1.0,continue,ndcg@5"),
                                               ("beauty", 96, "ce,hard-beta1.0,reference,ndcg@5")])
def test_study_recomputes_from_committed_per_user_ranks(tmp_path, dataset, runs, rows):
    """results/regimes/<dataset>/regimes.csv follows from the run folders' per-user ranks alone: MovieLens-100k (every arm against continue,
    the reference, the negatives-only control and dns), Scientific (5 seeds), Toys (3 seeds) and Beauty (3 seeds; every backbone and arm of the study against continue, the reference and hard)."""
    # runs: ml-100k: 2 backbones x 3 seeds (references, 6 BCE arms, 3 CE arms); scientific, toys, beauty: 4 backbones x 5 (3, 3) seeds x 8
    src = ROOT / "results" / "regimes" / dataset
    new, old = recomputed_table(src, tmp_path, runs, ("*.pt", "regimes.csv", "summary_vs_*", "versus_full_ce.csv", "anchor")), (src / "regimes.csv").read_text()
    assert new == old and rows in old and "continue," in old


@pytest.mark.parametrize("dataset,refs,seeds", [("scientific", "scientific", "0,1,2,3,4"), ("beauty", "beauty", "0,1,2")])
def test_bce_negatives_comparison_recomputes_from_committed_per_user_ranks(tmp_path, dataset, refs, seeds):
    "results/bce_negatives/<dataset>/bce_negatives.json: the 'history' BCE runs against the study's references, recomputed from the committed runs alone (nothing trains)."
    import shutil
    src = ROOT / "results" / "bce_negatives" / dataset
    shutil.copytree(src, tmp_path / "b", ignore=shutil.ignore_patterns("*.pt", "bce_negatives.*", "parameters.json", "test_per_user.csv"))
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "study" / "bce_negatives.py"), "--refs", str(ROOT / "results" / "regimes" / refs / "bce"),
                        "--out", str(tmp_path / "b"), "--seeds", seeds, "--compare_only"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    new, old = json.loads((tmp_path / "b" / "bce_negatives.json").read_text()), json.loads((src / "bce_negatives.json").read_text())
    assert {k: v for k, v in new.items() if k not in ("command", "refs")} == {k: v for k, v in old.items() if k not in ("command", "refs")}
    assert len(new["history_vs_target"]) == 4 and len(new["runs"]) == 2 * len(seeds.split(","))
    params = json.loads((tmp_path / "b" / "parameters.json").read_text())  # the command and the runs' summed wall time, as committed
    assert {k: v for k, v in params.items() if k not in ("command", "refs")} == {k: v for k, v in json.loads((src / "parameters.json").read_text()).items() if k not in ("command", "refs")}
    assert params["wall"].startswith(f"{sum(r['train_eval_s'] for r in new['runs'] if r['variant'] == 'history'):,.0f} s")


def test_gap_against_gain_follows_from_the_committed_studies(tmp_path):
    "results/regimes/gap_vs_gain.json: the BCE-to-CE gap recomputed here from the references' metrics.json, the gains read from each regimes.csv."
    import csv, importlib.util
    spec = importlib.util.spec_from_file_location("gap_vs_gain", ROOT / "benchmarks" / "study" / "gap_vs_gain.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    old = json.loads((ROOT / "results" / "regimes" / "gap_vs_gain.json").read_text())
    folders = [str(ROOT / "results" / "regimes" / r["dataset"]) for r in old["rows"]]
    mod.main([*folders, "--controls", str(ROOT / "results" / "controls"), "--out", str(tmp_path / "g")])
    new = json.loads((tmp_path / "g.json").read_text())
    assert new["rows"] == old["rows"] and new["spearman_gap_gain"] == old["spearman_gap_gain"] and len(old["rows"]) == 4
    for r in old["rows"]:
        ndcg = {b: [json.loads((ROOT / "results" / "regimes" / r["dataset"] / b / f"reference-seed{s}" / "metrics.json").read_text())["test"]["ndcg@5"] for s in r["seeds"]] for b in ("ce", "bce")}
        assert abs(r["gap"] - (sum(ndcg["bce"]) / sum(ndcg["ce"]) - 1)) < 1e-4
        row = next(x for x in csv.DictReader(open(ROOT / "results" / "regimes" / r["dataset"] / "regimes.csv"))
                   if (x["backbone"], x["arm"], x["base"], x["metric"]) == ("bce", "topk_stochastic-beta1.0", "continue", "ndcg@5"))
        assert r["vs_continue"]["rel_change"] == float(row["rel_change"])
        if r["alternatives"] == "controls":  # the simpler alternatives, read from the controls folder's table
            row = next(x for x in csv.DictReader(open(ROOT / "results" / "controls" / r["dataset"] / "regimes.csv"))
                       if (x["backbone"], x["arm"], x["base"], x["metric"]) == ("bce", "topk_stochastic-beta1.0", "dns-beta1.0", "ndcg@5"))
            assert r["vs_dns"]["rel_change"] == float(row["rel_change"])


def test_committed_run_records_are_current():
    "Every committed DPO run records what fit_dpo records today (benchmarks/study/records.py): no field its arm does not read, and its reference's stage 1."
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "study" / "records.py"), str(ROOT / "results"), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["runs"] >= 400 and out["stale"] == 0 and out["without_stage1 (reference not committed)"] == 0


@pytest.mark.parametrize("dataset, runs, backbones", [("scientific", 70, ("gbce", "sampled_softmax_1000")),  # 2 backbones x 5 seeds x (reference + 6 arms)
                                                      ("ml-100k", 21, ("sampled_softmax_1000",)), ("toys", 21, ("sampled_softmax_1000",)),
                                                      ("beauty", 21, ("sampled_softmax_1000",))])  # 1 backbone x 3 seeds x 7
def test_many_negative_backbones_table_recomputes_from_committed_per_user_ranks(tmp_path, dataset, runs, backbones):
    "results/backbones/<dataset>/regimes.csv (every arm against continue, the reference, the negatives-only control, dns and continue-ce) follows from the run folders' per-user ranks alone."
    src = ROOT / "results" / "backbones" / dataset
    old = (src / "regimes.csv").read_text()
    assert recomputed_table(src, tmp_path, runs) == old
    for b in backbones: assert f"{b},topk_stochastic-beta1.0,continue-ce,ndcg@5" in old and f"{b},dns-beta1.0,negatives-dns,ndcg@5" in old


@pytest.mark.parametrize("dataset, runs", [("scientific", 75), ("beauty", 45), ("toys", 45)])  # 5 (3) seeds x (ce, ce-quarter: reference + 3 arms; sampled_softmax: reference + 6 arms)
def test_softmax_backbones_controls_recompute_from_committed_per_user_ranks(tmp_path, dataset, runs):
    "results/controls_softmax/<dataset>/regimes.csv (dns and the negatives-only controls beside topk_stochastic on the ce, ce-quarter and sampled_softmax backbones) follows from the per-user ranks alone."
    src = ROOT / "results" / "controls_softmax" / dataset
    old = (src / "regimes.csv").read_text()
    assert recomputed_table(src, tmp_path, runs) == old
    for b in ("ce", "ce-quarter", "sampled_softmax"): assert f"\n{b},topk_stochastic-beta1.0,dns-beta1.0,ndcg@5" in old
    assert "sampled_softmax,topk_stochastic-beta1.0,negatives-topk_stochastic,ndcg@5" in old and "\nce,negatives-" not in old


def test_cross_folder_comparison_recomputes_from_committed_per_user_ranks(tmp_path):
    "results/backbones/ss1000_vs_ss100_dpo (a 1,000-negative backbone against topk_stochastic DPO and continue-ce on the 100-negative one) follows from the runs' per-user ranks, paired over seeds and users."
    old = json.loads((ROOT / "results" / "backbones" / "ss1000_vs_ss100_dpo.json").read_text())
    pairs = [f"{r['pair']}={r['a']} vs {r['b']}" for r in old["rows"]]
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "study" / "cross_runs.py"), *[x for p in pairs for x in ("--pair", p)], "--out", str(tmp_path / "x")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    new = json.loads((tmp_path / "x.json").read_text())
    assert [p["pair"] for p in old["rows"]] == [f"{d}, {arm}" for arm in ("topk_stochastic-beta1.0", "continue-ce") for d in ("scientific", "beauty", "toys")]
    assert new["rows"] == old["rows"]
    beauty = old["rows"][1]  # by hand: the mean NDCG@5 of each side's runs, averaged over seeds, from their metrics.json
    for side, mean in (("a", "mean"), ("b", "base_mean")):
        per_seed = [json.loads((ROOT / f"{beauty[side]}-seed{s}" / "metrics.json").read_text())["test"]["ndcg@5"] for s in beauty["seeds"]]
        assert abs(sum(per_seed) / len(per_seed) - beauty[mean]) < 1e-12
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "study" / "cross_runs.py"), "--pair", "x=results/backbones/beauty/nothing vs results/backbones/beauty/sampled_softmax_1000/reference"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "no seed has finished runs on both sides" in bad.stderr


def test_controls_on_a_full_ce_backbone_refuse_the_arms_it_has_no_negatives_for(tmp_path):
    "benchmarks/study/controls.py on a full-softmax CE backbone: continue, topk_stochastic and dns by default; a negatives-only control or continue-ce is refused before anything trains."
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "study" / "controls.py"), str(ROOT / "results" / "regimes" / "scientific"), "--backbone", "ce-quarter",
                        "--arms", "continue,negatives-dns,continue-ce", "--out", str(tmp_path / "c")], capture_output=True, text=True)
    assert r.returncode == 2 and "negatives-dns, continue-ce on the full-softmax CE backbone ce-quarter" in r.stderr and "use continue,topk_stochastic,dns" in r.stderr, r.stderr
    assert not (tmp_path / "c").exists()
    import importlib.util
    spec = importlib.util.spec_from_file_location("controls", ROOT / "benchmarks" / "study" / "controls.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)  # a folder's note keeps one line per backbone: ce's call does not replace ce-quarter's
    assert [mod.backbone_of(c) for c in ("python benchmarks/study/controls.py s --backbone ce-quarter --out o", "python benchmarks/study/controls.py s --backbone ce",
                                         "python benchmarks/study/controls.py s --workers 2", "The three calls ran one after another")] == ["ce-quarter", "ce", "bce", None]


def study_page(name: str) -> dict:
    "Run the code cells of nbs/study_<name>.ipynb as the docs build does (from the repository root, displays dropped); its namespace."
    import os
    import nbformat
    import IPython.display
    nb, ns, cwd, display = nbformat.read(ROOT / "nbs" / f"study_{name}.ipynb", as_version=4), {}, os.getcwd(), IPython.display.display
    os.chdir(ROOT); IPython.display.display = lambda *a, **k: None
    try:
        for c in nb.cells:
            if c.cell_type == "code": exec(c.source, ns)
    finally:
        os.chdir(cwd); IPython.display.display = display
    return ns


def test_stage1_page_table_follows_from_committed_per_user_ranks():
    "The stage-1 page's table (full-CE SASRec on Beauty, Sports, Toys): each run's test metrics recomputed here from its test_ranks.npz, then mean ± std over seeds as the page prints them."
    import numpy as np
    runs = sorted((ROOT / "results" / "stage1").glob("*-s[0-9]"))
    assert len(runs) == 9, runs
    test = {}
    for run in runs:
        with np.load(run / "test_ranks.npz") as z: r = z["ranks"].astype(float)
        own = {"ndcg@10": np.where(r <= 10, 1 / np.log2(r + 1), 0).mean(), "hr@10": (r <= 10).mean(), "mrr@10": np.where(r <= 10, 1 / r, 0).mean(),
               "ndcg@5": np.where(r <= 5, 1 / np.log2(r + 1), 0).mean(), "mrr@5": np.where(r <= 5, 1 / r, 0).mean()}
        m = json.loads((run / "metrics.json").read_text())["test"]
        assert all(abs(own[k] - m[k]) < 1e-9 for k in own), (run.name, own, m)
        test.setdefault(run.name.rsplit("-s", 1)[0], []).append(own)
    table = study_page("stage1")["table"].set_index("dataset")
    for dataset, rows in test.items():
        cells = [f"{float(np.mean(v)):.4f} ± {float(np.std(v, ddof=1)):.4f}" for v in ([x[k] for x in rows] for k in ("ndcg@10", "hr@10", "mrr@10", "ndcg@5", "mrr@5"))]
        assert list(table.loc[dataset].iloc[1:]) == cells and table.loc[dataset, "seeds"] == len(rows), (dataset, cells)


def test_every_results_folder_is_on_a_study_page():
    "Nothing is lost: every folder under results/ is read by a study page (rodpo.report.STUDY_PAGES), every path a page names exists, and every study page is listed."
    from rodpo.report import STUDY_PAGES, study_of
    folders = [p.name for p in (ROOT / "results").iterdir() if p.is_dir() and p.name not in ("screenshots", "tmp")]
    assert not [f for f in folders if study_of(f) is None], "folders no study page reads"
    assert not [r for reads in STUDY_PAGES.values() for r in reads if not (ROOT / "results" / r).exists()]
    assert {p.stem.removeprefix("study_") for p in (ROOT / "nbs").glob("study_*.ipynb")} == set(STUDY_PAGES)


@pytest.mark.parametrize("dataset", ["scientific", "ml-100k"])
def test_hm4sr_tables_recompute_from_committed_per_user_ranks(tmp_path, dataset):
    "results/hm4sr/<dataset>: dpo.csv, stage1.csv and sasrec.csv follow from the runs' per-user ranks alone (benchmarks/study/hm4sr.py --tables)."
    import shutil
    src = ROOT / "results" / "hm4sr" / dataset
    shutil.copytree(src, tmp_path / dataset, ignore=shutil.ignore_patterns("*.csv", "*.pt"))
    p = json.loads((src / "parameters.json").read_text())
    seeds = {c["folder"]: len(c["seeds"]) for c in p["calls"]}
    for moe in ("dense", "sparse"):  # reference + 4 arms a seed
        assert len(list((tmp_path / dataset).glob(f"{moe}/*-seed*/test_ranks.npz"))) == 5 * seeds[moe], moe
    assert len(list((tmp_path / dataset).glob("stage1/*/reference-seed*/test_ranks.npz"))) == sum(n for f, n in seeds.items() if f.startswith("stage1/"))
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "study" / "hm4sr.py"), "--tables", str(tmp_path / dataset)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for f in ("dpo.csv", "stage1.csv", "sasrec.csv", "dense/runs.csv", "sparse/runs.csv"):
        assert (tmp_path / dataset / f).read_text() == (src / f).read_text(), f
    dpo = (src / "dpo.csv").read_text()
    assert "sparse,topk_stochastic,dense reference,ndcg@5" in dpo and "rows of this table (dpo.csv)" in dpo  # the paper's comparison; which rows Holm covers
    assert "topk_stochastic-beta1.0,continue,ndcg@5" in (src / "sasrec.csv").read_text()  # SASRec beside it


@pytest.mark.parametrize("name", ["controls", "regimes", "reproducibility", "objectives", "hm4sr"])
def test_study_page_answers_follow_from_the_committed_tables(name):
    "A page's answer is rendered from its tables: run the page, and its numbers are those of the committed comparisons."
    from rodpo.report import change_of, pick
    ns = study_page(name)
    if name == "controls":
        r = pick(ns["bce"], dataset="toys", backbone="bce", arm="topk_stochastic-beta1.0", base="continue", metric="ndcg@5").iloc[0]
        assert change_of(r).startswith(f"{r.rel_change:+.2%}") and (ns["vc"].p_holm < 0.05).sum() == ns["n_vc"]
    elif name == "objectives":  # every committed dataset, and the answer's rows: every grid arm against continue-ce, the best of them
        import pandas as pd
        folders = sorted(p.parent.name for p in (ROOT / "results/objectives").glob("*/objectives.csv"))
        assert sorted(ns["DATASETS"]) == folders and len(ns["t"]) == sum(len(pd.read_csv(ROOT / f"results/objectives/{d}/objectives.csv")) for d in folders)
        c1 = ns["c1"]
        assert len(c1) == len(c1.drop_duplicates(["dataset", "arm"])) and set(c1.base) == {"continue-ce"} and ns["best"].rel_change == c1.rel_change.max()
        for d, n in c1.groupby("dataset").size().items():  # every objective of the folder, with hard and with top-K negatives
            assert n == 2 * len(json.loads((ROOT / f"results/objectives/{d}/bce/experiment.json").read_text())["objectives"]), d
    elif name == "hm4sr":  # the answer quotes the committed rows: top-K DPO against continue on each MoE, sparse against dense, against stage 1
        import pandas as pd
        text = "\n".join(ns["out"])
        assert sorted(ns["DATASETS"]) == sorted(p.parent.name for p in (ROOT / "results/hm4sr").glob("*/dpo.csv"))
        for d in ns["DATASETS"]:
            t = pd.read_csv(ROOT / f"results/hm4sr/{d}/dpo.csv")
            for moe, base in (("dense", "continue"), ("sparse", "continue"), ("sparse", "dense topk_stochastic"), ("sparse", "dense reference")):
                r = t[(t.moe == moe) & (t.arm == "topk_stochastic") & (t.base == base) & (t.metric == "ndcg@5")]
                assert len(r) == 1 and change_of(r.iloc[0]) in text, (d, moe, base)
    elif name == "regimes":
        assert len(ns["over"]) == 8 and set(ns["bce"].index) == {"scientific", "beauty", "toys"}
    else:
        rep = json.loads((ROOT / "results/reproduce/scientific/repeat.json").read_text())
        assert rep["repeated"] == sum(r["repeated"] for r in rep["rows"]) and len(ns["rows"]) == rep["runs"]


@pytest.mark.parametrize("dataset, runs, row", [("scientific", 110, "bce,hard-cdpo-epsauto,topk_stochastic,ndcg@5"),  # 5 seeds x (reference + 21 arms)
                                               ("ml-100k", 66, "bce,topk_stochastic-dpop,hard-dpop,ndcg@5"),  # 3 seeds
                                               ("beauty", 42, "bce,topk_stochastic-rdpo,topk_stochastic,ndcg@5"),  # 3 seeds x (reference + 13 arms)
                                               ("toys", 42, "bce,topk_stochastic-rdpo,topk_stochastic,ndcg@5")])
def test_objectives_tables_recompute_from_committed_per_user_ranks(tmp_path, dataset, runs, row):
    "results/objectives/<dataset>: objectives.csv follows from the runs' per-user ranks alone, beyond.csv from their metrics.json (benchmarks/study/objectives.py --tables)."
    import shutil
    src = ROOT / "results" / "objectives" / dataset
    shutil.copytree(src, tmp_path / dataset, ignore=shutil.ignore_patterns("objectives.csv", "beyond.csv", "runs.csv", "*.pt", "test_per_user.csv"))
    assert len(list((tmp_path / dataset).glob("bce/*-seed*/test_ranks.npz"))) == runs
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "study" / "objectives.py"), "--tables", str(tmp_path / dataset)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for f in ("objectives.csv", "beyond.csv"): assert (tmp_path / dataset / f).read_text() == (src / f).read_text(), f
    old = (src / "objectives.csv").read_text()
    assert row in old and "bce,continue-ce,continue,ndcg@5" in old and "rows of backbone bce in this table" in old  # which rows Holm covers


def test_every_committed_dpo_run_starts_at_policy_equal_reference():
    """Every committed DPO run's first step is at policy = reference: its rewards and margin are 0, and its loss is its objective's
    value there (rodpo.losses.at_reference: log 2 for DPO, cDPO, rDPO, DPOP; 0.25 for IPO and 1 for hinge at beta 1). SimPO reads no
    reference: its rewards are checked."""
    from rodpo.losses import at_reference
    seen = {}
    for f in sorted((ROOT / "results").glob("**/metrics.json")):
        first = json.loads(f.read_text()).get("first_step") or {}
        if "loss" not in first: continue  # a reference, or a continue arm: no preference loss
        cfg, pref = json.loads((f.parent / "config.json").read_text())["dpo"], json.loads(f.read_text()).get("preference", {})
        params = {k: pref.get(k, v) for k, v in (cfg.get("loss_params") or {}).items()}  # eps 'auto': the measured rate
        want = at_reference(cfg.get("form", "pairwise"), cfg["beta"], cfg["sampler"]["m"], cfg.get("loss_weights"), **params)
        assert all(abs(first.get(k) or 0.0) < 1e-4 for k in ("reward_margin", "rewards_chosen", "rewards_rejected")), f.parent
        assert want is None or abs(first["loss"] - want) < 1e-4, (f.parent, first["loss"], want)
        seen[str(cfg.get("form", "pairwise"))] = seen.get(str(cfg.get("form", "pairwise")), 0) + 1
    assert sum(seen.values()) >= 846 and {"pairwise", "ipo", "hinge", "simpo"} <= set(seen), seen
