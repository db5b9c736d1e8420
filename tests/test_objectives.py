"Stage-1 objectives: sampled softmax and BCE against independent computations, and seeded runs on real data."
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rodpo.data import load_dataset, SeqDataset
from rodpo.model import SASRecConfig
from rodpo.objectives import Objective, sampled_softmax, bce, item_counts
from rodpo.train import TrainConfig, fit, main


def test_sampled_softmax_over_the_whole_catalogue_is_ce():
    g = torch.Generator().manual_seed(0)
    V, d, N = 40, 8, 30
    h, table = torch.randn(N, d, generator=g), torch.randn(V + 1, d, generator=g)
    t = torch.randint(1, V + 1, (N,), generator=g)
    every = torch.arange(1, V + 1)  # each row's target is among them: an accidental hit, left out
    ce = F.cross_entropy(h @ table[1:].T, t - 1, reduction="none")
    torch.testing.assert_close(sampled_softmax(h, table, t, every), ce)
    # a uniform logQ correction is a constant shift: no change
    torch.testing.assert_close(sampled_softmax(h, table, t, every, torch.full((V + 1,), -np.log(V))), ce)
    # the correction by hand on a 3-item case: logits 2, 0, 1 with q = 0.5, 0.25, 0.25 (target = item 1)
    h1, tab = torch.tensor([[1.0]]), torch.tensor([[0.0], [2.0], [0.0], [1.0]])
    lq = torch.log(torch.tensor([1.0, 0.5, 0.25, 0.25]))
    z = torch.tensor([2 - np.log(.5), 0 - np.log(.25), 1 - np.log(.25)])
    torch.testing.assert_close(sampled_softmax(h1, tab, torch.tensor([1]), torch.tensor([2, 3]), lq), (torch.logsumexp(z, 0) - z[0])[None].float())


def test_bce_by_hand():
    h = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    table = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5], [0.5, 0.5]])
    # row 0: s+ = 1, s- (item 2) = -1; row 1: s+ (item 3) = 1, s- (item 1) = 2
    want = torch.tensor([-np.log(1 / (1 + np.exp(-1))) - np.log(1 - 1 / (1 + np.exp(1))),
                         -np.log(1 / (1 + np.exp(-1))) - np.log(1 - 1 / (1 + np.exp(-2)))], dtype=torch.float32)
    torch.testing.assert_close(bce(h, table, torch.tensor([1, 3]), torch.tensor([2, 1])), want)


def test_negatives_exclude_the_target_and_follow_popularity():
    torch.manual_seed(0)
    o = Objective("bce", n_items=5)
    t = torch.randint(1, 6, (20000,))
    neg = o.negatives(t)
    assert ((neg >= 1) & (neg <= 5)).all() and (neg != t).all()
    assert np.allclose(np.bincount(neg[t == 3].numpy(), minlength=6)[[1, 2, 4, 5]] / (t == 3).sum().item(), 0.25, atol=0.02)
    counts = np.array([0, 1, 3, 0, 4])
    o = Objective("sampled_softmax", n_items=4, n_negatives=40000, neg_sampling="popularity", counts=counts)
    freq = np.bincount(o.negatives(t[:1]).numpy(), minlength=5) / 40000
    assert np.allclose(freq, counts / counts.sum(), atol=0.01)
    assert torch.isfinite(o.log_q[1:][counts[1:] > 0]).all()
    with pytest.raises(ValueError, match="loss='softmax' is not one of"): Objective("softmax", 5)
    with pytest.raises(ValueError, match="loss='sampled' is not one of"): TrainConfig(loss="sampled")
    with pytest.raises(ValueError, match="neg_sampling"): TrainConfig(loss="sampled_softmax", neg_sampling="zipf")
    with pytest.raises(ValueError, match="n_negatives"): TrainConfig(n_negatives=0)


def test_history_negatives_on_real_batches(shared_data):
    "neg_exclude='history': no negative is an item of its user's training window, checked row by row against the user's sequence."
    from rodpo.data import TrainBatches
    b = load_dataset("beauty", shared_data)
    seqs = b.sequences[:3000]
    o = Objective("bce", n_items=b.n_items, neg_exclude="history")
    torch.manual_seed(0)
    checked = 0
    for k, (x, y, users, _) in enumerate(TrainBatches(seqs, batch_size=256, seed=0).epoch(0, with_source=True)):
        m = y > 0
        neg = o.negatives(y[m], o.seen(x, y, m))
        rows = m.nonzero(as_tuple=True)[0]
        for r, n in zip(rows.tolist(), neg.tolist()):
            s = seqs[int(users[r])][:-2]
            window = set(x[r].tolist()) | set(y[r].tolist())
            assert n not in window and 1 <= n <= b.n_items
            if len(s) <= 51: assert n not in set(s)  # the window is the whole training sequence: no item of the user at all
            checked += 1
        if k == 3: break
    assert checked > 1000
    with pytest.raises(ValueError, match="applies to loss='bce' only"): TrainConfig(loss="ce", neg_exclude="history")


