"""Mixed precision (bfloat16 autocast of the encoders): runs on CPU here, follows the float32 run closely, and is refused as a non-boolean."""
import json

import numpy as np
import pytest
import torch

from rodpo.data import load_dataset, SeqDataset
from rodpo.dpo import DPOConfig, fit_dpo
from rodpo.model import SASRec, SASRecConfig
from rodpo.negatives import SamplerConfig
from rodpo.distributed import autocast
from rodpo.objectives import ce_loss
from rodpo.train import TrainConfig, fit


def quiet(*a): pass


@pytest.fixture(scope="module")
def small(shared_data):
    b = load_dataset("beauty", shared_data)
    return SeqDataset("beauty[:1500]", b.sequences[:1500], b.n_items)


@pytest.fixture(scope="module")
def stage1(small, tmp_path_factory):
    d = tmp_path_factory.mktemp("amp")
    mcfg = SASRecConfig(n_items=small.n_items, hidden=32)
    runs = {amp: fit(small, TrainConfig(max_epochs=2, progress=False, device="cpu", amp=amp), mcfg, d / f"amp{amp}", log=quiet) for amp in (False, True)}
    return d, runs


def test_amp_is_a_boolean():
    with pytest.raises(ValueError, match="amp=1 must be True or False"): TrainConfig(amp=1)
    with pytest.raises(ValueError, match="amp='yes' must be True or False"): DPOConfig("x", amp="yes")


def test_loss_under_autocast_is_float32_and_close():
    torch.manual_seed(0)
    m = SASRec(SASRecConfig(n_items=300, hidden=32))
    x, y = torch.randint(1, 301, (16, 20)), torch.randint(1, 301, (16, 20))
    with autocast(torch.device("cpu"), True): l16 = ce_loss(m, x, y)
    l32 = ce_loss(m, x, y)
    assert l16.dtype == torch.float32
    assert 0 < abs(l16.item() - l32.item()) < 0.01 * l32.item()  # bfloat16 was used, and changed little
    l16.backward()
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in m.parameters())


def test_stage1_with_amp_follows_float32(stage1):
    d, runs = stage1
    h32, h16 = (json.loads((d / f"amp{a}/history.json").read_text()) for a in (False, True))
    np.testing.assert_allclose([h["loss"] for h in h16], [h["loss"] for h in h32], rtol=0.02)
    assert [h["loss"] for h in h16] != [h["loss"] for h in h32]  # the flag took effect
    assert json.loads((d / "ampTrue/config.json").read_text())["train"]["amp"] is True
    assert runs[True]["test"]["ndcg@10"] > 0


def test_dpo_with_amp_follows_float32(small, stage1):
    d, _ = stage1
    diag = {}
    for amp in (False, True):
        cfg = DPOConfig(str(d / "ampFalse"), sampler=SamplerConfig("hard", m=1), lr=1e-3, max_epochs=1, eval_every=5, patience=100, progress=False, device="cpu", amp=amp)
        fit_dpo(small, cfg, d / f"dpo{amp}", log=quiet)
        diag[amp] = json.loads((d / f"dpo{amp}/diagnostics.json").read_text())
    assert json.loads((d / "dpoTrue/config.json").read_text())["dpo"]["amp"] is True
    assert len(diag[True]) == len(diag[False]) > 10
    np.testing.assert_allclose([s["loss"] for s in diag[True]], [s["loss"] for s in diag[False]], atol=0.02)
    # the flag took effect (the deterministic loss starts at log 2 in both; the margins show bfloat16's rounding)
    assert [(s["loss"], s["reward_margin"]) for s in diag[True]] != [(s["loss"], s["reward_margin"]) for s in diag[False]]
