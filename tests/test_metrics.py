import math

import numpy as np
import pandas as pd
import pytest
import torch

from rodpo.data import EvalSet
from rodpo.metrics import target_ranks, metrics_from_ranks, summarize, evaluate

pytestmark = pytest.mark.order  # ties and float sums: .ci/run runs this module again on one thread


def test_ranks_by_hand():
    s = torch.tensor([[-math.inf, 3.0, 1.0, 2.0, 2.0]])
    # item 3 scores 2.0: item 1 is higher, item 4 ties -> rank 1 + 1 + 1 = 3
    assert target_ranks(s, torch.tensor([3])).tolist() == [3]
    assert target_ranks(s, torch.tensor([1])).tolist() == [1]
    assert target_ranks(s, torch.tensor([2])).tolist() == [4]
    # all equal: the worst rank, never the best
    assert target_ranks(torch.tensor([[-math.inf, 0.0, 0.0, 0.0]]), torch.tensor([2])).tolist() == [3]
    # history masking removes items 1 and 4 but never the target itself
    assert target_ranks(s, torch.tensor([3]), exclude=torch.tensor([[1, 4, 3]])).tolist() == [1]


def test_metric_values_by_hand():
    pu = metrics_from_ranks([1, 2, 5, 6, 25])
    assert pu["hr@5"].tolist() == [1, 1, 1, 0, 0]
    np.testing.assert_allclose(pu["ndcg@5"], [1, 1 / math.log2(3), 1 / math.log2(6), 0, 0])
    np.testing.assert_allclose(pu["mrr@10"], [1, 0.5, 0.2, 1 / 6, 0])
    m = summarize(pu)
    assert m["hr@20"] == pytest.approx(0.8)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 5)


class Preset(torch.nn.Module):
    "A model whose scores are given: user u's history holds u+1 in its last column."
    def __init__(self, scores):
        super().__init__()
        self.s = torch.nn.Parameter(scores)
    def item_table(self): return None
    def last_hidden(self, hist, table=None): return hist[:, -1] - 1
    def score(self, h, table):
        s = self.s[h].clone(); s[:, 0] = -math.inf
        return s


def independent_ndcg(scores, targets, k):
    "Sort-based reference: position of the target after a stable sort that puts ties ahead of it."
    out = []
    for s, t in zip(scores.numpy(), targets.numpy()):
        items = np.arange(1, len(s))
        order = sorted(items, key=lambda i: (-s[i], i == t))  # among equal scores the target goes last
        r = order.index(t) + 1
        out.append(1 / np.log2(r + 1) if r <= k else 0.0)
    return float(np.mean(out))


def test_evaluate_against_sorting():
    g = torch.Generator().manual_seed(1)
    n, v = 500, 80
    scores = torch.randint(0, 30, (n, v + 1), generator=g).float()
    targets = torch.randint(1, v + 1, (n,), generator=g)
    lengths = torch.randint(1, 6, (n,), generator=g)  # histories of various lengths, left-padded
    hist = torch.zeros(n, 6, dtype=torch.long)
    for u in range(n):
        hist[u, 6 - lengths[u]:] = torch.randint(1, v + 1, (int(lengths[u]),), generator=g)
        hist[u, -1] = u + 1
    res, pu = evaluate(Preset(scores), EvalSet(hist, targets, torch.arange(n)), batch_size=64)
    for k in (5, 10, 20):
        assert res[f"ndcg@{k}"] == pytest.approx(independent_ndcg(scores, targets, k))
    assert pu["user"].tolist() == list(range(n))  # per-user rows come back in user order
    assert len(pu) == n and {"rank", "hr@10", "mrr@20"} <= set(pu.columns)


def brute_force_ranks(scores, targets, histories=None):
    "Sort-based ranks: each user's candidates (items 1.., history masked but never the target) sorted by descending score, the target after every item it ties with."
    out = []
    for u, (s, t) in enumerate(zip(scores, targets)):
        banned = np.zeros(len(s), dtype=bool); banned[0] = True
        if histories is not None: banned[histories[u]] = True; banned[0] = True
        banned[t] = False
        items = np.flatnonzero(~banned)
        order = items[np.lexsort((items == t, -s[items]))]  # by descending score; among equal scores the target last
        out.append(int(np.flatnonzero(order == t)[0]) + 1)
    return np.array(out)


def test_fused_ranks_brute_force_on_beauty(shared_data):
    "evaluate's ranks (the encoder's last position, fused block counting) against sorting the full score matrix: real histories from Beauty, a block of 300 items tied exactly, history masking with the target inside some histories."
    from rodpo.data import load_dataset, eval_set
    from rodpo.model import SASRec, SASRecConfig
    ds = load_dataset("beauty", shared_data)
    es = eval_set(ds, "test")
    n = 700
    hist, tg = es.histories[:n].clone(), es.targets[:n].clone()
    g = torch.Generator().manual_seed(0)
    tg[:200] = torch.randint(1, 301, (200,), generator=g)  # targets inside the tied block
    hist[150:250, -1] = torch.randint(1, 301, (100,), generator=g)  # history items inside the tied block
    hist[300:350, -2] = tg[300:350]  # the target in its own history: counted, never masked
    torch.manual_seed(0)

    class Recording(SASRec):
        "SASRec that keeps the user states evaluate computes, so that the reference scores use the same ones."
        def last_hidden(self, items, table=None):
            h = super().last_hidden(items, table); self.seen.append(h); return h

    model = Recording(SASRecConfig.for_dataset(ds)).eval()
    with torch.no_grad():
        model.items.id_emb.weight[1:301] = model.items.id_emb.weight[1]  # 300 items with one embedding: exact ties
        table = model.item_table()
    assert torch.equal(table[1:301], table[1].expand(300, -1))
    order = (hist > 0).sum(1).argsort(stable=True)  # evaluate's user order (one batch)
    for mask in (False, True):
        model.seen = []
        _, pu = evaluate(model, EvalSet(hist, tg, torch.arange(n)), batch_size=1024, mask_history=mask)
        h = torch.cat(model.seen)
        with torch.no_grad():
            scores = (h @ table.T).numpy()
        ref = np.empty(n, dtype=np.int64)
        ref[order.numpy()] = brute_force_ranks(scores, tg[order].numpy(), hist[order].numpy() if mask else None)
        assert (pu["rank"].to_numpy() == ref).all()
        if not mask: assert (ref[:200] >= 300).all()  # a target in the tied block ranks behind the 299 items it ties with
