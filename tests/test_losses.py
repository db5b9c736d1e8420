import math

import pytest
import torch

from rodpo.losses import FORMS, OBJECTIVES, dpo_loss, negative_weights, reward_margin


def test_hand_computed_values():
    # policy raises the target by 1 and lowers the negative by 1 relative to the reference: margin 2
    pp, pn, rp, rn = torch.tensor([1.0]), torch.tensor([[-1.0]]), torch.tensor([0.0]), torch.tensor([[0.0]])
    assert dpo_loss(pp, pn, rp, rn, beta=1.0).item() == pytest.approx(math.log(1 + math.exp(-2)))
    assert dpo_loss(pp, pn, rp, rn, beta=0.5).item() == pytest.approx(math.log(1 + math.exp(-1)))
    # two negatives with margins 2 and 0: pairwise averages, S-DPO sums inside the log
    pn2, rn2 = torch.tensor([[-1.0, 1.0]]), torch.zeros(1, 2)
    assert dpo_loss(pp, pn2, rp, rn2, 1.0).item() == pytest.approx((math.log(1 + math.exp(-2)) + math.log(2)) / 2)
    assert dpo_loss(pp, pn2, rp, rn2, 1.0, "sdpo").item() == pytest.approx(math.log(1 + math.exp(-2) + 1))
    assert reward_margin(pp, pn2, rp, rn2).item() == pytest.approx(1.0)


def test_only_relative_logits_matter():
    # adding a constant to all of a model's logits (a change of the softmax normaliser) changes nothing
    g = torch.Generator().manual_seed(0)
    pp, rp, pn, rn = torch.randn(6, generator=g), torch.randn(6, generator=g), torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    for form in [f for f in FORMS if f != "simpo"]:  # simpo is reference-free: the policy's own logit gaps, not a change of normaliser
        lp = dict(policy_logp=-torch.rand(6, generator=g), ref_logp=-torch.rand(6, generator=g))  # dpop's: log-probabilities, normaliser-free already
        a = dpo_loss(pp, pn, rp, rn, 0.3, form, **lp)
        b = dpo_loss(pp + 5.0, pn + 5.0, rp - 2.0, rn - 2.0, 0.3, form, **lp)
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("form", FORMS)
def test_gradients_match_float64_autograd(form):
    g = torch.Generator().manual_seed(1)
    pp = torch.randn(5, dtype=torch.float64, generator=g, requires_grad=True)
    pn = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    rp, rn = torch.randn(5, dtype=torch.float64, generator=g), torch.randn(5, 3, dtype=torch.float64, generator=g)
    lp = dict(policy_logp=-torch.rand(5, dtype=torch.float64, generator=g), ref_logp=-torch.rand(5, dtype=torch.float64, generator=g))  # read by dpop only
    dpo_loss(pp, pn, rp, rn, 0.7, form, **lp).sum().backward()
    torch.testing.assert_close(pn.grad.abs(), negative_weights(pp.detach(), pn.detach(), rp, rn, 0.7, form, **lp))
    # the target is pushed up by exactly what the negatives are pushed down
    torch.testing.assert_close(pp.grad, -pn.grad.sum(1))
    if form != "ipo":  # ipo regresses the margin to 1/(2 beta): past it the target is pushed back down
        assert (pp.grad <= 0).all()  # never pushed down (hinge: zero where the margin is already large)


@pytest.mark.parametrize("form", [f for f in FORMS if f != "ipo"])  # ipo squares the margin: finite below 1e19, tested in notebook 08
def test_finite_for_extreme_logits(form):
    big = torch.tensor([1e35, -1e35, 0.0])
    pn = torch.tensor([[-1e35, 1e35], [1e35, -1e35], [0.0, 1e-30]])
    x = big.clone().requires_grad_()
    out = dpo_loss(x, pn, torch.zeros(3), torch.zeros(3, 2), 50.0, form, policy_logp=torch.tensor([-1e3, 0.0, -30.0]), ref_logp=torch.zeros(3))  # dpop: log-probabilities, far from float32's range
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def test_bad_arguments():
    z = torch.zeros(1)
    with pytest.raises(ValueError, match="form='dpo'"):
        dpo_loss(z, z[:, None], z, z[:, None], form="dpo")
    with pytest.raises(ValueError, match="beta=0"):
        dpo_loss(z, z[:, None], z, z[:, None], beta=0)
