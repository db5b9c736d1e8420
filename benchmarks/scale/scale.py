"""Full-ranking evaluation and top-K pools over large catalogues: the full score matrix against item chunks.

    python benchmarks/scale/scale.py [--sizes 12000,100000,1000000] [--users 10000] [--k 50] [--chunk 65536] [--threads 1]

For each catalogue size, a SASRec (hidden 64, random parameters: speed and memory do not depend on training) scores
`--users` random histories against every item, two ways:

- full: `evaluate(model, es, batch_size)` and `torch.topk(model.score(h, table), k)`, a (batch x n_items) score matrix per batch;
- chunked: `evaluate(..., item_chunk=chunk)` and `topk_chunked(h, table, k, chunk)`, (batch x chunk) at a time.

Each (size, path, task) runs in its own process, so its peak RSS is its own. Reported: users per second of evaluation,
seconds to build the top-K pool of every user, peak RSS and its growth over the process's RSS before the task (model, table
and inputs already built), and whether both paths gave the same ranks and the same top-K items. The full path at sizes above
`--full_users_above` runs on `--full_users` users only (its memory is per batch, its time per user): see the `users` column.

Writes results/benchmarks/scale.json, scale.md and scale.html (plotly) and prints the JSON.
"""
from __future__ import annotations
import argparse, json, os, platform, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository (this file: benchmarks/<group>/<name>.py)


def rss_mb() -> float:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def one(a) -> dict:
    "One (size, path, task) measurement, in this process."
    import numpy as np, torch
    torch.set_num_threads(a.threads)
    sys.path.insert(0, str(ROOT))
    from rodpo.model import SASRec, SASRecConfig
    from rodpo.data import EvalSet
    from rodpo.metrics import evaluate, topk_chunked
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(n_items=a.n_items, hidden=a.dim)).eval()
    g = torch.Generator().manual_seed(1)
    n = a.users  # drawn for every user, then cut: a run on fewer users sees the first users of the full run
    lengths = torch.randint(1, 51, (n,), generator=g)
    hist = torch.randint(1, a.n_items + 1, (n, 50), generator=g)
    hist[torch.arange(50)[None, :] < 50 - lengths[:, None]] = 0  # left padding
    targets = torch.randint(1, a.n_items + 1, (n,), generator=g)
    es = EvalSet(hist[:a.n_users], targets[:a.n_users], torch.arange(a.n_users))
    chunk = None if a.path == "full" else a.chunk
    with torch.no_grad():
        table = model.item_table()
        base = rss_mb()
        t0 = time.perf_counter()
        if a.task == "eval":
            _, pu = evaluate(model, es, a.batch, item_chunk=chunk)
            result = pu["rank"].to_numpy()
        else:
            ids = []
            for idx in torch.arange(a.n_users).split(a.batch):
                h = model.last_hidden(es.histories[idx], table)
                ids.append(model.score(h, table).topk(a.k, dim=1).indices if chunk is None else topk_chunked(h, table, a.k, chunk)[1])
            result = torch.cat(ids).numpy()
        dt = time.perf_counter() - t0
    np.save(a.save, result)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(n_items=a.n_items, path=a.path, task=a.task, users=a.n_users, seconds=round(dt, 3),
                users_per_s=round(a.n_users / dt, 1), peak_rss_mb=round(peak, 1), rss_before_mb=round(base, 1),
                peak_growth_mb=round(peak - base, 1))


def figure(rows, path):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=3, subplot_titles=("evaluation (users/s)", "top-K pool (users/s)", "peak RSS (MB)"))
    for path_name, dash in (("full", "dot"), ("chunked", "solid")):
        for col, task, key in ((1, "eval", "users_per_s"), (2, "topk", "users_per_s"), (3, "eval", "peak_rss_mb")):
            rs = sorted((r for r in rows if r["path"] == path_name and r["task"] == task), key=lambda r: r["n_items"])
            fig.add_trace(go.Scatter(x=[r["n_items"] for r in rs], y=[r[key] for r in rs], mode="lines+markers",
                                     name=f"{path_name}", legendgroup=path_name, showlegend=col == 1, line=dict(dash=dash)), 1, col)
        rs = sorted((r for r in rows if r["path"] == path_name and r["task"] == "topk"), key=lambda r: r["n_items"])
        fig.add_trace(go.Scatter(x=[r["n_items"] for r in rs], y=[r["peak_rss_mb"] for r in rs], mode="lines+markers",
                                 name=f"{path_name} (top-K)", line=dict(dash=dash), marker=dict(symbol="square")), 1, 3)
    fig.update_xaxes(type="log", title="items in the catalogue")
    fig.update_yaxes(type="log")
    fig.update_layout(title="Full ranking and top-K over large catalogues: full score matrix vs item chunks", height=420, width=1300)
    fig.write_html(path, include_plotlyjs="cdn")


