"""The approximate pool at a million items on a trained model: recall of the exact top-50 and search time, by cells searched and
candidates, against the same model's random initial weights, side by side in one run.

    python benchmarks/scale/ann_trained.py [--items 1000000] [--users 100000] [--epochs 1] [--nprobes 8,16,32,64] [--candidates 200,400]
                                     [--index pq4] [--metrics ip,l2] [--nlists 1000,4000] [--batches 2] [--cache data/scale] [--out results/benchmarks/ann_trained]

`scale_train.py` times the DPO step at a million items on a model with random initial weights, whose pools' recall it reports (0.29 at 32
cells and 400 candidates) but which says little: random embeddings have no neighbourhoods for an index's cells to follow. Here the same
model (SASRec, hidden 64, `rodpo.data.synthetic_dataset(users, items)`, seed 0) is first trained by sampled softmax (100 negatives, Adam's
fused kernel, lr 1e-3, batch 256) for `--epochs` epochs; the trained weights are kept in `--cache` (default `data/scale/`, derived,
git-ignored) so that a rerun skips the training. For each model (`random` and `trained`), each of `--index` and each of `--metrics`
(`ip`: cells by inner product; `l2`: by Euclidean distance after the reduction of inner-product search to it): the item index as the
sampler builds it (`rodpo.negatives.ItemIndex`, default cells or each of `--nlists`), then for every (cells searched, candidates) the queries are searched,
the candidates scored exactly, the target and padding excluded and the best 50 kept, as `NegativeSampler.from_embeddings` builds a pool;
recall@50 is their share of the exact top-50 (the whole catalogue scored, the target and padding excluded, as `_top_allowed` does).
Queries: the model's hidden states (eval mode) at every target position of the first `--batches` training batches of 256 sequences, the
DPO step's queries. Also the cells' balance (the largest cell, and the items a query's cells hold on average): a trained table's
popular items can crowd a few cells, which the search then scans more often.

One thread. Prints one JSON line per configuration, then writes `--out`.json and .md.
"""
from __future__ import annotations
import argparse, json, os, platform, sys, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


CACHE = ROOT/"data"/"scale"  # derived data, git-ignored


def model_path(items: int, users: int, epochs: int, cache=CACHE) -> Path:
    "Where `trained_model` keeps the weights."
    return Path(cache)/f"sampled_softmax-items{items}-users{users}-epochs{epochs}.pt"


def trained_model(a, ds, log=print):
    """The stage-1 model of `a.items` items after `a.epochs` sampled-softmax epochs on `ds` (`synthetic_dataset(a.users, a.items)`), cached
    at `model_path` in `a.cache`, and the training seconds (0 when read from the cache)."""
    import torch
    from rodpo.data import TrainBatches
    from rodpo.model import SASRec, SASRecConfig
    from rodpo.objectives import Objective, stage1_loss
    from rodpo.runs import save_torch
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(n_items=a.items, hidden=64))
    path = model_path(a.items, a.users, a.epochs, a.cache)
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval(), 0.0
    objective = Objective("sampled_softmax", a.items, n_negatives=100)
    batches = TrainBatches(ds.sequences, 50, 256, seed=0)
    per = batches.n_targets / len(batches)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    model.train()
    t = time.perf_counter()
    for e in range(a.epochs):
        for i, (x, y) in enumerate(batches.epoch(e)):
            loss = stage1_loss(model, x, y, per, objective=objective)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
            if i % 50 == 0: log(f"epoch {e} step {i}/{len(batches)} loss {loss.item():.4f} ({time.perf_counter() - t:.0f} s)")
    train_s = time.perf_counter() - t
    path.parent.mkdir(parents=True, exist_ok=True)
    save_torch(model.state_dict(), path)
    return model.eval(), train_s


