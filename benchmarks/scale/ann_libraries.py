"""Vector-search libraries for the approximate top-K pool, side by side: index build time, query time and recall of the exact top-50
by inner product, one thread, on a synthetic catalogue.

    python benchmarks/scale/ann_libraries.py [--items 1000000] [--queries 900] [--k 200] [--dim 64]

Data: `--items` item vectors in `--dim` dimensions, a mixture of `items / 1000` Gaussian clusters (unit centres, noise 0.7), and
`--queries` queries, each a random item's vector plus noise 0.7 (about the positions of one DPO batch). The exact top-50 by inner
product comes from torch (`topk` over the full score matrix). Each library retrieves `--k` candidates (the pool's K'); recall@50 is the
share of the exact top-50 among them. Libraries (all from PyPI): faiss-cpu (IVF-Flat with k-means trained on 64 points per list, and
HNSW), hnswlib and usearch (HNSW, 16 links, construction beam 100). hnswlib and usearch are not rodpo dependencies:
`pip install hnswlib usearch` first.

Prints one JSON line per configuration, then writes results/benchmarks/ann_libraries.json and .md.
"""
from __future__ import annotations
import argparse, json, os, platform, sys, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=900)
    p.add_argument("--k", type=int, default=200, help="candidates retrieved per query (K')")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--out", default=str(ROOT/"results"/"benchmarks"/"ann_libraries"))
    a = p.parse_args(argv)
    import torch, faiss, hnswlib, usearch.index as usearch_index
    torch.set_num_threads(1); faiss.omp_set_num_threads(1)
    n, d, k = a.items, a.dim, a.k
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((max(1, n // 1000), d)).astype(np.float32)
    X = (centres[rng.integers(0, len(centres), n)] + 0.7 * rng.standard_normal((n, d))).astype(np.float32)
    Q = (X[rng.integers(0, n, a.queries)] + 0.7 * rng.standard_normal((a.queries, d))).astype(np.float32)
    t = time.perf_counter()
    exact = torch.topk(torch.from_numpy(Q) @ torch.from_numpy(X).T, 50).indices.numpy()
    rows = [dict(library="torch", index="exact (full score matrix)", build_s=0.0, query_s=round(time.perf_counter() - t, 3), recall_at_50=1.0)]
    print(json.dumps(rows[-1]), flush=True)
    recall = lambda I: round(float(np.mean([len(set(r.tolist()) & set(e.tolist())) / 50 for r, e in zip(I, exact)])), 4)

    def add(library, index, build_s, search, settings):
        for s in settings:
            t = time.perf_counter(); I = search(s); q = time.perf_counter() - t
            rows.append(dict(library=library, index=index.format(s=s), build_s=round(build_s, 2), query_s=round(q, 3), recall_at_50=recall(I)))
            print(json.dumps(rows[-1]), flush=True)

    for nlist in (1024, 4096):
        t = time.perf_counter()
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = 0
        ivf.train(X[rng.choice(n, min(n, 64 * nlist), replace=False)]); ivf.add(X)
        def search(nprobe, ivf=ivf): ivf.nprobe = nprobe; return ivf.search(Q, k)[1]
        add("faiss-cpu " + faiss.__version__, f"IVF-Flat, {nlist} lists, nprobe {{s}}", time.perf_counter() - t, search, (8, 32, 64))
    t = time.perf_counter()
    h = hnswlib.Index(space="ip", dim=d); h.init_index(max_elements=n, M=16, ef_construction=100, random_seed=0); h.set_num_threads(1); h.add_items(X)
    def search(ef): h.set_ef(ef); return h.knn_query(Q, k=k)[0]
    add("hnswlib " + getattr(hnswlib, "__version__", "0.8"), "HNSW M 16, ef {s}", time.perf_counter() - t, search, (200, 400))
    t = time.perf_counter()
    u = usearch_index.Index(ndim=d, metric="ip", dtype="f32", connectivity=16, expansion_add=100); u.add(np.arange(n), X, threads=1)
    def search(ef): u.expansion_search = ef; return u.search(Q, k, threads=1).keys
    import usearch
    add("usearch " + usearch.__version__, "HNSW M 16, ef {s}", time.perf_counter() - t, search, (200, 400))
    t = time.perf_counter()
    f = faiss.IndexHNSWFlat(d, 16, faiss.METRIC_INNER_PRODUCT); f.hnsw.efConstruction = 100; f.add(X)
    def search(ef): f.hnsw.efSearch = ef; return f.search(Q, k)[1]
    add("faiss-cpu " + faiss.__version__, "HNSW M 16, ef {s}", time.perf_counter() - t, search, (200, 400))
    cmd = ("python benchmarks/scale/ann_libraries.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    out = dict(command=cmd, settings=vars(a), machine=dict(cpu_count=os.cpu_count(), platform=platform.platform(), load_average=os.getloadavg()), rows=rows)
    stem = Path(a.out); stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")
    hdr = ("library", "index", "build s", "query s", "recall@50")
    md = [f"# Vector-search libraries for the approximate pool\n\n`{cmd}` (one thread, {os.cpu_count()}-core CPU machine, load average "
          f"{out['machine']['load_average'][0]:.1f} at the end; {n:,} items, {a.queries} queries, K' = {k})\n",
          "| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    md += [f"| {r['library']} | {r['index']} | {r['build_s']} | {r['query_s']} | {r['recall_at_50']} |" for r in rows]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
