"""One index search per sequence instead of per position: the approximate pool's recall of the exact top-K when a sequence's positions
share the candidates that a few of its positions' queries retrieve, against the per-position search the sampler does.

    python benchmarks/scale/shared_queries.py results/ann_pool/beauty-pq4/sweep-topk_stochastic-poolann-seed0 [RUN ...]
                                              [--strides 1,2,4,0] [--candidates 400,1000] [--batches 4] [--out results/benchmarks/shared_queries]

Each RUN is a trained `pool='ann'` DPO run (its `best.pt`, which stays on the machine that trained it, and `config.json`; the dataset is the
one in its experiment folder's `experiment.json`). Its policy's hidden states at the training positions of the first `--batches` batches
of epoch 0 (`TrainBatches`, batch 256, seed 0) are the queries; the index is the sampler's (`rodpo.negatives.ItemIndex` with the run's
index kind, cells and `nprobe`), built from the policy's item table. For each number of `--candidates` C:

- per position (what `NegativeSampler.from_embeddings` does): each position retrieves C items; recall and search time from the sampler itself;
- shared, at each of `--strides` s: the last target position of each sequence and every s-th one before it query the index (0: the last
  one only), and every position of the sequence scores the union of what they retrieved exactly and takes its best K allowed items.

Recall is the share of each position's exact top-K (over the whole catalogue, the sampler's exclusions) in its pool. Search time is the
faiss search of the queries, one thread. Writes `--out`.json and .md and prints the JSON.
"""
from __future__ import annotations
import argparse, json, os, platform, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def measure(run: Path, strides, candidates, batches: int) -> dict:
    import torch
    from rodpo.data import load_dataset, TrainBatches
    from rodpo.dpo import _histories
    from rodpo.metrics import topk_ordered
    from rodpo.negatives import SamplerConfig, NegativeSampler, ItemIndex, _top_allowed
    from rodpo.runs import load_checkpoint
    if not (run/"best.pt").exists(): raise SystemExit(f"{run}: no best.pt (checkpoints stay on the machine that trained the run); train it first")
    cfg = json.loads((run/"config.json").read_text())["dpo"]["sampler"]
    if cfg["pool"] != "ann": raise SystemExit(f"{run}: a pool={cfg['pool']!r} run; this compares ways of querying the approximate pool's index")
    name = json.loads((run.parent/"experiment.json").read_text())["dataset"]
    ds = load_dataset(name)
    policy = load_checkpoint(run/"best.pt", "cpu").eval()
    K = cfg["K"]
    with torch.no_grad():
        table = policy.item_table().float()
        hs, ys, hists, seq, col, n = [], [], [], [], [], 0
        for b, (x, y) in enumerate(TrainBatches(ds.sequences, policy.cfg.max_len, 256, 0).epoch(0)):
            if b == batches: break
            m = y > 0
            hs.append(policy(x, table)[m]); ys.append(y[m]); hists.append(_histories(x, m))
            r, c = m.nonzero(as_tuple=True)
            seq.append(r + n); col.append(c); n += len(x)
        h, y, seq, col = torch.cat(hs), torch.cat(ys), torch.cat(seq), torch.cat(col)
        width = max(v.shape[1] for v in hists)
        hist = torch.cat([torch.nn.functional.pad(v, (0, width - v.shape[1])) for v in hists]) if cfg["exclude_history"] else None
        z = h @ table.T
        z[:, 0] = float("-inf")
        exact = _top_allowed(z, y, hist, K)[0]
        del z
        recall = lambda pool: round(float((pool[:, :, None] == exact[:, None, :]).any(-1).float().mean()), 4)
        index = ItemIndex(table, cfg["nlist"], cfg["nprobe"], seed=0, kind=cfg["index"])
        def timed_search(q, C):
            t = time.perf_counter()
            ids = index.search(q, C)
            return ids, round(time.perf_counter() - t, 3)
        rows = []
        for C in candidates:
            sc = SamplerConfig("topk_stochastic", K=K, pool="ann", candidates=C, nlist=cfg["nlist"], nprobe=cfg["nprobe"], index=cfg["index"],
                               exclude_history=cfg["exclude_history"], index_refresh=1, rank_rows=len(h))
            sampler = NegativeSampler(sc, ds.n_items)
            rec = sampler.from_embeddings(h, table, y, hist, torch.Generator().manual_seed(0), step=0, with_ranks=True)[2]
            rows.append(dict(scheme="per position", stride=None, candidates=C, queries=len(h), search_s=timed_search(h, C)[1],
                             scored_per_position=C, recall=round(float(rec.mean()), 4)))
        last = torch.zeros(n, dtype=torch.long).scatter_reduce(0, seq, col, "amax")  # each sequence's last target column
        for s in strides:
            q = (col == last[seq]) if s == 0 else ((last[seq] - col) % s == 0)
            for C in candidates:
                ids, secs = timed_search(h[q], C)
                pool, scored = torch.empty_like(exact), 0
                for i in seq.unique():
                    p = (seq == i).nonzero()[:, 0]
                    u = ids[seq[q] == i].flatten().unique()
                    u = u[u > 0]  # sorted by id: topk_ordered's lower column is the lower id, as in the sampler
                    sc = h[p] @ table[u].T
                    out = (u[None] == y[p, None]) if hist is None else (u[None] == y[p, None]) | (u[None, :, None] == hist[p][:, None, :]).any(-1)
                    pool[p] = u[topk_ordered(sc.masked_fill(out, float("-inf")), K)[1]] if len(u) >= K else exact[p]  # too few retrieved: a catalogue pass, as the sampler does
                    scored += len(p) * len(u)
                rows.append(dict(scheme="shared", stride=s, candidates=C, queries=int(q.sum()), search_s=secs,
                                 scored_per_position=round(scored / len(h)), recall=recall(pool)))
    return dict(run=str(run), dataset=name, items=ds.n_items, positions=len(h), sequences=n, K=K,
                index=cfg["index"], cells=index.nlist, nprobe=cfg["nprobe"], exclude_history=cfg["exclude_history"], rows=rows)


