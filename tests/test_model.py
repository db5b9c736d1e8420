import pytest
import torch

from rodpo.model import SASRec, SASRecConfig


@pytest.mark.parametrize("kw,msg", [
    (dict(hidden=0), "hidden=0 must be a positive integer"),
    (dict(n_heads=3), "must divide hidden"),
    (dict(dropout=-0.1), r"dropout=-0.1 must be in \[0, 1\)"),
    (dict(max_len=2.5), "max_len=2.5 must be a positive integer"),
])
def test_config_rejects_bad_values(kw, msg):
    with pytest.raises(ValueError, match=msg):
        SASRecConfig(n_items=10, **kw)


def test_unknown_config_field():
    with pytest.raises(ValueError, match="unknown fields"):
        SASRecConfig.from_dict(dict(n_items=10, hiden=64))


@pytest.mark.parametrize("norm_first", [False, True])
def test_causal_and_padding_invariant(norm_first):
    torch.manual_seed(0)
    m = SASRec(SASRecConfig(n_items=30, hidden=16, max_len=8, norm_first=norm_first)).eval()
    x = torch.tensor([[0, 0, 0, 5, 6, 7, 8]])
    h = m(x)
    assert torch.isfinite(h).all()
    assert torch.allclose(m.last_hidden(x), m.last_hidden(x[:, 3:]), atol=1e-5)
    y = x.clone(); y[0, -1] = 9
    assert torch.allclose(m(y)[:, :-1], h[:, :-1], atol=1e-6)
    with pytest.raises(ValueError, match="exceeds max_len"):
        m(torch.ones(1, 9, dtype=torch.long))


def test_training_step_reduces_loss():
    from rodpo.objectives import ce_loss
    torch.manual_seed(0)
    m = SASRec(SASRecConfig(n_items=20, hidden=16, dropout=0.0, attn_dropout=0.0, max_len=5))
    x = torch.tensor([[1, 2, 3, 4], [0, 5, 6, 7]]); y = torch.tensor([[2, 3, 4, 5], [0, 6, 7, 8]])
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = ce_loss(m, x, y).item()
    for _ in range(30):
        loss = ce_loss(m, x, y); opt.zero_grad(); loss.backward(); opt.step()
    assert loss.item() < first / 2
    assert m.items.id_emb.weight.grad[0].abs().sum() == 0  # padding row gets no gradient