def measure(name, model, ds, a) -> list[dict]:
    "Recall@50 and search time of every (cells searched, candidates) on `model`'s queries."
    import torch
    from rodpo.data import TrainBatches
    from rodpo.negatives import ItemIndex, _top_allowed
    with torch.no_grad():
        table = model.item_table().float()
        hs, ts = [], []
        for i, (x, y) in enumerate(TrainBatches(ds.sequences, 50, 256, seed=0).epoch(0)):
            if i == a.batches: break
            m = y > 0
            hs.append(model(x, table)[m]); ts.append(y[m])
        h, tgt = torch.cat(hs), torch.cat(ts)
        exact = torch.cat([_top_allowed(h[i:i + 256] @ table.T, tgt[i:i + 256], None, 50)[0] for i in range(0, len(h), 256)])  # as the sampler's diagnostics rank them
    rows = []
    for kind, metric, nlist in ((k, mt, c) for k in a.index.split(",") for mt in a.metrics.split(",") for c in (map(int, a.nlists.split(",")) if a.nlists else [None])):
        t = time.perf_counter(); index = ItemIndex(table, nlist, kind=kind, metric=metric); build = time.perf_counter() - t
        sizes = np.array([index.index.invlists.list_size(c) for c in range(index.nlist)])
        for nprobe in map(int, a.nprobes.split(",")):
            index.index.nprobe = min(nprobe, index.nlist)
            cells = index.quantizer.search(index.query_vectors(h), index.index.nprobe)[1]  # the cells each query searches
            for k in map(int, a.candidates.split(",")):
                index.search(h[:64], k)  # warm
                t = time.perf_counter(); cand = index.search(h, k); search = time.perf_counter() - t
                with torch.no_grad():
                    s = torch.einsum("nd,nkd->nk", h, table.index_select(0, cand.clamp_min(0).flatten()).view(*cand.shape, -1))
                    s = s.masked_fill((cand <= 0) | (cand == tgt[:, None]), float("-inf"))
                    top = cand.gather(1, s.topk(50, dim=1).indices)
                recall = (top[:, :, None] == exact[:, None, :]).any(-1).float().mean().item()
                rows.append(dict(model=name, index=kind, metric=metric, cells=index.nlist, nprobe=index.index.nprobe, candidates=k, queries=len(h), build_s=round(build, 2),
                                 search_s=round(search, 4), ms_per_query=round(1000 * search / len(h), 4), recall_at_50=round(recall, 4),
                                 largest_cell=int(sizes.max()), mean_cell=round(float(sizes.mean()), 1), items_scanned_per_query=round(float(sizes[cells].sum(1).mean()), 1)))
                print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(out) -> str:
    s = out["settings"]
    took = f" ({out['train_s']:.0f} s)" if out["train_s"] else ""
    lines = [f"# The approximate pool at {s['items']:,} items, trained and random weights\n",
             f"`{out['command']}` (one thread, {out['machine']['cpu_count']}-core CPU machine, load average {out['machine']['load_average'][0]:.1f} at the end; "
             f"{s['users']:,} synthetic users; trained: {s['epochs']} sampled-softmax epoch(s){took}; "
             f"queries: the target positions of the first {s['batches']} batches of 256 sequences; candidates scored exactly, target and padding excluded)\n",
             "| model | index | cells | probes | candidates | queries | build s | search s | ms / query | items scanned / query | largest cell | recall@50 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['index']}{', ' + r['metric'] if r.get('metric', 'ip') != 'ip' else ''} | {r['cells']} | {r['nprobe']} | {r['candidates']} | {r['queries']:,} | {r['build_s']} | {r['search_s']} | {r['ms_per_query']} | "
              f"{r['items_scanned_per_query']:,.0f} | {r['largest_cell']:,} | {r['recall_at_50']} |" for r in out["rows"]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--epochs", type=int, default=1, help="sampled-softmax epochs of the trained model")
    p.add_argument("--nprobes", default="8,16,32,64", help="cells searched")
    p.add_argument("--candidates", default="200,400", help="items retrieved a query (K')")
    p.add_argument("--index", default="pq4", help="index kinds (SamplerConfig.index), side by side")
    p.add_argument("--metrics", default="ip", help="ip and/or l2: the index's cells by inner product, or by Euclidean distance after the reduction (SamplerConfig.index_metric), side by side")
    p.add_argument("--nlists", default="", help="k-means cells of each index (SamplerConfig.nlist); default: the sampler's (about sqrt(items))")
    p.add_argument("--batches", type=int, default=2, help="training batches of 256 sequences whose target positions are the queries")
    p.add_argument("--cache", default=str(CACHE), help="folder of the trained weights")
    p.add_argument("--out", default=str(ROOT/"results"/"benchmarks"/"ann_trained"))
    a = p.parse_args(argv)
    import torch
    sys.path.insert(0, str(ROOT))
    from rodpo.data import synthetic_dataset
    from rodpo.model import SASRec, SASRecConfig
    from rodpo.negatives import INDEXES, INDEX_METRICS
    if set(a.index.split(",")) - set(INDEXES): p.error(f"--index {a.index}: any of {', '.join(INDEXES)}")
    if set(a.metrics.split(",")) - set(INDEX_METRICS): p.error(f"--metrics {a.metrics}: any of {', '.join(INDEX_METRICS)}")
    for k in ("items", "users", "epochs", "batches"):
        if getattr(a, k) < 1: p.error(f"--{k} {getattr(a, k)}: a positive integer")
    torch.set_num_threads(1)
    ds = synthetic_dataset(a.users, a.items, seed=0)
    torch.manual_seed(0)
    random = SASRec(SASRecConfig(n_items=a.items, hidden=64)).eval()
    trained, train_s = trained_model(a, ds, log=lambda m: print(m, file=sys.stderr, flush=True))
    rows = measure("random", random, ds, a) + measure("trained", trained, ds, a)
    cmd = "python benchmarks/scale/ann_trained.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = dict(command=cmd.strip(), settings=vars(a) | dict(threads=1), train_s=round(train_s, 1), rows=rows,
               machine=dict(cpu_count=os.cpu_count(), platform=platform.platform(), load_average=os.getloadavg()))
    from rodpo.runs import save_json, atomic_write
    stem = Path(a.out); stem.parent.mkdir(parents=True, exist_ok=True)
    save_json(out, stem.with_suffix(".json"))
    atomic_write(stem.with_suffix(".md"), lambda p: Path(p).write_text(markdown(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
