import json

import pytest
import torch

from rodpo.data import load_dataset, SeqDataset
from rodpo.model import SASRecConfig
from rodpo.train import TrainConfig, fit, main


@pytest.fixture(scope="module")
def small(shared_data):
    b = load_dataset("beauty", shared_data)
    return SeqDataset("beauty[:1500]", b.sequences[:1500], b.n_items)


def quiet(*a): pass


def test_resume_matches_uninterrupted_run(small, tmp_path):
    mcfg = SASRecConfig(n_items=small.n_items, hidden=16)
    cfg = TrainConfig(max_epochs=3, batch_size=128, progress=False)
    assert fit(small, cfg, mcfg, tmp_path / "a", log=quiet, stop_after=1) is None
    assert fit(small, cfg, mcfg, tmp_path / "a", log=quiet, stop_after=1) is None
    resumed = fit(small, cfg, mcfg, tmp_path / "a", log=quiet)
    straight = fit(small, cfg, mcfg, tmp_path / "b", log=quiet)
    assert resumed["test"] == straight["test"] and resumed["valid"] == straight["valid"]
    hist_a = json.loads((tmp_path / "a/history.json").read_text())
    hist_b = json.loads((tmp_path / "b/history.json").read_text())
    # logged epoch losses agree to float32 round-off (one CI run saw a 1e-8 relative difference in one epoch's mean
    # with identical weights after it); the weights, hence every metric above, must match exactly
    assert [h["loss"] for h in hist_a] == pytest.approx([h["loss"] for h in hist_b], rel=1e-6)
    for f in ("config.json", "best.pt", "last.pt", "metrics.json", "test_per_user.csv"):
        assert (tmp_path / "a" / f).exists()
    assert len((tmp_path / "a/test_per_user.csv").read_text().splitlines()) == small.n_users + 1
    # a finished run is returned, not retrained
    assert fit(small, cfg, mcfg, tmp_path / "a", log=quiet) == resumed


def test_seeds(small, tmp_path):
    mcfg = SASRecConfig(n_items=small.n_items, hidden=16)
    run = lambda seed, d: fit(small, TrainConfig(seed=seed, max_epochs=1, progress=False), mcfg, tmp_path / d, log=quiet)
    assert run(0, "s0")["valid"] == run(0, "s0b")["valid"]
    assert run(1, "s1")["valid"] != run(0, "s0")["valid"]


def test_non_finite_loss_stops_and_keeps_last_good_state(small, tmp_path, monkeypatch):
    import rodpo.objectives as O  # stage1_loss looks ce_loss up here at every call
    mcfg = SASRecConfig(n_items=small.n_items, hidden=16)
    cfg = TrainConfig(max_epochs=3, progress=False)
    assert fit(small, cfg, mcfg, tmp_path / "r", log=quiet, stop_after=1) is None
    good = torch.load(tmp_path / "r/last.pt", weights_only=False)
    orig = O.ce_loss
    monkeypatch.setattr(O, "ce_loss", lambda *a, **k: orig(*a, **k) * float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite training loss .* epoch 2"):
        fit(small, cfg, mcfg, tmp_path / "r", log=quiet)
    kept = torch.load(tmp_path / "r/last.pt", weights_only=False)
    assert kept["state"]["epoch"] == 1
    assert all(torch.equal(kept["model"][k], good["model"][k]) for k in good["model"])


@pytest.mark.parametrize("kw,msg", [
    (dict(metric="ndcg@7"), "metric='ndcg@7' is not one of"),
    (dict(batch_size=0), "batch_size=0 must be a positive integer"),
    (dict(device="tpu"), "device='tpu'"),
    (dict(fused_adam=1), "fused_adam=1 must be True or False"),
])
def test_train_config_validation(kw, msg):
    with pytest.raises(ValueError, match=msg):
        TrainConfig(**kw)


def test_cli_unknown_dataset(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--dataset", "nope", "--max_epochs", "1"])
    assert "Unknown dataset 'nope'" in str(e.value.code) and "beauty" in str(e.value.code)


def test_other_config_in_used_folder(small, tmp_path):
    mcfg = SASRecConfig(n_items=small.n_items, hidden=16)
    fit(small, TrainConfig(max_epochs=1, progress=False), mcfg, tmp_path / "r", log=quiet)
    with pytest.raises(ValueError, match="another configuration"):
        fit(small, TrainConfig(max_epochs=1, progress=False, lr=5e-4), mcfg, tmp_path / "r", log=quiet)


def test_fused_adam_runs_the_fused_kernel_and_resumes(small, tmp_path):
    "fused_adam=True: the optimiser (saved in last.pt) is Adam's fused kernel; a run paused and resumed ends where an uninterrupted one does; the metrics stay close to the default optimiser's (the same update up to rounding)."
    from rodpo.dpo import DPOConfig, fit_dpo
    mcfg = SASRecConfig(n_items=small.n_items, hidden=16)
    cfg = TrainConfig(max_epochs=2, batch_size=128, fused_adam=True, progress=False)
    assert fit(small, cfg, mcfg, tmp_path / "a", log=quiet, stop_after=1) is None
    resumed = fit(small, cfg, mcfg, tmp_path / "a", log=quiet)
    assert torch.load(tmp_path / "a/last.pt", weights_only=False)["optimizer"]["param_groups"][0]["fused"] is True
    assert fit(small, cfg, mcfg, tmp_path / "b", log=quiet)["test"] == resumed["test"]
    plain = fit(small, TrainConfig(max_epochs=2, batch_size=128, progress=False), mcfg, tmp_path / "c", log=quiet)
    assert plain["test"]["ndcg@10"] == pytest.approx(resumed["test"]["ndcg@10"], rel=0.05)
    d = fit_dpo(small, DPOConfig(str(tmp_path / "a"), fused_adam=True, max_epochs=1, eval_every=5, progress=False), tmp_path / "d", log=quiet)
    assert torch.load(tmp_path / "d/last.pt", weights_only=False)["optimizer"]["param_groups"][0]["fused"] is True and d["steps"] > 0
