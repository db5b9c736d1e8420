import numpy as np
import pytest
import torch

from rodpo.data import load_dataset
from rodpo.items import ItemConfig, ItemEncoder, attribute_matrix, FUSIONS
from rodpo.model import SASRec, SASRecConfig
from rodpo.runs import load_checkpoint, save_torch


@pytest.fixture(scope="module")
def sci(shared_data):
    return load_dataset("scientific", shared_data)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_fusions_shapes_and_padding(sci, fusion):
    torch.manual_seed(0)
    enc = ItemEncoder(ItemConfig(("id", "text", "image"), fusion), sci.n_items, 32, sci.features)
    t = enc()
    assert t.shape == (sci.n_items + 1, 32) and torch.all(t[0] == 0)
    t.sum().backward()
    assert enc.text_proj.weight.grad.abs().sum() > 0 and enc.image_proj.weight.grad.abs().sum() > 0


def test_feature_rows_follow_item_ids(sci):
    # text-only sum fusion without dropout is a linear map of the features: item i's row uses feature row i
    enc = ItemEncoder(ItemConfig(("text",), "sum", feature_dropout=0.0), sci.n_items, 16, sci.features).eval()
    enc.norm = torch.nn.Identity()
    t = enc()
    W, b = enc.text_proj.weight, enc.text_proj.bias
    f = torch.as_tensor(sci.features["text"])
    torch.testing.assert_close(t[7], f[7] @ W.T + b)
    torch.testing.assert_close(t[1585], f[1585] @ W.T + b)


def test_attribute_mean(shared_data):
    b = load_dataset("beauty", shared_data)
    A = attribute_matrix(b.attributes)
    enc = ItemEncoder(ItemConfig(("attributes",)), b.n_items, 8, attributes=A, n_attributes=b.n_attributes)
    enc.norm = torch.nn.Identity()
    E = enc.attr_emb.weight
    torch.testing.assert_close(enc()[4], E[[1, 2, 3]].mean(0))  # item 4 has attributes 1, 2, 3


def test_missing_modality_errors(sci):
    with pytest.raises(ValueError, match="no image features"):
        ItemEncoder(ItemConfig(("id", "image")), sci.n_items, 8, {"text": sci.features["text"]})
    with pytest.raises(ValueError, match="expected n_items\\+1"):
        ItemEncoder(ItemConfig(("text",)), sci.n_items, 8, {"text": np.zeros((10, 4), np.float32)})
    with pytest.raises(ValueError, match="no item attributes"):
        ItemEncoder(ItemConfig(("attributes",)), sci.n_items, 8)


def test_checkpoint_round_trip_keeps_features(sci, tmp_path):
    torch.manual_seed(0)
    m = SASRec.for_dataset(sci, modalities=("id", "text", "image"), fusion="sparse_moe", moe_ffn=True).eval()
    save_torch(dict(model=m.state_dict(), model_config=m.cfg.to_dict()), tmp_path / "best.pt")
    m2 = load_checkpoint(tmp_path / "best.pt").eval()
    torch.testing.assert_close(m2.item_table(), m.item_table())
    x = torch.tensor([[0, 5, 6, 7]])
    torch.testing.assert_close(m2(x), m(x))


def test_moe_ffn_keeps_active_compute(sci):
    # per position, a sparse-MoE block runs top_k experts of the dense block's size, whatever n_experts
    for E in (4, 16):
        m = SASRec.for_dataset(sci, moe_ffn=True, n_experts=E, top_k=1)
        calls = []
        for blk in m.blocks:
            for ex in blk.ffn.experts:
                ex.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
        x = torch.tensor([[0, 0, 1, 2, 3], [4, 5, 6, 7, 8]])
        m(x)
        assert sum(calls) == 8 * len(m.blocks)  # 8 real positions per block, padding not routed


@pytest.mark.parametrize("mods,fusion", [(("id", "image"), "sum"), (("id", "image"), "sparse_moe"), (("id", "text", "image"), "dense_moe")])
def test_fresh_multimodal_model_starts_near_uniform(sci, mods, fusion):
    # a unit-scale item table makes the first logits tens of nats apart; training then stalled (loss above uniform)
    from rodpo.data import TrainBatches
    from rodpo.objectives import ce_loss
    torch.manual_seed(0)
    m = SASRec.for_dataset(sci, modalities=mods, fusion=fusion)
    x, y = next(iter(TrainBatches(sci.sequences, 50, 256).epoch(0)))
    assert abs(ce_loss(m, x, y).item() - np.log(sci.n_items)) < 0.2
