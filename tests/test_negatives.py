import numpy as np
import pytest
import torch

from rodpo.metrics import topk_ordered
from rodpo.negatives import (SamplerConfig, NegativeSampler, SAMPLERS, false_negative_mask, future_items,
                             negative_ranks)

pytestmark = pytest.mark.order  # ties and float sums: .ci/run runs this module again on one thread

N_ITEMS = 40


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(200, N_ITEMS + 1, generator=g)
    targets = torch.randint(1, N_ITEMS + 1, (200,), generator=g)
    history = torch.randint(0, N_ITEMS + 1, (200, 6), generator=g)  # 0 = padding
    return scores, targets, history


def make(strategy, **kw):
    return NegativeSampler(SamplerConfig(strategy, **kw), N_ITEMS, item_counts=np.arange(N_ITEMS + 1))


@pytest.mark.parametrize("strategy", SAMPLERS)  # every registered strategy
@pytest.mark.parametrize("exclude_history", [False, True])
def test_exclusion_rules(batch, strategy, exclude_history):
    scores, targets, history = batch
    neg = make(strategy, m=4, K=8, M=10, exclude_history=exclude_history)(scores, targets, history, torch.Generator().manual_seed(1))
    assert neg.shape == (200, 4)
    for r in range(200):
        got = neg[r].tolist()
        assert len(set(got)) == 4 and 0 not in got and int(targets[r]) not in got
        if exclude_history:
            assert not set(got) & set(history[r].tolist())


@pytest.mark.parametrize("strategy", [s for s in SAMPLERS if s != "hard"])  # every random strategy
def test_seeded(batch, strategy):
    scores, targets, history = batch
    smp = make(strategy, m=3, K=10)
    a = smp(scores, targets, history, torch.Generator().manual_seed(7))
    b = smp(scores, targets, history, torch.Generator().manual_seed(7))
    c = smp(scores, targets, history, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_hard_is_top_m_and_pool_contains_stochastic(batch):
    scores, targets, _ = batch
    hard = make("hard", m=3)(scores, targets)
    masked = scores.clone(); masked[:, 0] = -1e9; masked[torch.arange(200), targets] = -1e9
    assert torch.equal(hard, topk_ordered(masked, 3)[1])  # best first, ties to the lower item id
    neg = make("topk_stochastic", m=3, K=12)(scores, targets, generator=torch.Generator().manual_seed(0))
    pool = masked.topk(12, 1).indices
    assert all(set(neg[r].tolist()) <= set(pool[r].tolist()) for r in range(200))
    # a tiny temperature turns softmax sampling over the pool into hard negatives
    cold = make("topk_stochastic", m=1, K=12, tau=1e-4)(scores, targets, generator=torch.Generator().manual_seed(0))
    assert torch.equal(cold[:, 0], hard[:, 0])


def test_popularity_follows_counts():
    counts = np.zeros(N_ITEMS + 1); counts[1:5] = [1, 2, 3, 4]  # only items 1..4 ever sampled, in ratio 1:2:3:4
    smp = NegativeSampler(SamplerConfig("popularity", m=1, alpha=1.0), N_ITEMS, counts)
    scores = torch.zeros(20000, N_ITEMS + 1)
    neg = smp(scores, torch.full((20000,), 10), generator=torch.Generator().manual_seed(0))
    freq = np.bincount(neg[:, 0].numpy(), minlength=5)[1:5] / 20000
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.015)


def test_dns_picks_best_of_candidates(batch):
    scores, targets, _ = batch
    neg = make("dns", m=1, M=N_ITEMS - 1)(scores, targets, generator=torch.Generator().manual_seed(0))
    # with M = every allowed item, the best candidate is the hard negative
    assert torch.equal(neg, make("hard", m=1)(scores, targets))


def test_false_negative_rate_on_constructed_case():
    seqs = [np.array([1, 2, 3, 4, 5]), np.array([6, 7, 8, 9, 10])]
    # positions: target index 1 of user 0 (future 3, 4, 5) and target index 2 of user 1 (future 9, 10)
    futures = torch.zeros(2, 4, dtype=torch.long)
    for r, (s, pos) in enumerate([(seqs[0], 1), (seqs[1], 2)]):
        f = future_items(s, pos); futures[r, :len(f)] = torch.as_tensor(f)
    negatives = torch.tensor([[3, 9, 5], [1, 10, 2]])
    mask = false_negative_mask(negatives, futures)
    assert mask.tolist() == [[True, False, True], [False, True, False]]
    assert mask.float().mean().item() == pytest.approx(0.5)


def test_negative_ranks():
    scores = torch.tensor([[float("-inf"), 0.5, 0.9, 0.5, 0.1]])
    assert negative_ranks(scores, torch.tensor([[2, 1, 4]])).tolist() == [[1, 3, 4]]


@pytest.mark.parametrize("kw,msg", [(dict(strategy="hardest"), "not one of"), (dict(m=4, K=3), "K=3 must be"),
                                    (dict(tau=0.0), "tau=0.0"), (dict(m=0), "m=0")])
def test_config_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        SamplerConfig(**kw)


def test_pool_refresh_keeps_pools_for_n_steps():
    g = torch.Generator().manual_seed(0)
    smp = NegativeSampler(SamplerConfig("topk_stochastic", m=1, K=3, refresh=2), 50, n_keys=4)
    targets, keys = torch.tensor([1, 1]), torch.tensor([0, 3])
    first, second = torch.zeros(2, 51), torch.zeros(2, 51)
    first[:, 10:13] = 5.0   # pool {10, 11, 12}
    second[:, 20:23] = 5.0  # pool {20, 21, 22}
    got = [set(smp(s, targets, generator=g, keys=keys, step=i).flatten().tolist()) for i, s in enumerate([first, second, second, second])]
    assert got[0] <= {10, 11, 12} and got[1] <= {10, 11, 12}  # step 1: the step-0 pools are still fresh
    assert got[2] <= {20, 21, 22} and got[3] <= {20, 21, 22}  # step 2: rebuilt from the current scores
    with pytest.raises(ValueError, match="step"):
        smp(first, targets, generator=g, keys=keys)
