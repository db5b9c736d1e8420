"""Training where the full softmax no longer fits: stage-1 epochs (full-softmax CE against sampled softmax) and DPO steps
(`topk_stochastic`, whose exact pool needs every position's catalogue scores, and its approximate pool) on synthetic catalogues of 100k and 1M items.

    python benchmarks/scale/scale_train.py [--sizes 100000,1000000] [--users 100000] [--steps 4] [--full sampled_softmax] [--threads 1]
                                     [--mmap_thresholds 0,65536] [--vary sampled_softmax] [--index_refresh 100]
                                     [--dpo_batches 128] [--thp 0,1] [--rows dense,sparse]
                                     [--fused 0,1] [--index flat,sq8,pq4,pq4x1] [--index_metric ip,l2] [--candidates 200] [--nprobe 16] [--rank_every 1] [--repeats 1]
                                     [--init_epochs 0] [--cache data/scale]

Data: `rodpo.data.synthetic_dataset(users, items)` (Zipf popularity, item-to-item transitions, mean length 8). Model: SASRec,
hidden 64, 2 blocks, random initial weights unless `--init_epochs` (a step's time and memory do not depend on training, except the
approximate pool's search: see below). For each (catalogue size, task):

- `ce`: a stage-1 step with the full-softmax cross-entropy (`rodpo.objectives.ChunkedSoftmaxCE`, catalogue logits 256 rows at a time);
- `sampled_softmax`: a stage-1 step with 100 uniform negatives shared by the batch (logQ-corrected);
- `dpo_topk_stochastic`: a DPO step as `rodpo.dpo.fit_dpo` takes it (policy and reference, K = 50, beta 1, the sampled-softmax anchor
  with dropout; the reference run every step), at each of `--dpo_batches` (rows a step; 128 is the DPO default, 256 the stage-1 one, with
  as many steps an epoch as the sampled-softmax epoch);
- `dpo_topk_stochastic_ann`: the same with `pool='ann'` (`rodpo.negatives.ItemIndex`, default cells, `--nprobe` probes, `--candidates` candidates, rebuilt
  every `--index_refresh` steps). The index is built in the untimed warm-up step; its build is timed once more on its own, and the epoch
  time adds one build per `--index_refresh` steps. `pool_recall` is the mean share of the exact top-50 in the pools (the sampler's
  estimate on `rank_rows` positions a step); the model has random initial weights, whose embeddings an inner-product index separates
  worse than trained ones.

Huge pages: a step at 1M items allocates several catalogue-sized tensors (the item table, its gradients, Adam's temporaries, 256 MB
each at hidden 64), each a fresh mapping whose pages the kernel faults in one 4 KB page at a time. `THP_MEM_ALLOC_ENABLE=1` makes
PyTorch's CPU allocator ask for transparent huge pages for large blocks (where the kernel allows them, `madvise` or `always` in
/sys/kernel/mm/transparent_hugepage/enabled). `--thp 0,1` runs every task without and with it, side by side.

Reads of the item table: with an ID-only model the table is the embedding matrix, and `rodpo.items.rows` sends back only the rows
each read takes, summed into one dense gradient after backward (`sparse`, the library's behaviour); `dense` indexes as `table[index]`
does, one zero-filled catalogue-sized gradient per read (`rodpo.items.dense_rows`). Same gradients bit for bit. `--rows dense,sparse`
runs every task both ways, side by side.

The optimiser: Adam as the library runs it by default (`--fused 0`), or its fused kernel (`--fused 1`, `fused_adam=True` in
TrainConfig and DPOConfig: one pass over each parameter; the same update up to float rounding). The approximate pool's index:
`--index flat` (IVF-Flat, the default), `sq8` (`SamplerConfig(index='sq8')`, 8-bit codes: a faster scan), `pq4` (4-bit
product codes of two dimensions each, scanned with SIMD lookups, IVF-PQ fast scan) and/or `pq4x1` (the same, one dimension a code); the
DPO task with the approximate pool runs once per index and per `--index_metric` (`ip`: cells by inner product; `l2`: by Euclidean
distance after the reduction of inner-product search to it, `SamplerConfig(index_metric='l2')`), retrieving `--candidates` items a position from `--nprobe` cells, and measures
its diagnostics (ranks, recall) every `--rank_every` steps.

Initial weights: random by default. A DPO stage starts from a trained model, and an index's cells and codes follow a trained table's
neighbourhoods (and its popular items' crowded cells), which random weights do not have; so `--init_epochs E` starts every task from the
model trained E sampled-softmax epochs by `ann_trained.py` (trained once before the tasks, or read from `--cache`, default data/scale/).

Each runs in its own process (its peak RSS is its own) and trains `--steps` steps after one untimed warm-up step; the epoch time is
the mean step time times the steps of an epoch ("extrapolated"). Tasks named in `--full` instead train one whole epoch (timed as it
ran, "measured") and then rank `--eval_users` validation users against the whole catalogue (NDCG@10 and HR@10 before and after the epoch).

Memory: glibc raises its mmap threshold each time a large block is freed, after which the steps' large tensors (their shapes change
from batch to batch) come from the heap and fragment it: the resident size of a sampled-softmax epoch then grows step after step.
A fixed threshold (`MALLOC_MMAP_THRESHOLD_`, in bytes) gives every large tensor its own mapping, returned when freed. Every task runs
under the first of `--mmap_thresholds` (0 = glibc's default, adaptive); the tasks in `--vary` run under each of them, side by side.

`--repeats R` runs the whole set R times, one set after another (so that a slow spell of the machine touches every variant alike), and
gives each DPO/sampled-softmax ratio per repeat and its median.

Writes results/benchmarks/scale_train.json and .md and prints the JSON.
"""
from __future__ import annotations
import argparse, contextlib, copy, json, os, platform, resource, statistics, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository (this file: benchmarks/<group>/<name>.py)
TASKS = ("ce", "sampled_softmax", "dpo_topk_stochastic", "dpo_topk_stochastic_ann")


