"""The approximate pool's index kinds side by side, as the sampler uses them: faiss IVF with the vectors kept as they are (`flat`), as
8-bit codes (`sq8`) or as 4-bit product codes scanned with SIMD lookups (`pq4`: two dimensions a code; `pq4x1`: one), each retrieving K'
candidates that are then scored
exactly; one thread, on a synthetic catalogue. Also the gather of the candidates' rows that the exact scores need.

    python benchmarks/scale/ann_indexes.py [--items 1000000] [--queries 1131] [--dim 64] [--nprobes 16,32] [--candidates 200,400,800]

Data as in `ann_libraries.py`: `--items` vectors in `--dim` dimensions from `items / 1000` Gaussian clusters (unit centres, noise 0.7),
`--queries` queries (a random item's vector plus noise 0.7; 1,131 is the mean number of target positions in a DPO batch of 256 synthetic
users). Each index is `rodpo.negatives.ItemIndex` (default cells: about sqrt(items)); for every (cells searched, candidates) the
candidates are scored exactly and the best 50 kept, as `NegativeSampler.from_embeddings` does; recall@50 is their share of the exact
top-50 by inner product (torch, the full score matrix). The gather: the rows of `queries x 400` candidate ids of the table as
`table[ids]`, as `table.index_select(0, ids)` and as the sampler does it (index_select, 64 queries at a time), the best of 3 runs each.

Prints one JSON line per configuration, then writes results/benchmarks/ann_indexes.json and .md.
"""
from __future__ import annotations
import argparse, json, os, platform, sys, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def best_of(f, runs=3) -> float:
    "The shortest of `runs` timings of f() (after one untimed call)."
    f(); out = []
    for _ in range(runs):
        t = time.perf_counter(); f(); out.append(time.perf_counter() - t)
    return min(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1131)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--nprobes", default="16,32", help="cells searched")
    p.add_argument("--candidates", default="200,400,800", help="items retrieved a query (K')")
    p.add_argument("--out", default=str(ROOT/"results"/"benchmarks"/"ann_indexes"))
    a = p.parse_args(argv)
    import torch
    sys.path.insert(0, str(ROOT))
    from rodpo.negatives import ItemIndex, INDEXES
    torch.set_num_threads(1)
    n, d = a.items, a.dim
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((max(1, n // 1000), d)).astype(np.float32)
    X = (centres[rng.integers(0, len(centres), n)] + 0.7 * rng.standard_normal((n, d))).astype(np.float32)
    Q = torch.from_numpy((X[rng.integers(0, n, a.queries)] + 0.7 * rng.standard_normal((a.queries, d))).astype(np.float32))
    table = torch.cat([torch.zeros(1, d), torch.from_numpy(X)])  # row 0: padding, as in an item table
    exact = torch.topk(Q @ table[1:].T, 50).indices + 1
    rows = []
    for kind in INDEXES:
        t = time.perf_counter(); index = ItemIndex(table, kind=kind); build = time.perf_counter() - t
        for nprobe in map(int, a.nprobes.split(",")):
            index.index.nprobe = nprobe
            for k in map(int, a.candidates.split(",")):
                t = time.perf_counter(); cand = index.search(Q, k); search = time.perf_counter() - t
                s = torch.einsum("nd,nkd->nk", Q, table.index_select(0, cand.clamp_min(0).flatten()).view(*cand.shape, d)).masked_fill(cand <= 0, float("-inf"))
                top = cand.gather(1, s.topk(50, dim=1).indices)
                recall = (top[:, :, None] == exact[:, None, :]).any(-1).float().mean().item()
                rows.append(dict(index=kind, cells=index.nlist, nprobe=nprobe, candidates=k, build_s=round(build, 2), search_s=round(search, 3),
                                 ms_per_query=round(1000 * search / a.queries, 3), recall_at_50=round(recall, 4)))
                print(json.dumps(rows[-1]), flush=True)
    ids = torch.from_numpy(rng.integers(1, n + 1, (a.queries, 400)))
    def chunked():
        out = torch.empty(a.queries, 400)
        for i in range(0, a.queries, 64): out[i:i + 64] = torch.einsum("nd,nkd->nk", Q[i:i + 64], table.index_select(0, ids[i:i + 64].flatten()).view(-1, 400, d))
        return out
    gather = dict(rows=a.queries * 400, index_s=round(best_of(lambda: table[ids]), 4), index_select_s=round(best_of(lambda: table.index_select(0, ids.flatten())), 4),
                  chunked_index_select_and_scores_s=round(best_of(chunked), 4))
    print(json.dumps(gather), flush=True)
    cmd = "python benchmarks/scale/ann_indexes.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = dict(command=cmd.strip(), settings=vars(a) | dict(threads=1), machine=dict(cpu_count=os.cpu_count(), platform=platform.platform(), load_average=os.getloadavg(),
               thp_mem_alloc=os.environ.get("THP_MEM_ALLOC_ENABLE")), rows=rows, gather=gather)
    stem = Path(a.out); stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")
    md = [f"# The approximate pool's index kinds\n\n`{out['command']}` (one thread, {os.cpu_count()}-core CPU machine, load average {os.getloadavg()[0]:.1f} at the end; "
          f"{n:,} items in Gaussian clusters, {a.queries:,} queries; candidates scored exactly, recall of the exact top-50 among the best 50)\n",
          "| index | cells | probes | candidates | build s | search s | ms / query | recall@50 |", "|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['index']} | {r['cells']} | {r['nprobe']} | {r['candidates']} | {r['build_s']} | {r['search_s']} | {r['ms_per_query']} | {r['recall_at_50']} |" for r in rows]
    md += ["", f"Gathering {gather['rows']:,} candidate rows of the {n:,} x {d} table (best of 3): `table[ids]` {gather['index_s']} s, `table.index_select(0, ids)` "
           f"{gather['index_select_s']} s; 64 queries at a time with their exact scores (the sampler's way) {gather['chunked_index_select_and_scores_s']} s."]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