def markdown(out) -> str:
    lines = ["# One index search per sequence against one per position", "",
             f"`{out['command']}` (one thread, {out['machine']['cpu_count']}-core CPU machine, load average {out['machine']['load_average'][0]:.1f} at the end). "
             "Shared: the last target position of each sequence and every stride-th one before it query the index (stride 0: the last only); "
             "the sequence's positions score the union of what they retrieved exactly. Recall: share of each position's exact top-K in its pool.", ""]
    for r in out["results"]:
        lines += [f"## {r['run']}", "", f"{r['items']:,} items, {r['positions']:,} training positions in {r['sequences']:,} sequences, K = {r['K']}, "
                  f"index {r['index']}, {r['nprobe']} of {r['cells']} cells searched", "",
                  "| scheme | stride | candidates a query | queries | search s | items scored a position | recall of the exact top-K |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {x['scheme']} | {'' if x['stride'] is None else x['stride']} | {x['candidates']} | {x['queries']:,} | {x['search_s']} | "
                  f"{x['scored_per_position']:,} | {x['recall']} |" for x in r["rows"]]
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="trained pool='ann' DPO runs (with best.pt)")
    p.add_argument("--strides", default="1,2,4,0", help="query every s-th target position of a sequence, counted back from its last (0: the last only)")
    p.add_argument("--candidates", default="400,1000", help="items each query retrieves")
    p.add_argument("--batches", type=int, default=4, help="batches of 256 sequences from the start of epoch 0")
    p.add_argument("--out", default=str(ROOT/"results"/"benchmarks"/"shared_queries"))
    a = p.parse_args(argv)
    strides, candidates = [int(s) for s in a.strides.split(",")], [int(c) for c in a.candidates.split(",")]
    if min(strides) < 0 or min(candidates) < 1 or a.batches < 1: p.error("--strides must be >= 0, --candidates and --batches >= 1")
    import torch
    torch.set_num_threads(1)
    results = []
    for run in a.runs:
        results.append(measure(run, strides, candidates, a.batches))
        print(json.dumps(results[-1]), flush=True)
    cmd = "python benchmarks/scale/shared_queries.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = dict(command=cmd.strip(), settings=dict(strides=strides, candidates=candidates, batches=a.batches, threads=1), results=results,
               machine=dict(cpu_count=os.cpu_count(), platform=platform.platform(), load_average=os.getloadavg()))
    stem = Path(a.out); stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
