"The HM4SR-style backbone (rodpo.hm4sr) in every stage: stage 1 with its auxiliary terms, a checkpoint that rebuilds it, the DPO stage."
import json

import numpy as np
import pytest
import torch

from rodpo.data import load_dataset, SeqDataset, TrainBatches
from rodpo.dpo import DPOConfig, fit_dpo, dpo_step
from rodpo.hm4sr import HM4SR
from rodpo.model import SASRecConfig
from rodpo.moe import aux_loss
from rodpo.negatives import SamplerConfig, NegativeSampler
from rodpo.objectives import stage1_loss
from rodpo.runs import load_checkpoint
from rodpo.train import TrainConfig, fit, parser


def quiet(*a): pass


@pytest.fixture(scope="module")
def setup(shared_data, tmp_path_factory):
    "A 2-epoch HM4SR (ID, text and image, dense alignment MoE) on 1,200 Scientific users."
    s = load_dataset("scientific", shared_data)
    small = SeqDataset("scientific[:1200]", s.sequences[:1200], s.n_items, features=s.features)
    ref = tmp_path_factory.mktemp("hm4sr")
    metrics = fit(small, TrainConfig(max_epochs=2, progress=False),
                  SASRecConfig.for_dataset(small, backbone="hm4sr", modalities=("id", "text", "image"), hidden=16), ref, log=quiet)
    return small, ref, metrics


def test_the_backbone_is_an_option_of_rodpo_train():
    h = parser().format_help()
    for option in ("--backbone", "--align_moe", "--id_cl_weight", "--category_weight", "--placeholder_weight", "--placeholder_rate", "--temporal_moe"):
        assert option in h


def test_stage1_trains_and_its_checkpoint_rebuilds_the_model(setup):
    small, ref, metrics = setup
    assert np.isfinite(metrics["test"]["ndcg@10"]) and metrics["test"]["ndcg@10"] > 0
    model = load_checkpoint(ref / "best.pt")
    assert isinstance(model, HM4SR) and model.cfg.width == 48 and model.item_table().shape == (small.n_items + 1, 48)
    assert json.loads((ref / "config.json").read_text())["model"]["backbone"] == "hm4sr"
    assert metrics["auxiliary_terms"] == {"id_cl": 0.1, "placeholder_text": 1.0, "placeholder_image": 1.0}  # no attributes: no category term


def test_stage1_loss_adds_the_auxiliary_terms(setup):
    small, ref, _ = setup
    model = load_checkpoint(ref / "best.pt").train()
    x, y = next(iter(TrainBatches(small.sequences, 50, 64).epoch(0)))
    torch.manual_seed(0)
    loss = stage1_loss(model, x, y)
    terms = dict(model.auxiliary.terms)
    assert set(terms) == {"id_cl", "placeholder_text", "placeholder_image"} and all(v > 0 for v in terms.values())  # Scientific has no attributes
    model.eval()
    with torch.no_grad():
        assert stage1_loss(model, x, y).item() < loss.item()  # in eval mode without gradients: CE alone, no terms
    assert aux_loss(model).item() == 0


def test_dpo_starts_at_log2_and_its_anchor_carries_the_terms(setup, tmp_path):
    small, ref, _ = setup
    policy, reference = load_checkpoint(ref / "best.pt").train(), load_checkpoint(ref / "best.pt").eval()
    cfg = DPOConfig(str(ref), sampler=SamplerConfig("topk_stochastic", m=2, K=10), max_epochs=1, eval_every=5, progress=False)
    x, y = next(iter(TrainBatches(small.sequences, 50, 64).epoch(0)))
    loss, d = dpo_step(policy, reference, reference.item_table(), NegativeSampler(cfg.sampler, small.n_items), cfg, x, y, None)
    assert d["loss"].numpy() == pytest.approx(np.log(2), abs=1e-5)  # policy = reference: every margin 0
    assert set(policy.auxiliary.terms) == {"id_cl", "placeholder_text", "placeholder_image"}  # the anchor's training-mode pass
    r = fit_dpo(small, cfg, tmp_path / "dpo", log=quiet)
    assert r["first_step"]["loss"] == pytest.approx(np.log(2), abs=1e-5) and np.isfinite(r["test"]["ndcg@10"])
    assert r["backbone"] == "ce" and r["anchor_terms"] == {"id_cl": 0.1, "placeholder_text": 1.0, "placeholder_image": 1.0}  # the anchor: CE and these


