import json

import numpy as np
import pytest
import torch

from rodpo.data import load_dataset, SeqDataset, TrainBatches
from rodpo.dpo import DPOConfig, FutureIndex, fit_dpo, _histories
from rodpo.model import SASRecConfig
from rodpo.negatives import SamplerConfig
from rodpo.train import TrainConfig, fit


def quiet(*a): pass


@pytest.fixture(scope="module")
def setup(shared_data, tmp_path_factory):
    b = load_dataset("beauty", shared_data)
    small = SeqDataset("beauty[:1500]", b.sequences[:1500], b.n_items)
    ref = tmp_path_factory.mktemp("ref")
    fit(small, TrainConfig(max_epochs=2, progress=False), SASRecConfig(n_items=small.n_items, hidden=16), ref, log=quiet)
    return small, ref


def test_target_source_mapping(shared_data):
    s = load_dataset("scientific", shared_data)
    tb = TrainBatches(s.sequences, 50, 128)
    n = 0
    for x, y, users, tindex in tb.epoch(0, with_source=True):
        for r, c in (y > 0).nonzero().tolist():
            assert s.sequences[int(users[r])][int(tindex[r, c])] == int(y[r, c])
            assert s.sequences[int(users[r])][int(tindex[r, c]) - 1] == int(x[r, c])
            n += 1
    assert n == tb.n_targets


def test_future_index_against_brute_force():
    g = np.random.default_rng(0)
    seqs = [g.integers(1, 30, size=g.integers(3, 20)) for _ in range(50)]
    fi = FutureIndex(seqs)
    users = torch.as_tensor(g.integers(0, 50, 200))
    tidx = torch.as_tensor([int(g.integers(0, len(seqs[u]))) for u in users.tolist()])
    neg = torch.as_tensor(g.integers(1, 30, (200, 3)))
    got = fi.mask(users, tidx, neg)
    for n in range(200):
        later = set(seqs[int(users[n])][int(tidx[n]) + 1:].tolist())
        assert got[n].tolist() == [int(i) in later for i in neg[n].tolist()]


def test_histories_are_causal():
    x = torch.tensor([[0, 4, 5, 6]]); y = torch.tensor([[0, 5, 6, 7]])
    h = _histories(x, y > 0)
    assert h.tolist() == [[0, 4, 0, 0], [0, 4, 5, 0], [0, 4, 5, 6]]


def test_dpo_run_writes_diagnostics_and_is_reproducible(setup, tmp_path):
    small, ref = setup
    cfg = DPOConfig(str(ref), sampler=SamplerConfig("topk_stochastic", m=2, K=10, exclude_history=True), max_epochs=1,
                    eval_every=5, progress=False)
    a = fit_dpo(small, cfg, tmp_path / "a", log=quiet)
    b = fit_dpo(small, cfg, tmp_path / "b", log=quiet)
    assert a["test"] == b["test"]
    da = json.loads((tmp_path / "a/diagnostics.json").read_text())
    db = json.loads((tmp_path / "b/diagnostics.json").read_text())
    assert da == db and len(da) == a["steps"]
    assert {"false_negative_rate", "false_negative_grad_share", "negative_rank", "reward_margin", "loss"} <= set(da[0])
    assert all(d["negative_rank"] <= 11 for d in da)  # drawn from the top-10 pool (ties may add one)
    assert fit_dpo(small, cfg, tmp_path / "a", log=quiet) == a  # finished runs are reused
    with pytest.raises(ValueError, match="another configuration"):
        fit_dpo(small, DPOConfig(str(ref), beta=0.5, max_epochs=1, eval_every=5, progress=False), tmp_path / "a", log=quiet)


