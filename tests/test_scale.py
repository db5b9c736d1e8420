"Chunked ranking and top-K over the catalogue: the same results as the full score matrix, in bounded memory."
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rodpo.data import eval_set, load_dataset
from rodpo.metrics import evaluate, target_ranks, target_ranks_chunked, topk_chunked, topk_ordered
from rodpo.model import SASRec, SASRecConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def beauty(shared_data):
    return load_dataset("beauty", shared_data)


@pytest.fixture(scope="module")
def model(beauty):
    torch.manual_seed(0)
    return SASRec(SASRecConfig.for_dataset(beauty)).eval()  # untrained: speed and rank agreement do not depend on training


@pytest.mark.order
@pytest.mark.parametrize("split,mask", [("valid", False), ("test", True)])
def test_evaluate_chunked_equals_full_on_beauty(beauty, model, split, mask):
    es = eval_set(beauty, split)
    res_full, pu_full = evaluate(model, es, 2048, mask_history=mask)
    res_chunk, pu_chunk = evaluate(model, es, 2048, mask_history=mask, item_chunk=3000)  # 12,102 columns: 5 chunks, the last partial
    assert (pu_full["rank"].to_numpy() == pu_chunk["rank"].to_numpy()).all()
    assert res_full == res_chunk
    assert pu_full["rank"].min() >= 1 and pu_full["rank"].max() <= beauty.n_items


@pytest.mark.order
def test_chunked_ranks_with_exact_ties(beauty, model):
    "Items with identical embeddings tie exactly: counted against the model on both paths."
    es = eval_set(beauty, "test")
    with torch.no_grad():
        table = model.item_table().clone()
        table[1:2001] = table[1]  # 2,000 items share one embedding
        h = model.last_hidden(es.histories[:1500], table)
    tg = es.targets[:1500].clone(); tg[:500] = torch.randint(1, 2001, (500,))  # a third of the targets inside the tied block
    full = target_ranks(model.score(h, table), tg)
    for chunk in (1000, 4096, 20000):
        assert torch.equal(target_ranks_chunked(h, table, tg, chunk=chunk), full)
    assert (full[:500] >= 2000).all()  # a target in the block ranks behind all 1,999 items it ties with


def _by_rule(scores: np.ndarray, k: int) -> np.ndarray:
    "The documented tie rule, computed independently: per row, columns sorted by (score descending, column ascending), first k."
    cols = np.arange(scores.shape[1])
    return np.stack([np.lexsort((cols, -r))[:k] for r in scores])


def _chunk_scores(h, table, chunk):
    "The scores exactly as `topk_chunked` computes them, one product per chunk of items 1..n (column j = item j + 1)."
    n = table.shape[0] - 1
    return torch.cat([h @ table[a:min(a + chunk, n + 1)].T for a in range(1, n + 1, chunk)], 1)


@pytest.mark.order
def test_topk_chunked_equals_topk_on_beauty(beauty, model):
    "Same items in the same order as the tie rule over the whole row; scores as the full product's up to the last bit."
    es = eval_set(beauty, "test")
    with torch.no_grad():
        table = model.item_table()
        h = model.last_hidden(es.histories[:2000], table)
        full_v, full_i = topk_ordered(model.score(h, table), 50)
        for chunk in (997, 5000, 100_000):
            v, i = topk_chunked(h, table, 50, chunk)
            s = _chunk_scores(h, table, chunk)
            assert torch.equal(i, torch.as_tensor(_by_rule(s.numpy(), 50)) + 1)
            assert torch.equal(v, s.gather(1, i - 1))
            assert torch.allclose(v, full_v, rtol=1e-5, atol=1e-6)
            close = (full_v[:, 1:] - full_v[:, :-1]).abs().min(1).values > 1e-5  # rows without near-ties: the order cannot depend on rounding
            assert torch.equal(i[close], full_i[close])
    assert (i > 0).all() and close.float().mean() > 0.5