def rss_mb() -> float:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def thp_mode() -> str | None:
    "The kernel's transparent-huge-page mode (the bracketed word of /sys/kernel/mm/transparent_hugepage/enabled), None where it has none."
    try: text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError: return None
    return text[text.find("[") + 1:text.find("]")] if "[" in text else text.strip()


def one(a) -> dict:
    "One (size, task) measurement, in this process."
    import numpy as np, torch
    torch.set_num_threads(a.threads)
    sys.path.insert(0, str(ROOT))
    from rodpo.data import synthetic_dataset, TrainBatches, eval_set, EvalSet
    from rodpo.model import SASRec, SASRecConfig
    from rodpo.metrics import evaluate
    from rodpo.objectives import Objective, stage1_loss, item_counts
    from rodpo.dpo import DPOConfig, dpo_step
    from rodpo.negatives import SamplerConfig, NegativeSampler
    t0 = time.perf_counter()
    ds = synthetic_dataset(a.users, a.n_items, seed=0)
    data_s = time.perf_counter() - t0
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(n_items=a.n_items, hidden=64)).train()
    if a.init_epochs:  # start from the trained stage-1 model that main() made sure of
        from ann_trained import model_path
        model.load_state_dict(torch.load(model_path(a.n_items, a.users, a.init_epochs, a.cache), map_location="cpu", weights_only=True))
    dpo = a.task.startswith("dpo")
    objective = Objective("ce" if a.task == "ce" else "sampled_softmax", a.n_items, n_negatives=100)
    batches = TrainBatches(ds.sequences, 50, a.batch if dpo else 256, seed=0)
    per = batches.n_targets / len(batches)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **(dict(fused=True) if a.fused == "1" else {}))
    if dpo:
        reference = copy.deepcopy(model).eval()
        for p in reference.parameters(): p.requires_grad_(False)
        with torch.no_grad(): ref_table = reference.item_table()
        ann = dict(pool="ann", index_refresh=a.index_refresh, index=a.index, index_metric=a.index_metric, candidates=a.candidates, nprobe=a.nprobe, rank_every=a.rank_every) if a.task.endswith("_ann") else {}
        cfg = DPOConfig(stage1="(synthetic)", beta=1.0, ce_weight=1.0, batch_size=a.batch, sampler=SamplerConfig(strategy="topk_stochastic", K=50, m=1, **ann))
        sampler = NegativeSampler(cfg.sampler, a.n_items, item_counts(ds.sequences, a.n_items))
        gen = torch.Generator().manual_seed(0)
        recall = []
        def loss_of(x, y, step):
            loss, d = dpo_step(model, reference, ref_table, sampler, cfg, x, y, gen, step=step, objective=objective)
            if "pool_recall" in d: recall.extend(d["pool_recall"][d["pool_recall"].isfinite()].tolist())
            return loss
    else:
        loss_of = lambda x, y, step: stage1_loss(model, x, y, per, objective=objective)
    valid = eval_set(ds, "valid", 50)
    pick = torch.randperm(len(valid.targets), generator=torch.Generator().manual_seed(1))[:a.eval_users]
    valid = EvalSet(valid.histories[pick], valid.targets[pick], valid.users[pick])
    full = a.task in a.full.split(",")
    before = evaluate(model, valid)[0] if full else None
    base = rss_mb()
    n = len(batches) if full else min(a.steps + 1, len(batches))
    times = []
    from rodpo.items import dense_rows
    with dense_rows() if a.rows == "dense" else contextlib.nullcontext():
        for i, (x, y) in enumerate(batches.epoch(0)):
            if i == n: break
            t = time.perf_counter()
            loss = loss_of(x, y, i)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
            times.append(time.perf_counter() - t)
    step_s = float(np.mean(times[1:])) if len(times) > 1 else times[0]
    after = evaluate(model, valid)[0] if full else None
    build = {}
    if dpo and sampler.cfg.pool == "ann":  # one more index build, timed on its own; an epoch has one per index_refresh steps
        from rodpo.negatives import ItemIndex
        t = time.perf_counter()
        with torch.no_grad(): index = ItemIndex(model.item_table(), sampler.cfg.nlist, sampler.cfg.nprobe, kind=sampler.cfg.index, metric=sampler.cfg.index_metric)
        build = dict(index_build_s=round(time.perf_counter() - t, 4),  # 4 places: a small flat index builds in milliseconds
                     index_refresh=sampler.cfg.index_refresh, nlist=index.nlist,
                     nprobe=index.index.nprobe, candidates=sampler.cfg.candidates, rank_every=sampler.cfg.rank_every, pool_recall=round(float(np.mean(recall)), 4), recall_positions=len(recall))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = dict(n_items=a.n_items, users=a.users, interactions=ds.n_interactions, task=a.task, batch=batches.batch_size,
               steps_per_epoch=len(batches), steps_timed=len(times) - (0 if full else 1), step_s=round(step_s, 4),
               epoch_s=round((sum(times) if full else step_s * len(batches)) + build.get("index_build_s", 0) * -(-len(batches) // build.get("index_refresh", 1)), 1),
               epoch="measured" if full else "extrapolated", **build,
               peak_rss_mb=round(peak, 1), rss_before_training_mb=round(base, 1), data_s=round(data_s, 1))
    if full:
        row.update(eval_users=len(valid.targets), **{f"valid_{k}_{w}": round(r[k], 4) for w, r in (("before", before), ("after", after))
                                                     for k in ("ndcg@10", "hr@10")})
    return row


def variant(r) -> str:
    "A row's settings beyond the defaults, as the tables name them: ', THP', ', dense rows', ', fused Adam', ', sq8', ', l2'."
    return ((", THP" if r.get("thp") else "") + (", dense rows" if r.get("rows") == "dense" else "") + (", fused Adam" if r.get("fused") else "")
            + (f", {r['index']}" if r.get("index", "flat") != "flat" else "") + (f", {r['index_metric']}" if r.get("index_metric", "ip") != "ip" else ""))


def label(r) -> str:
    "A row's name in the ratio and memory summaries: 'dpo_topk_stochastic_ann (batch 256, THP, pq4)'."
    return f"{r['task']} (batch {r['batch']}{variant(r)})"


def markdown(out) -> str:
    hdr = (*(("repeat",) if any("repeat" in r for r in out["rows"]) else ()), "items", "task", "memory", "batch", "steps/epoch", "s/step", "epoch s", "epoch", "peak RSS MB", "valid NDCG@10 before -> after one epoch")
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for r in out["rows"]:
        q = f"{r['valid_ndcg@10_before']:.4f} -> {r['valid_ndcg@10_after']:.4f} ({r['eval_users']:,} users)" if "eval_users" in r else ""
        lines.append("| " + " | ".join(str(x) for x in (*((r["repeat"],) if "repeat" in r else ()), f"{r['n_items']:,}", r["task"], (f"mmap >= {r['mmap_threshold']:,} B" if r["mmap_threshold"] else "glibc default") + variant(r), r["batch"], r["steps_per_epoch"], r["step_s"],
                                                        f"{r['epoch_s']:,.1f}", r["epoch"], f"{r['peak_rss_mb']:,.0f}", q)) + " |")
    ann = [r for r in out["rows"] if "index_build_s" in r]
    if ann:
        lines += ["", "Approximate pool (`pool='ann'`): index build, rebuilds per epoch and the pools' recall of the exact top-50 (" + (
                  f"from the model trained {out['settings']['init_epochs']} sampled-softmax epoch(s)" if out.get("settings", {}).get("init_epochs") else "random initial weights") + ")", "",
                  "| items | batch | index | cells | probes | candidates | build s | rebuild every | builds/epoch | ranks every | recall@50 (positions) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['n_items']:,} | {r['batch']} | {r.get('index', 'flat')}{', ' + r['index_metric'] if r.get('index_metric', 'ip') != 'ip' else ''}{', fused Adam' if r.get('fused') else ''} | {r['nlist']} | {r['nprobe']} | {r['candidates']} | {r['index_build_s']} | {r['index_refresh']} | "
                  f"{-(-r['steps_per_epoch'] // r['index_refresh'])} | {r.get('rank_every', 1)} | {r['pool_recall']} ({r['recall_positions']:,}) |" for r in ann]
    if out.get("epoch_ratio_to_sampled_softmax"):
        each = out.get("epoch_ratio_per_repeat", {})
        lines += ["", ("DPO epoch / sampled-softmax stage-1 epoch (same run" + (", median of the repeats; each repeat's in brackets" if each else "") + "): ") + "; ".join(
            f"{int(n):,} items: " + ", ".join(f"{t} {v}x" + (f" [{', '.join(f'{x}x' for x in each[n][t])}]" if n in each else "") for t, v in d.items())
            for n, d in out["epoch_ratio_to_sampled_softmax"].items())]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000", help="catalogue sizes (items)")
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--tasks", default=",".join(TASKS), help=f"any of {', '.join(TASKS)}")
    p.add_argument("--steps", type=int, default=4, help="timed steps of a task not in --full (after one warm-up step)")
    p.add_argument("--full", default="sampled_softmax", help="tasks that train a whole epoch (timed as it ran) and are evaluated")
    p.add_argument("--eval_users", type=int, default=2000, help="validation users ranked before and after a whole epoch")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--index_refresh", type=int, default=100, help="dpo_topk_stochastic_ann: steps between index rebuilds")
    p.add_argument("--dpo_batches", default="128", help="batch sizes the DPO tasks run at (each its own row)")
    p.add_argument("--batch", type=int, default=128, help=argparse.SUPPRESS)
    p.add_argument("--mmap_thresholds", default="0,65536", help="MALLOC_MMAP_THRESHOLD_ values in bytes (0 = glibc's adaptive default); every task runs under the first")
    p.add_argument("--vary", default="sampled_softmax", help="tasks that also run under the other --mmap_thresholds")
    p.add_argument("--thp", default="0", help="0 and/or 1: run the tasks without / with THP_MEM_ALLOC_ENABLE=1 (PyTorch's CPU allocator on transparent huge pages)")
    p.add_argument("--rows", default="sparse", help="dense and/or sparse: the item table's gradient as one catalogue-sized tensor per read (dense) or as the rows read (sparse, the library's)")
    p.add_argument("--fused", default="0", help="0 and/or 1: Adam as by default, and/or its fused kernel (fused_adam=True)")
    p.add_argument("--index", default="flat", help="flat, sq8, pq4 and/or pq4x1: the approximate pool's index (SamplerConfig.index); each runs the dpo_topk_stochastic_ann task")
    p.add_argument("--index_metric", default="ip", help="ip and/or l2: the index's cells by inner product or by Euclidean distance after the reduction (SamplerConfig.index_metric); each runs the dpo_topk_stochastic_ann task")
    p.add_argument("--candidates", type=int, default=200, help="dpo_topk_stochastic_ann: items retrieved a position (SamplerConfig.candidates)")
    p.add_argument("--nprobe", type=int, default=16, help="dpo_topk_stochastic_ann: cells searched a position (SamplerConfig.nprobe)")
    p.add_argument("--rank_every", type=int, default=1, help="dpo_topk_stochastic_ann: steps between the diagnostics' catalogue passes (SamplerConfig.rank_every)")
    p.add_argument("--repeats", type=int, default=1, help="runs of the whole set, one after another; ratios per repeat and their median")
    p.add_argument("--init_epochs", type=int, default=0, help="0: random initial weights; E: every task starts from the model trained E sampled-softmax epochs (ann_trained.py's, cached in --cache)")
    p.add_argument("--cache", default=str(ROOT/"data"/"scale"), help="--init_epochs: folder of the trained weights")
    p.add_argument("--out", default=str(ROOT/"results"/"benchmarks"/"scale_train"))
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n_items", type=int, help=argparse.SUPPRESS)
    p.add_argument("--task", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(one(a))); return 0
    tasks = a.tasks.split(",")
    if unknown := set(tasks) - set(TASKS): p.error(f"unknown task(s) {', '.join(sorted(unknown))}: choose from {', '.join(TASKS)}")
    thresholds = [int(t) for t in a.mmap_thresholds.split(",")]
    if any(t < 0 for t in thresholds): p.error(f"--mmap_thresholds {a.mmap_thresholds}: bytes >= 0 (0 = glibc's default)")
    thps = [int(t) for t in a.thp.split(",")]
    if set(thps) - {0, 1}: p.error(f"--thp {a.thp}: 0 and/or 1")
    modes = a.rows.split(",")
    if set(modes) - {"dense", "sparse"}: p.error(f"--rows {a.rows}: dense and/or sparse")
    fuseds = [int(f) for f in a.fused.split(",")]
    if set(fuseds) - {0, 1}: p.error(f"--fused {a.fused}: 0 and/or 1")
    indexes = a.index.split(",")
    sys.path.insert(0, str(ROOT))
    from rodpo.negatives import INDEXES, INDEX_METRICS  # the library's index kinds (each task runs in a process of its own: this one's memory is not measured)
    if set(indexes) - set(INDEXES): p.error(f"--index {a.index}: any of {', '.join(INDEXES)}")
    metrics = a.index_metric.split(",")
    if set(metrics) - set(INDEX_METRICS): p.error(f"--index_metric {a.index_metric}: any of {', '.join(INDEX_METRICS)}")
    if a.repeats < 1: p.error(f"--repeats {a.repeats}: a positive integer")
    if a.init_epochs < 0: p.error(f"--init_epochs {a.init_epochs}: 0 (random weights) or a positive number of epochs")
    if a.init_epochs:  # train (or find) each size's stage-1 model here, so that no task's time or memory includes it
        import torch
        from types import SimpleNamespace
        from rodpo.data import synthetic_dataset
        from ann_trained import trained_model
        torch.set_num_threads(a.threads)
        for n in map(int, a.sizes.split(",")):
            trained_model(SimpleNamespace(items=n, users=a.users, epochs=a.init_epochs, cache=a.cache), synthetic_dataset(a.users, n, seed=0), log=lambda m: print(m, file=sys.stderr, flush=True))
    rows = []
    for rep, n in ((k, n) for k in range(a.repeats) for n in map(int, a.sizes.split(","))):
        for mode, thp, fused, task, mmap, batch, index, metric in ((g, h, f, t, m, b, i, mt) for g in modes for h in thps for f in fuseds for t in tasks
                                                                   for m in (thresholds if t in a.vary.split(",") else thresholds[:1])
                                                                   for b in (map(int, a.dpo_batches.split(",")) if t.startswith("dpo") else [256])
                                                                   for i in (indexes if t.endswith("_ann") else indexes[:1])
                                                                   for mt in (metrics if t.endswith("_ann") else metrics[:1])):
            env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_MMAP_THRESHOLD_", "THP_MEM_ALLOC_ENABLE")}
            env.update(OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads), **({"MALLOC_MMAP_THRESHOLD_": str(mmap)} if mmap else {}),
                       **({"THP_MEM_ALLOC_ENABLE": "1"} if thp else {}))
            cmd = [sys.executable, __file__, "--one", "--n_items", str(n), "--task", task, "--users", str(a.users), "--steps", str(a.steps),
                   "--full", a.full, "--eval_users", str(a.eval_users), "--threads", str(a.threads), "--index_refresh", str(a.index_refresh), "--batch", str(batch), "--rows", mode, "--fused", str(fused), "--index", index, "--index_metric", metric,
                   "--candidates", str(a.candidates), "--nprobe", str(a.nprobe), "--rank_every", str(a.rank_every), "--init_epochs", str(a.init_epochs), "--cache", a.cache]
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise RuntimeError(f"{n:,} items, {task} (batch {batch}) failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
            rows.append(dict(json.loads(r.stdout.strip().splitlines()[-1]), mmap_threshold=mmap, thp=bool(thp), rows=mode, fused=bool(fused), **(dict(index=index, index_metric=metric) if task.endswith("_ann") else {}), **(dict(repeat=rep) if a.repeats > 1 else {})))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    cmdline = "python benchmarks/scale/scale_train.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = dict(command=cmdline.strip(), settings=dict(users=a.users, steps=a.steps, full=a.full, eval_users=a.eval_users, threads=a.threads, index_refresh=a.index_refresh, dpo_batches=a.dpo_batches,
                                                            mmap_thresholds=thresholds, vary=a.vary, thp=thps, rows=modes, fused=fuseds, index=indexes, index_metric=metrics,
                                                            candidates=a.candidates, nprobe=a.nprobe, rank_every=a.rank_every, repeats=a.repeats, init_epochs=a.init_epochs),
               machine=dict(cpu_count=os.cpu_count(), platform=platform.platform(), load_average=os.getloadavg(), transparent_hugepage=thp_mode()), rows=rows)
    out["epoch_ratio_to_sampled_softmax"], per_repeat = {}, {}
    for n, rep in sorted({(r["n_items"], r.get("repeat", 0)) for r in rows}):
        for thp, mode, fused in ((h, g, f) for g in modes for h in thps for f in fuseds):  # each DPO epoch against the sampled-softmax epoch under the same allocator, table reads and optimiser
            first = {label(r): r for r in rows
                     if r["n_items"] == n and r.get("repeat", 0) == rep and r["mmap_threshold"] == thresholds[0] and r["thp"] == bool(thp) and r.get("rows", "dense") == mode and r.get("fused", False) == bool(fused)}
            ss = [r for t, r in first.items() if t.startswith("sampled_softmax")]
            if not ss: continue
            for t, r in first.items():
                if t.startswith("dpo"): per_repeat.setdefault(str(n), {}).setdefault(t, []).append(r["epoch_s"] / ss[0]["epoch_s"])
    for n, d in per_repeat.items():
        out["epoch_ratio_to_sampled_softmax"][n] = {t: round(statistics.median(v), 2) for t, v in d.items()}  # the median over repeats
        if a.repeats > 1: out.setdefault("epoch_ratio_per_repeat", {})[n] = {t: [round(x, 2) for x in v] for t, v in d.items()}
    big = [r for r in rows if r["n_items"] >= 1_000_000 and r["mmap_threshold"] == thresholds[0]]
    if big:
        peaks = out["peak_rss_mb_at_1m"] = {}
        for r in big: peaks[label(r)] = max(r["peak_rss_mb"], peaks.get(label(r), 0))  # the highest over repeats
        out["under_8gb_at_1m"] = all(r["peak_rss_mb"] < 8192 for r in big)
    stem = Path(a.out); stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")
    stem.with_suffix(".md").write_text(f"# Training on large catalogues\n\n`{out['command']}` ({a.threads} torch thread(s), {os.cpu_count()}-core CPU "
                                       f"machine, load average {out['machine']['load_average'][0]:.1f} at the end; {a.users:,} synthetic users)\n\n" + markdown(out))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