def markdown(out) -> str:
    hdr = ("items", "path", "task", "users", "seconds", "users/s", "peak RSS MB", "growth MB", "chunked vs full (same users)")
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for r in out["rows"]:
        g = out["agreement"].get(f"{r['n_items']}-{r['task']}") if r["path"] == "chunked" else None
        same = "" if g is None else (f"ranks: {g['differing']} of {g['users']:,} users differ (by at most {g['max_rank_difference']})"
                                     if r["task"] == "eval" else
                                     f"top-K: {g['other_items']} of {g['users']:,} users other items, {g['other_order']} other order")
        lines.append("| " + " | ".join(str(x) for x in (f"{r['n_items']:,}", r["path"], r["task"], f"{r['users']:,}", r["seconds"],
                                                        r["users_per_s"], r["peak_rss_mb"], r["peak_growth_mb"], same)) + " |")
    return ("\n".join(lines) + "\n\nDifferences between the paths come from floating-point rounding: a matrix product may round an entry in "
            "the last bit differently depending on its shape, which moves a rank by 1 where another item scores within rounding "
            "error of the target, or swaps two nearly equal items in a top-K list. Random items crowd the scores: with a million of "
            "them such near ties are common.\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="12000,100000,1000000")
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--batch", type=int, default=1024, help="users scored at once")
    p.add_argument("--chunk", type=int, default=65536, help="items scored at once on the chunked path")
    p.add_argument("--full_users_above", type=int, default=200_000)
    p.add_argument("--full_users", type=int, default=2048)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--paths", default="full,chunked", help="which paths to measure (agreement needs both)")
    p.add_argument("--out", default=str(ROOT/"results"/"benchmarks"/"scale"))
    # one measurement (internal)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n_items", type=int, help=argparse.SUPPRESS)
    p.add_argument("--n_users", type=int, help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--task", help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(one(a))); return 0
    import numpy as np
    tmp = Path(tempfile.mkdtemp())
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    rows, agreement = [], {}
    for n in map(int, a.sizes.split(",")):
        for task in ("eval", "topk"):
            got = {}
            for path in a.paths.split(","):
                users = a.full_users if path == "full" and n > a.full_users_above else a.users
                save = tmp/f"{n}-{task}-{path}.npy"
                cmd = [sys.executable, __file__, "--one", "--n_items", str(n), "--n_users", str(users), "--path", path, "--task", task,
                       "--save", str(save), "--dim", str(a.dim), "--k", str(a.k), "--batch", str(a.batch), "--chunk", str(a.chunk),
                       "--threads", str(a.threads), "--users", str(a.users)]
                r = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if r.returncode != 0:
                    raise RuntimeError(f"{n} items, {path} {task} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
                row = json.loads(r.stdout.strip().splitlines()[-1]); rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                got[path] = np.load(save)
            if {"full", "chunked"} <= set(got):
                m = min(len(got["full"]), len(got["chunked"]))  # the same users come first on both paths (same seed)
                f, c = got["full"][:m], got["chunked"][:m]
                if task == "eval":
                    agreement[f"{n}-{task}"] = dict(users=m, differing=int((f != c).sum()), max_rank_difference=int(np.abs(f - c).max()))
                else:
                    sets = np.array([set(x) != set(y) for x, y in zip(f, c)])
                    agreement[f"{n}-{task}"] = dict(users=m, other_order=int(((f != c).any(1) & ~sets).sum()), other_items=int(sets.sum()))
    out = dict(settings=dict(users=a.users, dim=a.dim, k=a.k, batch=a.batch, chunk=a.chunk, threads=a.threads,
                             full_users_above=a.full_users_above, full_users=a.full_users, paths=a.paths),
               machine=dict(cpu_count=os.cpu_count(), platform=platform.platform()), rows=rows, agreement=agreement)
    big = [r for r in rows if r["path"] == "chunked" and r["task"] == "eval" and r["n_items"] >= 1_000_000 and r["users"] >= 10_000]
    if big:
        out["acceptance"] = dict(chunked_eval_1m_peak_rss_mb=big[0]["peak_rss_mb"], under_4gb=big[0]["peak_rss_mb"] < 4096)
    stem = Path(a.out); stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")
    cmdline = "python benchmarks/scale/scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    stem.with_suffix(".md").write_text(f"# Evaluation and top-{a.k} over large catalogues\n\n`{cmdline}` ({a.threads} torch thread(s), "
                                       f"{os.cpu_count()}-core CPU machine, {a.users:,} users, hidden {a.dim}, batch {a.batch}, "
                                       f"chunk {a.chunk:,})\n\n" + markdown(out))
    figure(rows, str(stem.with_suffix(".html")))
    shutil.rmtree(tmp)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