def test_first_step_loss_is_log2(setup):
    # policy = reference at the start: every margin is 0, the pairwise loss is log 2, whatever mode the policy was left in
    from rodpo.dpo import dpo_step
    from rodpo.negatives import NegativeSampler
    from rodpo.runs import load_checkpoint
    small, ref = setup
    policy, reference = load_checkpoint(ref / "best.pt").train(), load_checkpoint(ref / "best.pt").eval()
    cfg = DPOConfig(str(ref), sampler=SamplerConfig("hard", m=3), ce_weight=1.0)
    x, y = next(iter(TrainBatches(small.sequences, 50, 64).epoch(0)))
    loss, d = dpo_step(policy, reference, reference.item_table(), NegativeSampler(cfg.sampler, small.n_items), cfg, x, y, None)
    assert d["loss"].numpy() == pytest.approx(np.log(2), abs=1e-6) and d["margin"].abs().max() < 1e-5
    assert loss.item() > np.log(2)  # plus the anchor, computed with dropout
    assert (d["ranks"][:, 0] <= 2).all()  # the hard negative is the best-scored non-target item
    assert policy.training  # the step leaves the policy's mode as it found it


@pytest.mark.parametrize("data", ["beauty", "scientific"])
def test_first_step_of_every_run_is_log2(shared_data, tmp_path, data):
    # on real data, with dropout 0.5, attention dropout, feature dropout and noisy gating in the model (Scientific: sparse MoE over
    # ID, text and image): step 1 of a run has loss log 2 and margin 0 for every strategy, with either anchor
    ds = load_dataset(data, shared_data)
    if data == "beauty": ds = SeqDataset("beauty[:1500]", ds.sequences[:1500], ds.n_items)
    model = dict(modalities=("id", "text", "image"), fusion="sparse_moe", noisy_gating=True) if data == "scientific" else {}
    ref = tmp_path / "ref"
    fit(ds, TrainConfig(max_epochs=1, progress=False), SASRecConfig.for_dataset(ds, hidden=16, **model), ref, log=quiet)
    for strategy, anchor in (("hard", "dropout"), ("topk_stochastic", "deterministic"), ("random", "dropout")):
        cfg = DPOConfig(str(ref), sampler=SamplerConfig(strategy, m=2, K=10), ce_weight=1.0, anchor=anchor, max_epochs=1, eval_every=2,
                        patience=1, progress=False)
        r = fit_dpo(ds, cfg, tmp_path / f"{strategy}-{anchor}", log=quiet)
        assert r["first_step"]["loss"] == pytest.approx(np.log(2), abs=1e-5), (strategy, anchor)
        assert abs(r["first_step"]["reward_margin"]) < 1e-5