@pytest.fixture(scope="module")
def small(shared_data):
    b = load_dataset("beauty", shared_data)
    return SeqDataset("beauty[:1500]", b.sequences[:1500], b.n_items)


@pytest.mark.parametrize("loss,exclude", [("sampled_softmax", "target"), ("bce", "target"), ("bce", "history")])
def test_sampled_objectives_train_and_reproduce_on_real_data(small, tmp_path, loss, exclude):
    mcfg = SASRecConfig(n_items=small.n_items, hidden=16)
    cfg = TrainConfig(loss=loss, n_negatives=50, max_epochs=3, batch_size=128, progress=False, neg_exclude=exclude)
    a = fit(small, cfg, mcfg, tmp_path / "a", log=lambda *x: None)
    b = fit(small, cfg, mcfg, tmp_path / "b", log=lambda *x: None)
    assert a["loss"] == loss and a["test"] == b["test"]
    hist = json.loads((tmp_path / "a/history.json").read_text())
    assert hist[-1]["loss"] < hist[0]["loss"]  # it learns
    if loss == "bce": assert hist[0]["loss"] < 2 * np.log(2) + 0.05  # starts near two coin flips
    # a paused run resumes to the same numbers (the negatives' random stream is in last.pt)
    assert fit(small, cfg, mcfg, tmp_path / "c", log=lambda *x: None, stop_after=1) is None
    assert fit(small, cfg, mcfg, tmp_path / "c", log=lambda *x: None)["test"] == a["test"]


def test_rodpo_train_takes_the_loss(small, tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit, match="loss='hinge' is not one of"):
        main(["--loss", "hinge", "--out_dir", str(tmp_path / "x")])


def test_gbce_against_the_reference_formulation():
    "gBCE as gSASRec's code computes it: the positive logit transformed to log(1 / (sigmoid(s)**-beta - 1)), then BCE with logits averaged over the k + 1 labels."
    from rodpo.objectives import gbce, gbce_beta
    g = torch.Generator().manual_seed(0)
    V, d, N, k = 500, 8, 40, 16
    h, table = torch.randn(N, d, generator=g, dtype=torch.float64), torch.randn(V + 1, d, generator=g, dtype=torch.float64)
    t = torch.randint(1, V + 1, (N,), generator=g); neg = torch.randint(1, V + 1, (N, k), generator=g)
    beta = gbce_beta(k, V, 0.75)
    pos = (h * table[t]).sum(-1, keepdim=True); negs = torch.einsum("nd,nkd->nk", h, table[neg])
    z = torch.log(1.0 / (torch.sigmoid(pos) ** -beta - 1))  # sigmoid(z) = sigmoid(s+) ** beta
    logits, labels = torch.cat([z, negs], 1), torch.cat([torch.ones(N, 1), torch.zeros(N, k)], 1).double()
    ref = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(1)
    torch.testing.assert_close(gbce(h, table, t, neg, beta), ref)


def test_gbce_stage1_on_real_data(shared_data, tmp_path):
    "A gbce reference trains on Beauty's first 2,000 users and learns (validation NDCG@10 above its first epoch's); invalid settings fail with the field named."
    b = load_dataset("beauty", shared_data)
    small = SeqDataset("beauty[:2000]", b.sequences[:2000], b.n_items)
    r = fit(small, TrainConfig(loss="gbce", gbce_negatives=64, max_epochs=3, progress=False, seed=0), SASRecConfig(n_items=small.n_items, hidden=16),
            tmp_path / "g", log=lambda *a: None)
    h = json.loads((tmp_path / "g" / "history.json").read_text())
    assert r["loss"] == "gbce" and np.isfinite([e["loss"] for e in h]).all() and max(e["valid_ndcg@10"] for e in h) > h[0]["valid_ndcg@10"]
    with pytest.raises(ValueError, match="gbce_t=2"): TrainConfig(loss="gbce", gbce_t=2)
    with pytest.raises(ValueError, match="gbce_negatives=0"): TrainConfig(loss="gbce", gbce_negatives=0)
