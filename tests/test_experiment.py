import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from rodpo.experiment import ExperimentConfig, run_experiment, summarize_experiment, experiment_table


def test_experiment_runs_resumes_and_summarizes(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("RODPO_DATA", str(shared_data))
    cfg = ExperimentConfig("scientific", str(tmp_path), strategies=("hard", "random"), seeds=(0, 1), stage1=dict(max_epochs=2),
                           dpo=dict(max_epochs=1, eval_every=10), sampler=dict(m=1))
    t = run_experiment(cfg, log=lambda *a: None)
    assert sorted(map(tuple, t[["strategy", "seed"]].values.tolist())) == sorted(
        [(s, k) for s in ("reference", "hard", "random") for k in (0, 1)])
    # a second call trains nothing: every run folder is finished and reused
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/metrics.json")}
    run_experiment(cfg, log=lambda *a: None)
    assert stamps == {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/metrics.json")}
    s = summarize_experiment(tmp_path)
    # relative change and p-value recomputed independently from the run folders
    ref = t[t.strategy == "reference"]["test_ndcg@5"].mean(); rnd = t[t.strategy == "random"]["test_ndcg@5"].mean()
    assert s.loc["random", "ndcg@5 vs reference"] == f"{100 * (rnd / ref - 1):+.2f}%"
    pu = lambda name: np.concatenate([pd.read_csv(tmp_path / f"{name}-seed{k}/test_per_user.csv")["ndcg@5"] for k in (0, 1)])
    x, y = pu("random"), pu("hard")
    expected = wilcoxon(x, y).pvalue if np.any(x != y) else 1.0
    assert s.loc["random", "ndcg@5 p vs hard"] == pytest.approx(expected)


def test_bad_experiment_config_fails_before_training(tmp_path):
    with pytest.raises(ValueError, match="strategy='hardest'"):
        ExperimentConfig("beauty", str(tmp_path), strategies=("hardest",))
    with pytest.raises(ValueError, match="beta=-1"):
        ExperimentConfig("beauty", str(tmp_path), dpo=dict(beta=-1))
    assert not list(tmp_path.iterdir())