def test_continue_arm_and_evaluation_schedule(setup, tmp_path):
    # `continue`: the backbone's own loss alone, no negatives; evaluated once per epoch, and min_steps keeps a run going
    small, ref = setup
    per_epoch = -(-len(TrainBatches(small.sequences, 50, 128).rows) // 128)
    cfg = DPOConfig(str(ref), control=True, lr=1e-3, max_epochs=3, patience=1, min_steps=3 * per_epoch, progress=False)
    r = fit_dpo(small, cfg, tmp_path / "c", log=quiet)
    d = json.loads((tmp_path / "c/diagnostics.json").read_text())
    assert r["strategy"] == "continue" and r["steps"] == 3 * per_epoch and r["mean_false_negative_rate"] is None
    assert [x["step"] for x in d if "valid_ndcg@10" in x] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert set(d[0]) == {"step", "epoch", "anchor_loss"}  # the backbone's own loss: no DPO loss to start at log 2 and not (tmp_path / "c/probes.json").exists()
    assert fit_dpo(small, cfg, tmp_path / "c2", log=quiet)["test"] == r["test"]  # seeded
    # its record: no beta, form, ce_weight or sampler, which it does not read; the reference's stage 1 (budget and where it stopped)
    rec = json.loads((tmp_path / "c/config.json").read_text())["dpo"]
    assert (rec["beta"], rec["form"], rec["ce_weight"], rec["sampler"]) == (None, None, None, None) and rec["anchor"] == "dropout" and r["beta"] is None
    s1 = json.loads((ref / "metrics.json").read_text())
    assert r["backbone"] == "ce" and r["stage1"] == dict(loss="ce", max_epochs=2, patience=TrainConfig().patience, epochs=s1["epochs"], best_epoch=s1["best_epoch"])
    # a folder recorded before (every field, as DPOConfig holds it) is the same run: reused, not refused
    old = json.loads((tmp_path / "c2/config.json").read_text())
    old["dpo"] = {**old["dpo"], "beta": 1.0, "form": "pairwise", "ce_weight": 1.0, "sampler": {"strategy": "topk_stochastic", "m": 1, "K": 50}}
    (tmp_path / "c2/config.json").write_text(json.dumps(old))
    assert fit_dpo(small, cfg, tmp_path / "c2", log=quiet)["test"] == r["test"]
    with pytest.raises(ValueError, match="another configuration"): fit_dpo(small, DPOConfig(str(ref), control=True, lr=1e-2, progress=False), tmp_path / "c2", log=quiet)
    # without min_steps, patience 1 ends the run at the first evaluation that does not improve
    r1 = fit_dpo(small, DPOConfig(str(ref), control=True, lr=1e-3, max_epochs=3, patience=1, progress=False), tmp_path / "c3", log=quiet)
    assert r1["steps"] in (per_epoch, 2 * per_epoch, 3 * per_epoch)
    with pytest.raises(ValueError, match="eval_every=0"): DPOConfig("x", eval_every=0)
    with pytest.raises(ValueError, match="anchor='noisy'"): DPOConfig("x", anchor="noisy")
    with pytest.raises(ValueError, match="min_steps=-1"): DPOConfig("x", min_steps=-1)


def test_dpo_resumes_mid_run_exactly(setup, tmp_path):
    # paused after two evaluations (as a crash after a checkpoint would leave it), then resumed: same steps, diagnostics,
    # probes and metrics as an uninterrupted run; pools kept 4 steps so the sampler's cache is part of the saved state
    small, ref = setup
    cfg = DPOConfig(str(ref), sampler=SamplerConfig("topk_stochastic", m=2, K=10, refresh=4, exclude_history=True), max_epochs=1,
                    eval_every=3, patience=50, progress=False)
    assert fit_dpo(small, cfg, tmp_path / "a", log=quiet, stop_after=2) is None
    assert not (tmp_path / "a/metrics.json").exists() and (tmp_path / "a/last.pt").exists()
    a = fit_dpo(small, cfg, tmp_path / "a", log=quiet)
    b = fit_dpo(small, cfg, tmp_path / "b", log=quiet)
    for f in ("diagnostics.json", "probes.json"):
        assert json.loads((tmp_path / "a" / f).read_text()) == json.loads((tmp_path / "b" / f).read_text())
    assert a["test"] == b["test"] and a["steps"] == b["steps"] and a["best_step"] == b["best_step"]


def test_probes_match_a_direct_computation(setup, tmp_path):
    small, ref = setup
    cfg = DPOConfig(str(ref), sampler=SamplerConfig("topk_stochastic", m=2, K=10), max_epochs=1, eval_every=5, progress=False)
    fit_dpo(small, cfg, tmp_path / "p", log=quiet, n_probe=8)
    p = json.loads((tmp_path / "p/probes.json").read_text())
    assert len(p["users"]) == 8 and p["records"][0]["step"] == 0 and len(p["records"]) >= 2
    for rec in p["records"]:
        for n, u in enumerate(p["users"]):
            seq = small.sequences[u]
            t = len(seq) - 3
            later = set(seq[t + 1:].tolist())
            pool, neg = rec["pool"][n], rec["negatives"][n]
            assert len(pool) == 10 and int(seq[t]) not in pool and 0 not in pool
            assert set(neg) <= set(pool)  # topk_stochastic draws from the top-K pool
            assert rec["pool_future"][n] == [int(i in later) for i in pool]
            assert rec["negative_future"][n] == [int(i in later) for i in neg]
            assert rec["pool_scores"][n] == sorted(rec["pool_scores"][n], reverse=True)


def test_reference_cache_matches_the_reference(setup):
    # the cached hidden states are the reference's output for each training position, and a DPO step reading them gives the
    # loss and diagnostics of a step that runs the reference (up to float rounding)
    from rodpo.dpo import dpo_step, reference_hidden, _position_keys
    from rodpo.negatives import NegativeSampler
    from rodpo.runs import load_checkpoint
    small, ref = setup
    reference = load_checkpoint(ref / "best.pt").eval()
    policy = load_checkpoint(ref / "best.pt").train()
    with torch.no_grad(): table = reference.item_table()
    cache = reference_hidden(reference, table, small.sequences, batch_size=300)
    assert cache.shape == (sum(len(q) for q in small.sequences), 16)
    offsets = torch.as_tensor(_position_keys(small.sequences))
    cfg = DPOConfig(str(ref), sampler=SamplerConfig("topk_stochastic", m=2, K=10))
    sampler = NegativeSampler(cfg.sampler, small.n_items)
    n = 0
    for x, y, users, tindex in TrainBatches(small.sequences, 50, 64, seed=3).epoch(0, with_source=True):
        m = y > 0
        keys = offsets[users[:, None].expand_as(m)[m]] + tindex[m]
        with torch.no_grad(): direct = reference(x, table)[m]
        torch.testing.assert_close(cache[keys], direct, atol=1e-5, rtol=1e-5)
        runs = []
        for hidden in (None, cache):
            torch.manual_seed(0)  # same dropout in the policy
            loss, d = dpo_step(policy, reference, table, sampler, cfg, x, y, torch.Generator().manual_seed(1), keys, ref_hidden=hidden)
            runs.append((loss.item(), d))
        assert runs[0][0] == pytest.approx(runs[1][0], rel=1e-5)
        assert torch.equal(runs[0][1]["negatives"], runs[1][1]["negatives"])
        torch.testing.assert_close(runs[0][1]["margin"], runs[1][1]["margin"], atol=1e-4, rtol=1e-4)
        n += 1
        if n == 5: break
    training = {(u, i) for u, q in enumerate(small.sequences) for i in range(1, len(q) - 2)}  # every training target has a row
    rows = {int(offsets[u]) + i for u, i in training}
    assert all(cache[sorted(rows)].abs().sum(1) > 0)
    assert (cache[sorted(set(range(len(cache))) - rows)] == 0).all()


def test_negatives_only_control(setup, tmp_path):
    "The backbone's own loss with the sampler's negatives in place of its own draws, no DPO term: the step's loss by hand, the run's record, and the backbones it cannot apply to."
    from rodpo.dpo import dpo_step
    from rodpo.negatives import NegativeSampler
    from rodpo.objectives import Objective, bce
    from rodpo.metrics import topk_ordered
    from rodpo.runs import load_checkpoint
    small, ce_ref = setup
    ref = tmp_path / "bce-ref"
    fit(small, TrainConfig(loss="bce", max_epochs=2, progress=False), SASRecConfig(n_items=small.n_items, hidden=16), ref, log=quiet)
    policy, reference = load_checkpoint(ref / "best.pt").train(), load_checkpoint(ref / "best.pt").eval()
    cfg = DPOConfig(str(ref), control=True, negatives=True, anchor="deterministic", sampler=SamplerConfig("hard", m=2))
    x, y = next(iter(TrainBatches(small.sequences, 50, 64).epoch(0)))
    loss, d = dpo_step(policy, reference, reference.item_table(), NegativeSampler(cfg.sampler, small.n_items), cfg, x, y, None,
                       objective=Objective("bce", small.n_items))
    with torch.no_grad():  # by hand: the policy's deterministic pass, the two best-scored non-target items as each position's negatives
        policy.eval(); table = policy.item_table(); h = policy(x, table)[y > 0]; tgt = y[y > 0]
        s = h @ table.T; s[:, 0] = -np.inf; s[torch.arange(len(tgt)), tgt] = -np.inf
        neg = topk_ordered(s, 2)[1]
        expected = torch.stack([bce(h, table, tgt, neg[:, j]) for j in range(2)], 1).mean()
    assert torch.equal(d["negatives"], neg) and loss.item() == pytest.approx(expected.item(), rel=1e-5)
    r = fit_dpo(small, DPOConfig(str(ref), control=True, negatives=True, sampler=SamplerConfig("topk_stochastic", K=10), max_epochs=1,
                                 eval_every=5, progress=False), tmp_path / "n", log=quiet)
    diag = json.loads((tmp_path / "n/diagnostics.json").read_text())
    assert r["strategy"] == "negatives-topk_stochastic" and r["mean_false_negative_rate"] is not None
    rec = json.loads((tmp_path / "n/config.json").read_text())["dpo"]  # it reads the sampler, not beta, form or ce_weight
    assert (rec["beta"], rec["form"], rec["ce_weight"], rec["sampler"]["K"]) == (None, None, None, 10) and r["beta"] is None and r["stage1"]["loss"] == "bce"
    assert set(diag[0]) == {"step", "epoch", "anchor_loss", "false_negative_rate", "negative_rank"} and (tmp_path / "n/probes.json").exists()
    with pytest.raises(ValueError, match="needs control=True"): DPOConfig("x", negatives=True)
    with pytest.raises(ValueError, match="full-softmax CE"):
        fit_dpo(small, DPOConfig(str(ce_ref), control=True, negatives=True, max_epochs=1, progress=False), tmp_path / "ce", log=quiet)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_ann_pool_resumes_exactly_and_reports_its_recall(setup, tmp_path, metric):
    # pool='ann' with a coarse index (2 of its cells searched, 20 items retrieved) rebuilt every 4 steps: the pause at step 6 falls between
    # rebuilds, so the resumed run must rebuild the index of step 4 from the saved embeddings, not one of the current policy; cells by either metric
    small, ref = setup
    cfg = DPOConfig(str(ref), sampler=SamplerConfig("topk_stochastic", m=2, K=10, pool="ann", candidates=20, nprobe=2, index_refresh=4, rank_rows=16, index_metric=metric),
                    max_epochs=1, eval_every=3, patience=50, progress=False)
    assert fit_dpo(small, cfg, tmp_path / "a", log=quiet, stop_after=2) is None
    a = fit_dpo(small, cfg, tmp_path / "a", log=quiet)
    b = fit_dpo(small, cfg, tmp_path / "b", log=quiet)
    for f in ("diagnostics.json", "probes.json"):
        assert json.loads((tmp_path / "a" / f).read_text()) == json.loads((tmp_path / "b" / f).read_text())
    assert a["test"] == b["test"] and a["steps"] == b["steps"]
    d = json.loads((tmp_path / "b/diagnostics.json").read_text())
    assert [s["index_age"] for s in d[:9]] == [0, 1, 2, 3, 0, 1, 2, 3, 0]  # rebuilt at steps 0, 4, 8 (step numbers count from 0 in the sampler)
    assert all(0 <= s["pool_recall"] <= 1 and s["ranked_negatives"] == 2 * 16 for s in d)
    assert min(s["pool_recall"] for s in d) < 1  # a coarse index misses some of the exact top-K
    assert b["mean_pool_recall"] == pytest.approx(np.mean([s["pool_recall"] for s in d]))
    probes = json.loads((tmp_path / "b/probes.json").read_text())
    assert len(probes["records"]) >= 2 and all(0 not in neg for r in probes["records"] for neg in r["negatives"])


def test_continue_with_another_objective(setup, tmp_path):
    "`continue-ce`: a BCE reference continued with full-softmax CE, no DPO term; its first step's loss is the reference's CE on the first batch, by hand."
    import torch.nn.functional as F
    from rodpo.runs import load_checkpoint
    small, _ = setup
    ref = tmp_path / "bce-ref"
    fit(small, TrainConfig(loss="bce", max_epochs=2, progress=False), SASRecConfig(n_items=small.n_items, hidden=16), ref, log=quiet)
    cfg = DPOConfig(str(ref), control=True, switch="ce", anchor="deterministic", max_epochs=1, eval_every=5, progress=False)
    r = fit_dpo(small, cfg, tmp_path / "s", log=quiet)
    assert (r["strategy"], r["backbone"], r["objective"]) == ("continue-ce", "bce", "ce")
    model = load_checkpoint(ref / "best.pt").eval()
    x, y = next(iter(TrainBatches(small.sequences, model.cfg.max_len, cfg.batch_size, cfg.seed).epoch(0)))
    with torch.no_grad():
        table = model.item_table(); h = model(x, table)[y > 0]
        z = h @ table.T; z[:, 0] = -np.inf
        expected = F.cross_entropy(z, y[y > 0]).item()
    first = json.loads((tmp_path / "s/diagnostics.json").read_text())[0]
    assert first["anchor_loss"] == pytest.approx(expected, rel=1e-4) and expected > 2 * np.log(2)  # CE over the catalogue, not BCE's
    own = fit_dpo(small, DPOConfig(str(ref), control=True, anchor="deterministic", max_epochs=1, eval_every=5, progress=False), tmp_path / "c", log=quiet)
    assert own["strategy"] == "continue" and "objective" not in own
    with pytest.raises(ValueError, match="switch='hinge'"): DPOConfig("x", control=True, switch="hinge")
    with pytest.raises(ValueError, match="with control=True"): DPOConfig("x", switch="ce")


def test_experiment_names_the_switch_arms():
    from rodpo.experiment import ExperimentConfig, ARMS, _identity
    cfg = ExperimentConfig("beauty", "unused", strategies=("continue", "continue-ce", "continue-gbce"), seeds=(0,))
    runs = dict(cfg.runs(0, "ref"))
    assert set(runs) == {"continue-seed0", "continue-ce-seed0", "continue-gbce-seed0"} and "continue-sampled_softmax" in ARMS
    assert (runs["continue-ce-seed0"].switch, runs["continue-gbce-seed0"].switch, runs["continue-seed0"].switch) == ("ce", "gbce", None)
    assert len({_identity(c) for c in runs.values()}) == 3  # three different runs
    assert "continue-ce" not in ExperimentConfig("beauty", "unused").strategies  # not in the default arms


@pytest.mark.parametrize("form", ["cdpo", "ipo", "simpo", "dpop"])
def test_registered_objectives_train_and_are_recorded(setup, tmp_path, form):
    "An objective from rodpo.losses.OBJECTIVES trains end to end: its step-1 value by hand, its weights by autograd, its name and hyperparameters in the records."
    import math
    from rodpo.dpo import dpo_step
    from rodpo.losses import OBJECTIVES, objective_params
    from rodpo.negatives import NegativeSampler
    from rodpo.runs import load_checkpoint
    small, ref = setup
    cfg = DPOConfig(str(ref), beta=1.0, form=form, sampler=SamplerConfig("topk_stochastic", m=2, K=10), max_epochs=1, eval_every=10, progress=False)
    policy, reference = load_checkpoint(ref / "best.pt").train(), load_checkpoint(ref / "best.pt").eval()
    x, y = next(iter(TrainBatches(small.sequences, 50, 64).epoch(0)))
    _, d = dpo_step(policy, reference, reference.item_table(), NegativeSampler(cfg.sampler, small.n_items), cfg, x, y, None, logp_rows=32)
    assert len(d["logps_chosen"]) == 32 and (d["logps_chosen"] < 0).all() and torch.allclose(d["logps_chosen"], d["logps_chosen_ref"], atol=1e-5)  # step 1: policy = reference
    if form != "simpo":  # policy = reference: cdpo is log 2 at any eps, ipo (0 - 1/2)^2; simpo reads the policy's logits only
        assert d["loss"].numpy() == pytest.approx({"cdpo": math.log(2), "ipo": 0.25, "dpop": math.log(2)}[form], abs=1e-5)
    r = fit_dpo(small, cfg, tmp_path / form, log=quiet)
    assert r["preference"] == dict(form=form, **objective_params(form)) and set(r["preference"]) == {"form", *OBJECTIVES[form].params}
    diag = json.loads((tmp_path / form / "diagnostics.json").read_text())
    assert all(np.isfinite(s["loss"]) and 0 <= s["false_negative_grad_share"] <= 1 and 0 <= s["rewards_accuracy"] <= 1 for s in diag)
    assert abs(diag[0]["rewards_chosen"]) < 1e-4 and abs(diag[0]["rewards_rejected"]) < 1e-4  # step 1: policy = reference
    assert diag[-1]["reward_margin"] == pytest.approx(diag[-1]["rewards_chosen"] - diag[-1]["rewards_rejected"], abs=2e-5)
    measured = [s for s in diag if "logps_chosen" in s]  # at the evaluation steps only
    assert measured and [s["step"] for s in measured] == [s["step"] for s in diag if "valid_ndcg@10" in s]
    assert all(s["logps_chosen"] < 0 and s["logps_rows"] > 0 for s in measured)
    best = next(s for s in diag if s["step"] == r["best_step"])
    assert (r["logps_chosen"], r["logps_chosen_shift"]) == (best["logps_chosen"], best["logps_chosen_shift"])
    assert json.loads((tmp_path / form / "config.json").read_text())["dpo"]["form"] == form


def test_objective_hyperparameters_are_checked_with_the_valid_values(setup):
    from rodpo.losses import OBJECTIVES
    _, ref = setup
    assert DPOConfig(str(ref), form="rdpo", loss_params={"eps": 0.2}).loss_params == {"eps": 0.2}
    with pytest.raises(ValueError, match=r"form='dpo2' is not one of \('pairwise', 'sdpo'"):
        DPOConfig(str(ref), form="dpo2")
    with pytest.raises(ValueError, match=r"rdpo: eps=0.5 must be a number in \[0.0, 0.5\)"):
        DPOConfig(str(ref), form="rdpo", loss_params={"eps": 0.5})
    with pytest.raises(ValueError, match="form='dpop' reads the target's log-softmax over the catalogue, which pool='ann' never computes"):
        DPOConfig(str(ref), form="dpop", sampler=SamplerConfig(pool="ann"))
    with pytest.raises(ValueError, match="ipo takes no eps; its hyperparameters: none"):
        DPOConfig(str(ref), form="ipo", loss_params={"eps": 0.1})
    assert len(OBJECTIVES) >= 8


def test_a_weighted_list_of_objectives_trains_and_is_recorded(setup, tmp_path):
    "form as a list with loss_weights (TRL's list of loss types): its step-1 loss by hand, its record, its folder, the command line, an experiment."
    import math
    from rodpo.dpo import parser
    from rodpo.experiment import ExperimentConfig
    small, ref = setup
    cfg = DPOConfig(str(ref), beta=1.0, form=["pairwise", "ipo"], loss_weights=[1, 0.5], sampler=SamplerConfig("topk_stochastic", m=2, K=10),
                    max_epochs=1, eval_every=10, progress=False)
    assert (cfg.form, cfg.loss_weights) == (("pairwise", "ipo"), (1, 0.5))
    r = fit_dpo(small, cfg, tmp_path / "mix", log=quiet)
    assert r["preference"] == {"form": ["pairwise", "ipo"], "loss_weights": [1.0, 0.5]}
    assert r["first_step"]["loss"] == pytest.approx(math.log(2) + 0.5 * (0 - 1 / 2) ** 2, abs=1e-5)  # policy = reference: margin 0
    saved = json.loads((tmp_path / "mix" / "config.json").read_text())["dpo"]
    assert DPOConfig(**saved) == cfg  # config.json reads back as the same configuration
    assert fit_dpo(small, cfg, tmp_path / "mix", log=quiet)["test"] == r["test"]  # and its folder accepts it
    a = vars(parser().parse_args(["--stage1", str(ref), "--form", "pairwise,ipo", "--loss_weights", "1,0.5"]))
    assert (a["form"], a["loss_weights"]) == (("pairwise", "ipo"), (1.0, 0.5))
    assert vars(parser().parse_args(["--stage1", str(ref), "--form", "cdpo"]))["form"] == "cdpo"
    objectives = ({"form": ["pairwise", "ipo"], "loss_weights": [1, 0.5]}, {"form": ["cdpo", "rdpo"], "eps": 0.2}, "cdpo")
    runs = dict(ExperimentConfig("beauty", "unused", ("hard",), objectives=objectives).runs(0, str(ref)))
    assert set(runs) == {"hard-pairwise+ipo-w1+0.5-seed0", "hard-cdpo+rdpo-eps0.2-seed0", "hard-cdpo-seed0"}
    assert runs["hard-cdpo+rdpo-eps0.2-seed0"].loss_params == {"eps": 0.2} and runs["hard-cdpo+rdpo-eps0.2-seed0"].loss_weights is None
    with pytest.raises(ValueError, match=r"loss_weights=\(1.0,\) must be 2 finite number"):
        DPOConfig(str(ref), form=("pairwise", "ipo"), loss_weights=(1.0,))
    with pytest.raises(ValueError, match="names an objective twice"):
        DPOConfig(str(ref), form=("ipo", "ipo"))


def test_target_log_probability_is_the_log_softmax_over_the_catalogue_without_padding():
    from rodpo.dpo import _target_logp
    g = torch.Generator().manual_seed(0)
    h, table, tgt = torch.randn(5, 4, generator=g), torch.randn(7, 4, generator=g), torch.tensor([1, 6, 3, 3, 2])
    direct = torch.log_softmax((h.double() @ table[1:].double().T), 1)[torch.arange(5), tgt - 1]  # items 1..6; item 0 is padding
    assert torch.allclose(_target_logp(h, table, tgt).double(), direct, atol=1e-5)


def test_eps_auto_is_the_training_false_negative_rate_of_the_sampler(setup, tmp_path):
    "eps='auto' becomes the share of `hard` negatives (the reference's top item other than the target) that come later in the user's training sequence, checked by a loop over positions; validation and test items never count."
    from rodpo.dpo import train_false_negative_rate
    from rodpo.runs import load_checkpoint
    small, ref = setup
    cfg = DPOConfig(str(ref), beta=1.0, form="cdpo", loss_params={"eps": "auto"}, sampler=SamplerConfig("hard", m=1), max_epochs=1,
                    eval_every=10, progress=False, batch_size=64)
    reference = load_checkpoint(ref / "best.pt").eval()
    table = reference.item_table().detach()
    rate = train_false_negative_rate(reference, table, small, cfg, torch.device("cpu"), batches=3)
    hits = total = 0
    with torch.no_grad():
        for _, (x, y, users, tindex) in zip(range(3), TrainBatches(small.sequences, 50, 64, cfg.seed).epoch(0, with_source=True)):
            scores = (reference(x, table) @ table.T).numpy()
            for r, c in (y > 0).nonzero().tolist():
                seq, t = small.sequences[int(users[r])], int(tindex[r, c])
                s = scores[r, c].copy()
                s[0] = s[seq[t]] = -np.inf  # padding and the target (exclude_history is off)
                later = set(seq[t + 1:len(seq) - 2].tolist())  # training items after the target: not the validation or test item
                hits, total = hits + (int(s.argmax()) in later), total + 1
    assert total > 100 and rate == pytest.approx(hits / total, abs=2 / total)  # a near tie may pick another item
    r = fit_dpo(small, cfg, tmp_path / "auto", log=quiet)
    assert r["preference"]["measured"] == ["eps"] and r["preference"]["eps"] == pytest.approx(train_false_negative_rate(
        reference, table, small, cfg, torch.device("cpu")))
    with pytest.raises(ValueError, match="is measured by the DPO stage"):
        from rodpo.losses import dpo_loss
        dpo_loss(torch.zeros(2), torch.zeros(2, 1), torch.zeros(2), torch.zeros(2, 1), 1.0, "cdpo", eps="auto")


def test_in_batch_negatives_are_other_rows_targets(setup, tmp_path):
    "dpo_step hands the sampler the batch: in_batch negatives are targets of the batch's other rows; a run trains with them."
    from rodpo.dpo import dpo_step
    from rodpo.negatives import NegativeSampler
    from rodpo.runs import load_checkpoint
    small, ref = setup
    cfg = DPOConfig(str(ref), beta=1.0, sampler=SamplerConfig("in_batch", m=2), max_epochs=1, eval_every=10, progress=False)
    policy, reference = load_checkpoint(ref / "best.pt").train(), load_checkpoint(ref / "best.pt").eval()
    x, y = next(iter(TrainBatches(small.sequences, 50, 64).epoch(0)))
    _, d = dpo_step(policy, reference, reference.item_table(), NegativeSampler(cfg.sampler, small.n_items), cfg, x, y, torch.Generator().manual_seed(0))
    m = y > 0
    rows = torch.arange(len(y))[:, None].expand_as(m)[m]
    for p in range(len(rows)):
        own = set(y[rows[p]].tolist())
        others = set(y[m & (torch.arange(len(y))[:, None] != rows[p])].tolist())
        got = set(d["negatives"][p].tolist())
        assert len(got) == 2 and got <= others - own - {0}
    r = fit_dpo(small, cfg, tmp_path / "ib", log=quiet)
    assert r["strategy"] == "in_batch" and np.isfinite(r["test"]["ndcg@5"])