@pytest.mark.order
@pytest.mark.parametrize("chunk,split", [(997, True), (100_000, False)])
def test_topk_chunked_planted_tie_on_beauty(beauty, model, chunk, split):
    "Two items given the same embedding tie exactly for every user; inside the top 50 they come out side by side, lower id first, whether a chunk boundary separates them or not."
    es = eval_set(beauty, "test")
    with torch.no_grad():
        table = model.item_table().clone()
        h = model.last_hidden(es.histories[:300], table)
        _, top = topk_ordered(model.score(h, table), 50)
        row = 0
        lo, hi = sorted(int(x) for x in top[row, 20:22])  # two neighbours in row 0's top 50
        if (lo - 1) // chunk == (hi - 1) // chunk and split:  # move the pair apart: the higher id into the next chunk
            hi = min(((lo - 1) // chunk + 1) * chunk + 1 + 5, beauty.n_items)
        table[hi] = table[lo]  # an exact tie for every user
        assert ((lo - 1) // chunk != (hi - 1) // chunk) == split
        s = _chunk_scores(h, table, chunk)
        assert torch.equal(s[:, lo - 1], s[:, hi - 1])  # the tie holds in the scores the chunks compute
        v, i = topk_chunked(h, table, 50, chunk)
        assert torch.equal(i, torch.as_tensor(_by_rule(s.numpy(), 50)) + 1)
        rows = [x.tolist() for x in i if lo in x and hi in x]  # row 0 and any other user whose top 50 holds the pair
        assert i[row].tolist() in rows and all(x.index(hi) == x.index(lo) + 1 for x in rows)  # side by side, the lower id first


def test_chunk_arguments():
    h, t = torch.randn(3, 4), torch.randn(11, 4)
    with pytest.raises(ValueError, match="k=11"):
        topk_chunked(h, t, 11)
    with pytest.raises(ValueError, match="chunk=0"):
        topk_chunked(h, t, 3, chunk=0)
    with pytest.raises(ValueError, match="chunk=0"):
        target_ranks_chunked(h, t, torch.tensor([1, 2, 3]), chunk=0)


def test_scale_benchmark_runs(tmp_path):
    "The benchmark script end to end on small catalogues: both paths agree, files written."
    out = tmp_path / "scale"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale" / "scale.py"), "--sizes", "2000,9000", "--users", "700",
                        "--batch", "256", "--chunk", "1500", "--full_users_above", "5000", "--full_users", "300", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["agreement"]["2000-eval"] == dict(users=700, differing=0, max_rank_difference=0)
    assert res["agreement"]["9000-eval"]["users"] == 300 and res["agreement"]["9000-eval"]["max_rank_difference"] <= 1
    assert all(g["other_items"] == 0 for k, g in res["agreement"].items() if k.endswith("topk")) and len(res["rows"]) == 8
    assert {(x["n_items"], x["path"], x["task"]) for x in res["rows"]} >= {(9000, "chunked", "eval"), (9000, "full", "topk")}
    assert [x["users"] for x in res["rows"] if x["n_items"] == 9000 and x["path"] == "full"] == [300, 300]
    assert out.with_suffix(".html").stat().st_size > 1000 and "| 9,000 | chunked | eval |" in out.with_suffix(".md").read_text()


# Synthetic catalogues (`rodpo.data.synthetic_dataset`) and training at scale (benchmarks/scale/scale_train.py)
from rodpo.data import synthetic_dataset, UnknownDatasetError
from rodpo.metrics import metrics_from_ranks


def test_synthetic_popularity_follows_zipf_and_transitions_are_fixed():
    ds = synthetic_dataset(20_000, 10, follow=0.0, zipf=1.0, seed=3)
    first = np.array([s[0] for s in ds.sequences])
    share = np.bincount(first, minlength=11)[1:] / len(first)
    # p(rank r) = (1/r) / H_10 with H_10 = 2.928968...: the most popular item draws 34.1% of the first items, the least 3.4%
    assert abs(share.max() - 1 / 2.9289683) < 0.01 and abs(share.min() - 0.1 / 2.9289683) < 0.005
    chain = synthetic_dataset(500, 1000, follow=1.0, seed=3)  # every item is followed by its fixed successor
    nxt = {}
    for s in chain.sequences:
        for a, b in zip(s[:-1], s[1:]): assert nxt.setdefault(a, b) == b
    lens = np.array([len(s) for s in ds.sequences])
    assert lens.min() >= 3 and lens.max() <= 50 and abs(lens.mean() - 8) < 0.2
    assert all(1 <= s.min() and s.max() <= 10 for s in ds.sequences)


def test_synthetic_by_name_and_seed():
    a, b = load_dataset("synthetic:300x5000"), synthetic_dataset(300, 5000)
    assert a.name == "synthetic:300x5000" and all((x == y).all() for x, y in zip(a.sequences, b.sequences))
    c = load_dataset("synthetic:300x5000:7")
    assert c.name == "synthetic:300x5000:7" and any(len(x) != len(y) or (x != y).any() for x, y in zip(a.sequences, c.sequences))
    with pytest.raises(UnknownDatasetError, match="synthetic:USERSxITEMS"): load_dataset("synthetic:300by5000")
    with pytest.raises(ValueError, match="follow=1.5"): synthetic_dataset(10, 10, follow=1.5)


def test_sampled_softmax_learns_transitions_end_to_end(tmp_path):
    "A small sampled-softmax model trained by `fit` learns the synthetic successors: validation NDCG@10 over twice a popularity ranking's."
    from rodpo.train import TrainConfig, fit
    ds = synthetic_dataset(3000, 1000, seed=0)
    cfg = TrainConfig(dataset=ds.name, loss="sampled_softmax", n_negatives=100, max_epochs=8, lr=3e-3, batch_size=128, patience=8, progress=False)
    r = fit(ds, cfg, SASRecConfig(n_items=ds.n_items, hidden=32, dropout=0.1), tmp_path/"run", log=lambda *a: None)
    assert r["loss"] == "sampled_softmax" and (tmp_path/"run"/"metrics.json").exists()
    # popularity by training counts (each sequence but its last two items), ties counted against it, as `evaluate` counts them
    counts = np.bincount(np.concatenate([s[:-2] for s in ds.sequences]), minlength=ds.n_items + 1).astype(float)
    counts[0] = -1
    target = np.array([s[-2] for s in ds.sequences])
    pop = metrics_from_ranks((counts[None, :] >= counts[target][:, None]).sum(1), (10,))["ndcg@10"].mean()
    assert 0.1 < pop < 0.2  # the popular head alone
    assert r["valid"]["ndcg@10"] > 2 * pop


def test_scale_train_benchmark_runs_every_task(tmp_path):
    out = tmp_path/"st"
    r = subprocess.run([sys.executable, str(ROOT/"benchmarks"/"scale"/"scale_train.py"), "--sizes", "3000", "--users", "2000", "--steps", "2",
                        "--eval_users", "200", "--thp", "0,1", "--rows", "dense,sparse", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.with_suffix(".json").read_text())
    assert sorted(x["thp"] for x in res["rows"]).count(True) == len(res["rows"]) // 2  # every task without and with huge pages
    assert [x["rows"] for x in res["rows"]].count("dense") == len(res["rows"]) // 2  # and with the table's gradient dense and sparse
    dense, rows = ({x["task"]: x for x in res["rows"] if not x["thp"] and x["rows"] == m and x["mmap_threshold"] == 0} for m in ("dense", "sparse"))
    assert dense["sampled_softmax"]["valid_ndcg@10_after"] == rows["sampled_softmax"]["valid_ndcg@10_after"]  # a whole epoch, the same model
    assert set(rows) == {"ce", "sampled_softmax", "dpo_topk_stochastic", "dpo_topk_stochastic_ann"}
    ann = rows["dpo_topk_stochastic_ann"]
    assert ann["index_build_s"] > 0 and 0 <= ann["pool_recall"] <= 1 and ann["recall_positions"] > 0 and ann["nlist"] == round(3000 ** 0.5)
    assert set(res["epoch_ratio_to_sampled_softmax"]["3000"]) == {f"{t} (batch 128{h}{d})" for t in ("dpo_topk_stochastic", "dpo_topk_stochastic_ann") for h in ("", ", THP") for d in ("", ", dense rows")}
    assert rows["sampled_softmax"]["epoch"] == "measured" and rows["sampled_softmax"]["steps_timed"] == rows["sampled_softmax"]["steps_per_epoch"]
    assert rows["ce"]["epoch"] == "extrapolated" and rows["ce"]["steps_timed"] == 2
    assert rows["sampled_softmax"]["valid_ndcg@10_after"] > rows["sampled_softmax"]["valid_ndcg@10_before"]
    md = out.with_suffix(".md").read_text()
    assert "| 3,000 | dpo_topk_stochastic | glibc default | 128 |" in md and "| 3,000 | sampled_softmax | mmap >= 65,536 B | 256 |" in md and "| 3,000 | dpo_topk_stochastic_ann | glibc default, THP | 128 |" in md
    assert "| 3,000 | sampled_softmax | glibc default, THP, dense rows | 256 |" in md


def test_scale_train_benchmark_optimiser_and_index_variants(tmp_path):
    "--fused 0,1 runs every task with Adam as by default and with its fused kernel; --index flat,sq8,pq4 runs the approximate-pool task with each index, at the --candidates, --nprobe and --rank_every given; each DPO row has its ratio to the sampled-softmax epoch of its own optimiser."
    out = tmp_path/"st"
    r = subprocess.run([sys.executable, str(ROOT/"benchmarks"/"scale"/"scale_train.py"), "--sizes", "3000", "--users", "2000", "--steps", "2", "--full", "",
                        "--tasks", "sampled_softmax,dpo_topk_stochastic_ann", "--mmap_thresholds", "0", "--fused", "0,1", "--index", "flat,sq8,pq4",
                        "--candidates", "100", "--nprobe", "8", "--rank_every", "2", "--repeats", "2", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.with_suffix(".json").read_text())
    got = sorted((x["repeat"], x["task"], x["fused"], x.get("index")) for x in res["rows"])
    assert got == sorted((k, t, f, i) for k in (0, 1) for f in (False, True) for t, i in (("sampled_softmax", None), ("dpo_topk_stochastic_ann", "flat"), ("dpo_topk_stochastic_ann", "sq8"), ("dpo_topk_stochastic_ann", "pq4")))
    for t, each in res["epoch_ratio_per_repeat"]["3000"].items():  # each repeat's ratio to its own sampled-softmax epoch; the table gives their median
        assert len(each) == 2 and abs(res["epoch_ratio_to_sampled_softmax"]["3000"][t] - sum(each) / 2) <= 0.01
    assert set(res["epoch_ratio_to_sampled_softmax"]["3000"]) == {f"dpo_topk_stochastic_ann (batch 128{f}{i})" for f in ("", ", fused Adam") for i in ("", ", sq8", ", pq4")}
    ann = [x for x in res["rows"] if x["task"] == "dpo_topk_stochastic_ann"]
    assert all((x["candidates"], x["nprobe"], x["rank_every"]) == (100, 8, 2) and x["recall_positions"] > 0 for x in ann)
    md = out.with_suffix(".md").read_text()
    assert "| 1 | 3,000 | dpo_topk_stochastic_ann | glibc default, fused Adam, sq8 | 128 |" in md and "| 3,000 | 128 | pq4, fused Adam | 55 | 8 | 100 |" in md


def test_ann_trained_benchmark_trains_once_and_compares_weights(tmp_path):
    """benchmarks/scale/ann_trained.py: trains the stage-1 model once (a rerun reads it from --cache and measures the same recalls), then
    every (index, metric, cells searched, candidates) on random and trained weights; every cell searched and every item retrieved and scored
    exactly is the exact top-50, by either metric; --init_epochs in scale_train.py starts the tasks from those weights, --index_metric runs each metric."""
    run = lambda out: subprocess.run([sys.executable, str(ROOT/"benchmarks"/"scale"/"ann_trained.py"), "--items", "3000", "--users", "2000", "--index", "flat,pq4x1",
                                      "--metrics", "ip,l2", "--nprobes", "4,55", "--candidates", "60,3000", "--batches", "1", "--cache", str(tmp_path/"cache"), "--out", str(out)],
                                     capture_output=True, text=True)
    r = run(tmp_path/"a")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path/"a.json").read_text())
    assert res["train_s"] > 0 and (tmp_path/"cache"/"sampled_softmax-items3000-users2000-epochs1.pt").exists()
    assert sorted((x["model"], x["index"], x["metric"], x["nprobe"], x["candidates"]) for x in res["rows"]) == \
        sorted((m, i, mt, p, k) for m in ("random", "trained") for i in ("flat", "pq4x1") for mt in ("ip", "l2") for p in (4, 55) for k in (60, 3000))
    for x in res["rows"]:
        assert x["cells"] == 55 and 0 <= x["recall_at_50"] <= 1 and x["queries"] > 100
        if x["nprobe"] == 55: assert x["items_scanned_per_query"] == 3000
        if x["nprobe"] == 55 and x["candidates"] == 3000: assert x["recall_at_50"] >= 0.995  # everything scored exactly (up to float rounding at the 50th place)
    again = run(tmp_path/"b")
    assert again.returncode == 0, again.stderr[-2000:]
    res2 = json.loads((tmp_path/"b.json").read_text())
    assert res2["train_s"] == 0 and [x["recall_at_50"] for x in res2["rows"]] == [x["recall_at_50"] for x in res["rows"]]  # the cached model, the same numbers
    md = (tmp_path/"a.md").read_text()
    assert "| trained | pq4x1 | 55 | 4 | 60 |" in md and "| trained | pq4x1, l2 | 55 | 4 | 60 |" in md
    out = tmp_path/"st"
    r = subprocess.run([sys.executable, str(ROOT/"benchmarks"/"scale"/"scale_train.py"), "--sizes", "3000", "--users", "2000", "--steps", "2", "--full", "",
                        "--tasks", "sampled_softmax,dpo_topk_stochastic_ann", "--mmap_thresholds", "0", "--index", "pq4x1", "--index_metric", "ip,l2", "--candidates", "100", "--nprobe", "8",
                        "--init_epochs", "1", "--cache", str(tmp_path/"cache"), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    st = json.loads(out.with_suffix(".json").read_text())
    assert st["settings"]["init_epochs"] == 1 and {x["task"] for x in st["rows"]} == {"sampled_softmax", "dpo_topk_stochastic_ann"}
    assert sorted(x["index_metric"] for x in st["rows"] if "index_metric" in x) == ["ip", "l2"]
    assert set(st["epoch_ratio_to_sampled_softmax"]["3000"]) == {"dpo_topk_stochastic_ann (batch 128, pq4x1)", "dpo_topk_stochastic_ann (batch 128, pq4x1, l2)"}
    assert "from the model trained 1 sampled-softmax epoch(s)" in out.with_suffix(".md").read_text()
    assert "epoch 0 step" not in r.stderr  # the cached model: nothing trained again


def test_step_parts_benchmark_times_both_steps_in_one_process(tmp_path):
    "benchmarks/scale/step_parts.py: a stage-1 step and a DPO step in turn, each part timed, for default and fused Adam; the epoch ratio adds the index builds."
    out = tmp_path/"sp"
    r = subprocess.run([sys.executable, str(ROOT/"benchmarks"/"scale"/"step_parts.py"), "--items", "3000", "--users", "2000", "--steps", "2", "--candidates", "100",
                        "--nprobe", "8", "--rank_every", "2", "--index_refresh", "3", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.with_suffix(".json").read_text())
    assert [x["fused"] for x in res["rows"]] == [False, True]
    for x in res["rows"]:
        ss, dpo = x["mean_s"]["sampled_softmax"], x["mean_s"]["dpo"]
        assert x["steps_timed"] == 2 and x["builds_per_epoch"] == -(-x["steps_per_epoch"] // 3)
        assert 0 < dpo["search"] <= dpo["sampler"] <= dpo["forward"] and "sampler" not in ss
        for m in (ss, dpo): assert abs(m["forward"] + m["backward"] + m["optimiser"] - m["step"]) < 2e-3  # the parts make up the step
        want = (dpo["step"] * x["steps_per_epoch"] + x["index_build_s"] * x["builds_per_epoch"]) / (ss["step"] * x["steps_per_epoch"])
        assert abs(x["epoch_ratio"] - want) <= 0.005  # recomputable from the recorded numbers
    assert "| fused | dpo |" in out.with_suffix(".md").read_text()
    bad = subprocess.run([sys.executable, str(ROOT/"benchmarks"/"scale"/"step_parts.py"), "--index", "hnsw"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--index hnsw: one of flat, sq8, pq4" in bad.stderr


def test_ann_indexes_benchmark_measures_each_index_kind(tmp_path):
    "benchmarks/scale/ann_indexes.py: every index kind at every (cells searched, candidates), the exactly rescored pool's recall, and the gathers."
    out = tmp_path/"ai"
    r = subprocess.run([sys.executable, str(ROOT/"benchmarks"/"scale"/"ann_indexes.py"), "--items", "4000", "--queries", "70", "--nprobes", "4,63",
                        "--candidates", "50,4000", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.with_suffix(".json").read_text())
    assert sorted((x["index"], x["nprobe"], x["candidates"]) for x in res["rows"]) == sorted((i, p, k) for i in ("flat", "sq8", "pq4", "pq4x1") for p in (4, 63) for k in (50, 4000))
    for x in res["rows"]:
        assert x["cells"] == 63 and 0 <= x["recall_at_50"] <= 1
        if x["nprobe"] == 63 and x["candidates"] == 4000: assert x["recall_at_50"] >= 0.995  # every item retrieved and scored exactly: the exact top-50 (up to float rounding at the 50th place)
    assert all(res["gather"][k] > 0 for k in ("index_s", "index_select_s", "chunked_index_select_and_scores_s"))
    assert "| pq4 | 63 | 63 | 4000 |" in out.with_suffix(".md").read_text()


def _ann_run(folder: Path, ds, **sampler) -> Path:
    "A pool='ann' DPO run folder as shared_queries.py reads it: best.pt (an untrained Beauty policy), config.json, the experiment's dataset."
    from dataclasses import asdict
    from rodpo.negatives import SamplerConfig
    from rodpo.runs import save_json, save_torch
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(n_items=ds.n_items, hidden=64))
    run = folder/"sweep-topk_stochastic-poolann-seed0"
    run.mkdir(parents=True)
    save_torch(dict(model=model.state_dict(), model_config=model.cfg.to_dict()), run/"best.pt")
    save_json(dict(dpo=dict(sampler=asdict(SamplerConfig(pool="ann", **sampler)))), run/"config.json")
    save_json(dict(dataset="beauty"), folder/"experiment.json")
    return run


def test_shared_queries_benchmark_recalls_everything_when_nothing_is_approximate(tmp_path, beauty):
    """benchmarks/scale/shared_queries.py on Beauty: with a flat index searched in every cell, a position's own 60 candidates hold its exact
    top-50, searched per position or shared with its sequence; with a coarse index, sharing every position's candidates within the sequence
    never recalls less than the position's own, and one query a sequence is counted as such."""
    exact = _ann_run(tmp_path/"exact", beauty, index="flat", nlist=4, nprobe=4)
    coarse = _ann_run(tmp_path/"coarse", beauty, index="pq4", nprobe=2)
    out = tmp_path/"sq"
    r = subprocess.run([sys.executable, str(ROOT/"benchmarks"/"scale"/"shared_queries.py"), str(exact), str(coarse), "--strides", "1,0",
                        "--candidates", "60", "--batches", "1", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.with_suffix(".json").read_text())["results"]
    for run in res:
        run["rows"] = {(x["scheme"], x["stride"]): x for x in run["rows"]}
        assert len(run["rows"]) == 3 and run["rows"][("shared", 0)]["queries"] == 256 and run["rows"][("shared", 1)]["queries"] == run["positions"]
        assert run["rows"][("per position", None)]["scored_per_position"] == run["rows"][("shared", 0)]["scored_per_position"] == 60
        assert run["rows"][("shared", 1)]["recall"] >= run["rows"][("per position", None)]["recall"]
    assert res[0]["cells"] == res[0]["nprobe"] == 4
    assert res[0]["rows"][("per position", None)]["recall"] >= 0.9999  # every cell searched exactly (float rounding may swap a tie at the 50th place)
    assert res[1]["rows"][("per position", None)]["recall"] < 0.99  # two of the cells, coarse codes: approximate
    assert "| shared | 0 | 60 | 256 |" in out.with_suffix(".md").read_text()
    bad = subprocess.run([sys.executable, str(ROOT/"benchmarks"/"scale"/"shared_queries.py"), str(tmp_path/"none")], capture_output=True, text=True)
    assert bad.returncode != 0 and "no best.pt" in bad.stderr


def test_recall_by_index_age_groups_the_measured_steps():
    "benchmarks/scale/ann_refresh.py's grouping (from ann_pool_quality.py): the measured steps' pool recall by the index's age, by hand; unmeasured steps left out."
    import importlib.util
    spec = importlib.util.spec_from_file_location("ann_refresh", ROOT/"benchmarks"/"scale"/"ann_refresh.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    diag = [dict(index_age=0, pool_recall=0.5), dict(index_age=5), dict(index_age=9, pool_recall=0.7), dict(index_age=10, pool_recall=0.9),
            dict(index_age=150, pool_recall=0.8), dict(index_age=999, pool_recall=0.25)]
    assert mod.recall_by_age(diag, mod.AGES) == {"0-9": dict(mean=0.6, min=0.5, steps=2), "10-49": dict(mean=0.9, min=0.9, steps=1),
                                                 "100-199": dict(mean=0.8, min=0.8, steps=1), "400+": dict(mean=0.25, min=0.25, steps=1)}
