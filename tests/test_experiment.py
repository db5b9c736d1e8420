import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from rodpo.experiment import ExperimentConfig, run_experiment, summarize_experiment, experiment_table, compare_arms, holm, paired_comparison


def test_experiment_runs_resumes_and_summarizes(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("RODPO_DATA", str(shared_data))
    cfg = ExperimentConfig("scientific", str(tmp_path), strategies=("continue", "hard", "random"), seeds=(0, 1), stage1=dict(max_epochs=2),
                           dpo=dict(max_epochs=1, eval_every=10), sampler=dict(m=1))
    t = run_experiment(cfg, log=lambda *a: None)
    assert sorted(map(tuple, t[["strategy", "seed"]].values.tolist())) == sorted(
        [(s, k) for s in ("reference", "continue", "hard", "random") for k in (0, 1)])
    # a second call trains nothing: every run folder is finished and reused
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/metrics.json")}
    run_experiment(cfg, log=lambda *a: None)
    assert stamps == {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/metrics.json")}
    c = compare_arms(tmp_path, n_boot=200)
    # relative change and p-value recomputed independently from the run folders (per-user values averaged over the paired seeds)
    pu = lambda name: np.mean([pd.read_csv(tmp_path / f"{name}-seed{k}/test_per_user.csv")["ndcg@5"] for k in (0, 1)], axis=0)
    row = c[(c.arm == "random") & (c.base == "reference") & (c.metric == "ndcg@5")].iloc[0]
    assert row.rel_change == pytest.approx(pu("random").mean() / pu("reference").mean() - 1)
    assert row.ci_low <= row.rel_change <= row.ci_high
    x, y = pu("random"), pu("hard")
    row = c[(c.arm == "random") & (c.base == "hard") & (c.metric == "ndcg@5")].iloc[0]
    assert row.p == pytest.approx(wilcoxon(x - y).pvalue if np.any(x != y) else 1.0)
    assert (c.p_holm >= c.p).all() and len(c) == 2 * (1 + 2 + 3)  # continue vs reference; hard vs continue, reference; random vs all three
    s = summarize_experiment(tmp_path, n_boot=200)
    assert set(s.index) == {"reference", "continue", "hard", "random"} and "ndcg@5 vs continue" in s.columns


def test_holm_by_hand():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> kept monotone: 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # 0.5*2 = 1.0; 0.9*1 = 0.9 is raised to keep the order


def test_paired_comparison_on_a_known_change():
    g = np.random.default_rng(0)
    b = g.random((3, 500))
    r = paired_comparison(1.1 * b, b, n_boot=100)
    assert r["rel_change"] == pytest.approx(0.1) and r["ci_low"] == pytest.approx(0.1) and r["ci_high"] == pytest.approx(0.1)
    assert r["p"] < 1e-10
    same = paired_comparison(b, b, n_boot=100)
    assert same["p"] == 1.0 and same["rel_change"] == 0
    # the minimum detectable effect: (1.96 + 0.84) * sd / sqrt(n) / mean, by hand
    d = g.normal(0, 1, 500); a = b + d[None]
    want = (1.959964 + 0.841621) * d.std(ddof=1) / np.sqrt(500) / b.mean()
    assert paired_comparison(a, b, n_boot=10)["mde"] == pytest.approx(want, rel=1e-4)


def test_bad_experiment_config_fails_before_training(tmp_path):
    with pytest.raises(ValueError, match="strategy='hardest'"):
        ExperimentConfig("beauty", str(tmp_path), strategies=("hardest",))
    with pytest.raises(ValueError, match="beta=-1"):
        ExperimentConfig("beauty", str(tmp_path), dpo=dict(beta=-1))
    assert not list(tmp_path.iterdir())


def test_same_seed_same_numbers_alone_or_beside_another_worker(shared_data, tmp_path, monkeypatch):
    "A seeded DPO run trained alone in this process and trained in a worker process beside another run gives identical metrics and per-step diagnostics."
    monkeypatch.setenv("RODPO_DATA", str(shared_data))
    kw = dict(strategies=("hard", "topk_stochastic"), seeds=(0,), stage1=dict(loss="bce", max_epochs=2),
              dpo=dict(max_epochs=1, eval_every=10), sampler=dict(K=20))
    alone, beside = tmp_path / "alone", tmp_path / "beside"
    run_experiment(ExperimentConfig("scientific", str(alone), **kw), log=lambda *a: None, workers=1)
    lines = []
    run_experiment(ExperimentConfig("scientific", str(beside), **kw), log=lines.append, workers=2)  # hard and topk_stochastic at once
    assert len(lines) == 3 and all("valid ndcg@10" in l for l in lines)
    for run in ("reference-seed0", "hard-seed0", "topk_stochastic-seed0"):
        a, b = (json.loads((d / run / "metrics.json").read_text()) for d in (alone, beside))
        assert a["test"] == b["test"] and a["valid"] == b["valid"], run
    da, db = (json.loads((d / "topk_stochastic-seed0" / "diagnostics.json").read_text()) for d in (alone, beside))
    assert da == db and len(da) > 10


def test_planner_reads_every_registered_strategy_and_its_declared_fields():
    "Every registered strategy is an arm (and a negatives-only control); a run's identity reads the fields the strategy declares, no others; a strategy registered here is planned at once, and not added to the default arms."
    from rodpo.experiment import arms, plan, _identity, DEFAULT_STRATEGIES
    from rodpo.negatives import SAMPLERS, register_sampler, SamplerConfig
    strategies = ("continue",) + tuple(SAMPLERS) + tuple(f"negatives-{s}" for s in SAMPLERS)
    runs = {r.name: r for r in plan(ExperimentConfig("beauty", "unused", strategies=strategies, seeds=(0,)))[0]}
    assert {f"{s}-seed0" for s in strategies} | {"reference-seed0"} == set(runs)
    fields = set(SamplerConfig.__dataclass_fields__) - {"strategy", "exclude_history", "pool", "index_refresh", "candidates", "nlist", "nprobe",
                                                        "index", "index_metric", "rank_rows", "rank_every"}
    values = dict(m=2, K=60, tau=0.5, alpha=0.5, M=40, refresh=2)
    for name, strategy in SAMPLERS.items():
        c = runs[f"{name}-seed0"].config[0]
        for f in fields:
            other = ExperimentConfig("beauty", "unused", strategies=(name,), seeds=(0,), sampler={f: values[f]})
            changed = _identity(dict(other.runs(0, c.stage1))[f"{name}-seed0"]) != _identity(c)
            assert changed == (f in strategy.fields), (name, f)
    try:
        @register_sampler("lowest")
        def _lowest(d):
            "The policy's m lowest-scored items other than the target and padding (a worked example)."
            s = d.scores.clone(); s[:, 0] = float("inf"); s.scatter_(1, d.banned, float("inf"))
            return s.topk(d.cfg.m, 1, largest=False).indices, None
        assert "lowest" in arms() and "negatives-lowest" in arms() and "lowest" not in ExperimentConfig("beauty", "unused").strategies
        assert [r.name for r in plan(ExperimentConfig("beauty", "unused", strategies=("lowest",), seeds=(0,)))[0]] == ["reference-seed0", "lowest-seed0"]
        assert ExperimentConfig("beauty", "unused").strategies[1:len(DEFAULT_STRATEGIES) + 1] == DEFAULT_STRATEGIES
    finally: SAMPLERS.pop("lowest", None)