def test_a_single_id_encoder_without_extras_is_sasrec(shared_data, tmp_path):
    "With one modality and every extra off, stage 1 gives SASRec's numbers (the notebook shows the same states bit for bit)."
    b = load_dataset("beauty", shared_data)
    small = SeqDataset("beauty[:600]", b.sequences[:600], b.n_items)
    out = {}
    for backbone in ("sasrec", "hm4sr"):
        out[backbone] = fit(small, TrainConfig(max_epochs=2, progress=False),
                            SASRecConfig.for_dataset(small, backbone=backbone, hidden=16, id_cl_weight=0, category_weight=0), tmp_path / backbone, log=quiet)
    assert out["hm4sr"]["test"] == pytest.approx(out["sasrec"]["test"], abs=1e-6)


def test_misconfigurations_name_the_fix():
    with pytest.raises(ValueError, match="one encoder each"):
        SASRecConfig(n_items=5, backbone="hm4sr", modalities=("id", "attributes"))
    with pytest.raises(ValueError, match="backbone='resnet' is not one of"):
        SASRecConfig(n_items=5, backbone="resnet")
    with pytest.raises(ValueError, match="placeholder_rate=1.5 must be in"):
        SASRecConfig(n_items=5, placeholder_rate=1.5)


def test_the_experiment_runner_trains_it(tmp_path):
    "ExperimentConfig(model=dict(backbone='hm4sr')): its references are HM4SR models and the arms align them."
    from rodpo.experiment import ExperimentConfig, run_experiment
    cfg = ExperimentConfig("synthetic:300x60", str(tmp_path / "e"), ("continue", "topk_stochastic"), (0,), model=dict(backbone="hm4sr", hidden=16),
                           stage1=dict(loss="ce", max_epochs=2), dpo=dict(max_epochs=1), sampler=dict(K=10))
    t = run_experiment(cfg, log=quiet)
    assert set(t.strategy) == {"reference", "continue", "topk_stochastic"}
    assert isinstance(load_checkpoint(tmp_path / "e" / "reference-seed0" / "best.pt"), HM4SR)
    m = json.loads((tmp_path / "e" / "topk_stochastic-seed0" / "metrics.json").read_text())
    assert m["anchor_terms"] == {"id_cl": 0.1} and m["first_step"]["loss"] == pytest.approx(np.log(2), abs=1e-5)  # ID only: no placeholders


@pytest.fixture(scope="module")
def timed_setup(shared_data, tmp_path_factory):
    "A 1-epoch HM4SR with the temporal MoE (ID only) on 150 MovieLens-100k users, with their timestamps."
    s = load_dataset("ml-100k", shared_data)
    small = SeqDataset("ml-100k[:150]", s.sequences[:150], s.n_items, timestamps=s.timestamps[:150])
    ref = tmp_path_factory.mktemp("hm4sr-time")
    cfg = SASRecConfig.for_dataset(small, backbone="hm4sr", modalities=("id",), hidden=16, max_len=20, temporal_moe=True)
    return small, ref, fit(small, TrainConfig(max_epochs=1, progress=False), cfg, ref, log=quiet)


def test_the_batches_carry_each_positions_time_and_gap(timed_setup):
    "TrainBatches and eval_set with times: each input position's (time, gap) is its user's, read directly from the timestamps."
    from rodpo.data import eval_set
    small = timed_setup[0]
    for x, y, users, tindex, t in TrainBatches(small.sequences, 20, 64, times=small.when()).epoch(0, with_source=True):
        real = x > 0
        u, i = users[:, None].expand_as(x)[real], (tindex - 1)[real]  # an input's index in its sequence: its target's minus one
        ts = torch.as_tensor(np.concatenate([small.timestamps[a][b:b + 1] for a, b in zip(u.tolist(), i.tolist())]))
        prev = torch.as_tensor([small.timestamps[a][max(b - 1, 0)] for a, b in zip(u.tolist(), i.tolist())], dtype=torch.float64)
        assert torch.equal(t[real][:, 0], ts) and torch.equal(t[real][:, 1], ts - prev) and not t[~real].any()
    es = eval_set(small, "test", 20)
    last = torch.as_tensor([q[-2] for q in small.timestamps], dtype=torch.float64)  # the test history's last item: the one before the target
    assert es.times.shape == (150, 20, 2) and torch.equal(es.times[:, -1, 0], last)


