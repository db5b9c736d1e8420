import math

import pytest
import torch

from rodpo.moe import MoEConfig, SparseMoE, DenseMoE, route, load_balancing_loss, router_z_loss, aux_loss


def test_topk_selection_and_gates():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0], [5.0, 0.0, 4.0, 0.0]])
    probs, top_i, gates = route(logits, 2)
    assert top_i.tolist() == [[1, 3], [0, 2]]
    p = logits.softmax(-1)
    torch.testing.assert_close(gates[0], torch.stack([p[0, 1], p[0, 3]]) / (p[0, 1] + p[0, 3]))
    torch.testing.assert_close(gates.sum(-1), torch.ones(2))
    _, top1, g1 = route(logits, 1)  # k = 1: the raw probability (Switch), so the router still learns
    assert top1.flatten().tolist() == [1, 0]
    torch.testing.assert_close(g1.flatten(), torch.stack([p[0, 1], p[1, 0]]))


def test_aux_loss_by_hand():
    # p rows: [.5, .5, 0-ish] twice and [.1, .2, .7]; top-1 picks expert 0 (first max), 0, 2
    probs = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.1, 0.2, 0.7]])
    top_i = torch.tensor([[0], [0], [2]])
    f = torch.tensor([2 / 3, 0, 1 / 3]); P = probs.mean(0)
    assert load_balancing_loss(probs, top_i).item() == pytest.approx(3 * float((f * P).sum()))
    assert load_balancing_loss(probs, top_i).item() == pytest.approx(3 * (2 / 3 * 1.1 / 3 + 1 / 3 * 0.7 / 3))
    logits = torch.tensor([[0.0, 0.0], [math.log(3), 0.0]])
    assert router_z_loss(logits).item() == pytest.approx((math.log(2) ** 2 + math.log(4) ** 2) / 2)


def test_gradients_reach_router_and_chosen_experts_only():
    torch.manual_seed(3)
    moe = SparseMoE(6, 5, 7, MoEConfig(n_experts=8, top_k=1, aux_weight=0.0))
    x = torch.randn(3, 6)  # three inputs, eight experts: at least five experts idle
    moe(x).pow(2).sum().backward()
    chosen = set(moe.stats["experts"].flatten().tolist())
    assert len(chosen) <= 3
    for e, ex in enumerate(moe.experts):
        g = ex[0].weight.grad
        assert (g is not None and g.abs().sum() > 0) == (e in chosen)
    assert moe.router.weight.grad.abs().sum() > 0


def test_only_routed_experts_compute():
    torch.manual_seed(0)
    moe = SparseMoE(4, 4, 8, MoEConfig(n_experts=16, top_k=2))
    seen = []
    for e, ex in enumerate(moe.experts):
        ex.register_forward_hook(lambda m, inp, out, e=e: seen.append((e, inp[0].shape[0])))
    moe(torch.randn(10, 4))
    assert sum(n for _, n in seen) == 20  # 10 inputs x 2 experts, no more
    assert moe.stats["load"].tolist() == [float(dict(seen).get(e, 0)) for e in range(16)]


def test_noisy_gating_only_in_training():
    torch.manual_seed(0)
    moe = SparseMoE(4, 4, None, MoEConfig(n_experts=4, noisy_gating=True, noise_std=5.0))
    x = torch.randn(64, 4)
    moe.eval()
    a, b = moe(x), moe(x)
    torch.testing.assert_close(a, b)
    moe.train()
    assert not torch.equal(moe(x), moe(x))


@pytest.mark.parametrize("kw,msg", [(dict(top_k=3), "top_k=3"), (dict(n_experts=1, top_k=2), "at most n_experts"),
                                    (dict(aux_weight=-1.0), "aux_weight")])
def test_config_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        MoEConfig(**kw)


def test_dense_mixture_uses_all_experts_and_sums_modules():
    torch.manual_seed(0)
    dense = DenseMoE(4, 3, None, 5)
    x = torch.randn(7, 4)
    y = dense(x)
    probs = dense.router(x).softmax(-1)
    ref = sum(probs[:, e:e + 1] * dense.experts[e](x) for e in range(5))
    torch.testing.assert_close(y, ref)
    box = torch.nn.ModuleList([SparseMoE(4, 4, None, MoEConfig(aux_weight=0.5)), SparseMoE(4, 4, None, MoEConfig(aux_weight=0.5))])
    for m in box: m(x)
    torch.testing.assert_close(aux_loss(box), box[0].aux_loss + box[1].aux_loss)