def test_the_temporal_moe_trains_in_every_stage(timed_setup, tmp_path):
    "Stage 1 reads the times (its checkpoint rebuilds the temporal MoE); the DPO stage starts at log 2 and changes the policy's experts."
    small, ref, metrics = timed_setup
    model = load_checkpoint(ref / "best.pt")
    assert model.temporal is not None and np.isfinite(metrics["test"]["ndcg@10"])
    assert not torch.allclose(model.temporal.experts, torch.ones_like(model.temporal.experts))  # trained from ones
    x, y, t = next(iter(TrainBatches(small.sequences, 20, 64, times=small.when()).epoch(0)))
    with pytest.raises(ValueError, match=r"temporal_moe=True reads each position's times"):
        model(x)
    model.eval()
    with torch.no_grad():  # the times matter: shifted gaps give other states
        assert not torch.allclose(model(x, times=t), model(x, times=t * torch.tensor([1.0, 7.0], dtype=torch.float64)))
    cfg = DPOConfig(str(ref), sampler=SamplerConfig("topk_stochastic", m=1, K=10), max_epochs=1, eval_every=5, progress=False)
    r = fit_dpo(small, cfg, tmp_path / "dpo", log=quiet)
    assert r["first_step"]["loss"] == pytest.approx(np.log(2), abs=1e-5) and np.isfinite(r["test"]["ndcg@10"])
    policy, reference = load_checkpoint(ref / "best.pt").train(), load_checkpoint(ref / "best.pt").eval()
    loss, d = dpo_step(policy, reference, reference.item_table(), NegativeSampler(cfg.sampler, small.n_items), cfg, x, y, None, times=t)
    loss.backward()
    assert d["loss"].numpy() == pytest.approx(np.log(2), abs=1e-5) and policy.temporal.experts.grad.abs().sum() > 0  # DPO reaches the experts


def test_the_temporal_moe_needs_timestamps(shared_data, tmp_path):
    "Asked for on a dataset without timestamps, it stops before training with the dataset's name and the switch; SASRec has none."
    s = load_dataset("scientific", shared_data)
    small = SeqDataset("scientific[:50]", s.sequences[:50], s.n_items)
    with pytest.raises(ValueError, match=r"temporal_moe=True needs timestamps, and dataset 'scientific\[:50\]' has none"):
        fit(small, TrainConfig(max_epochs=1, progress=False), SASRecConfig.for_dataset(small, backbone="hm4sr", hidden=16, temporal_moe=True), tmp_path, log=quiet)
    with pytest.raises(ValueError, match="temporal_moe=True is a part of backbone='hm4sr'"):
        SASRecConfig(n_items=5, temporal_moe=True)


def test_the_contrastive_terms_read_at_most_cl_positions_and_all_of_scientifics(shared_data):
    "cl_positions bounds the positions a contrastive term reads (drawn at random, in order); on Scientific's stage-1 and DPO batches it never binds,"
    " so the committed Scientific runs, trained before the bound, are what the code trains now."
    m = HM4SR(SASRecConfig(n_items=20, hidden=8, max_len=6, backbone="hm4sr", cl_positions=3))
    mask = torch.tensor([[False, True, True], [True, False, True]])
    some = m._some(mask)
    assert len(some) == 3 and set(some.tolist()) <= {1, 2, 3, 5} and some.tolist() == sorted(some.tolist())
    assert HM4SR(SASRecConfig(n_items=20, hidden=8, max_len=6, backbone="hm4sr", cl_positions=4))._some(mask).tolist() == [1, 2, 3, 5]
    with pytest.raises(ValueError, match="cl_positions=1 must be an integer >= 2"):
        SASRecConfig(n_items=5, backbone="hm4sr", cl_positions=1)
    s, bound = load_dataset("scientific", shared_data), SASRecConfig(n_items=1).cl_positions
    for batch_size in (TrainConfig().batch_size, DPOConfig.__dataclass_fields__["batch_size"].default):
        for seed in range(5):
            batches = TrainBatches(s.sequences, 50, batch_size, seed=seed)
            assert max(int((x > 0).sum()) for e in range(40) for x, _ in batches.epoch(e)) <= bound, (batch_size, seed)
