"""A sampled-softmax stage-1 step and a DPO step with the approximate pool, in one process and in turn, timed part by part.

    THP_MEM_ALLOC_ENABLE=1 python benchmarks/scale/step_parts.py [--items 1000000] [--users 100000] [--batch 256] [--steps 20]
                                   [--fused 0,1] [--index pq4] [--candidates 400] [--nprobe 32] [--rank_every 10] [--index_refresh 100]

The tasks are those of `scale_train.py` (`sampled_softmax` and `dpo_topk_stochastic_ann`: the same synthetic data, SASRec of hidden 64,
sampled softmax with 100 negatives, `topk_stochastic` with K = 50 and the sampled-softmax anchor, one thread). `scale_train.py` runs each
task in a fresh process; here both run in one, a stage-1 step then a DPO step, each with its own model and Adam, so that both meet the same
allocator and memory state, and the machine's slow spells touch both alike. For each of `--fused` (0: Adam as by default, 1: its fused
kernel) the mean time of each part of a step over `--steps` steps (after one untimed step of each, which builds the index): the forward
pass with its loss, the backward pass and the optimiser step; inside the DPO forward, the sampler (`NegativeSampler.from_embeddings`) and its
index search. An epoch ratio follows: (DPO step x steps an epoch + one index build, timed on its own, per `--index_refresh` steps) /
(stage-1 step x steps an epoch), as `scale_train.py` extrapolates its epochs.

Prints one JSON line per variant, then writes results/benchmarks/step_parts.json and .md.
"""
from __future__ import annotations
import argparse, copy, json, os, platform, statistics, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_train import rss_mb, thp_mode  # noqa: E402

PARTS = ("forward", "sampler", "search", "backward", "optimiser", "step")


def measure(a, ds, fused: bool) -> dict:
    "Both tasks' step parts on the synthetic dataset `ds`, with Adam as by default or fused."
    import torch
    from rodpo.data import TrainBatches
    from rodpo.model import SASRec, SASRecConfig
    from rodpo.objectives import Objective, stage1_loss, item_counts
    from rodpo.dpo import DPOConfig, dpo_step
    from rodpo.negatives import SamplerConfig, NegativeSampler, ItemIndex
    objective = Objective("sampled_softmax", a.items, n_negatives=100)
    torch.manual_seed(0)
    stage1 = SASRec(SASRecConfig(n_items=a.items, hidden=64)).train()
    policy = copy.deepcopy(stage1)
    reference = copy.deepcopy(stage1).eval()
    for p in reference.parameters(): p.requires_grad_(False)
    with torch.no_grad(): ref_table = reference.item_table()
    adam = lambda m: torch.optim.Adam(m.parameters(), lr=1e-3, **(dict(fused=True) if fused else {}))
    opt1, opt2 = adam(stage1), adam(policy)
    cfg = DPOConfig(stage1="(synthetic)", beta=1.0, ce_weight=1.0, batch_size=a.batch,
                    sampler=SamplerConfig(strategy="topk_stochastic", K=50, m=1, pool="ann", index=a.index, candidates=a.candidates, nprobe=a.nprobe,
                                          rank_every=a.rank_every, index_refresh=a.index_refresh))
    sampler = NegativeSampler(cfg.sampler, a.items, item_counts(ds.sequences, a.items))
    gen = torch.Generator().manual_seed(0)
    inner = dict(sampler=0.0, search=0.0)
    def timed(name, f):
        def g(*args, **kw):
            t = time.perf_counter()
            try: return f(*args, **kw)
            finally: inner[name] += time.perf_counter() - t
        return g
    sampler.from_embeddings = timed("sampler", sampler.from_embeddings)
    search = ItemIndex.search
    ItemIndex.search = timed("search", search)
    batches = TrainBatches(ds.sequences, 50, a.batch, seed=0)
    per = batches.n_targets / len(batches)
    times = {t: {k: [] for k in PARTS} for t in ("sampled_softmax", "dpo")}
    try:
        for i, (x, y) in enumerate(batches.epoch(0)):
            if i == a.steps + 1: break
            for task in ("sampled_softmax", "dpo"):
                inner.update(sampler=0.0, search=0.0)
                model, opt = (stage1, opt1) if task == "sampled_softmax" else (policy, opt2)
                t0 = time.perf_counter()
                loss = stage1_loss(model, x, y, per, objective=objective) if task == "sampled_softmax" else \
                    dpo_step(policy, reference, ref_table, sampler, cfg, x, y, gen, step=i, objective=objective)[0]
                t1 = time.perf_counter()
                opt.zero_grad(set_to_none=True); loss.backward()
                t2 = time.perf_counter()
                opt.step()
                t3 = time.perf_counter()
                if i == 0: continue  # the first step of each: warm-up, and the DPO one builds the index
                for k, v in dict(forward=t1 - t0, sampler=inner["sampler"], search=inner["search"], backward=t2 - t1, optimiser=t3 - t2, step=t3 - t0).items():
                    times[task][k].append(v)
        t = time.perf_counter()
        with torch.no_grad(): ItemIndex(policy.item_table(), sampler.cfg.nlist, sampler.cfg.nprobe, kind=sampler.cfg.index)
        build = round(time.perf_counter() - t, 3)
    finally:
        ItemIndex.search = search
    mean = {task: {k: round(statistics.fmean(v), 4) for k, v in d.items() if task == "dpo" or k not in ("sampler", "search")} for task, d in times.items()}
    n = len(batches)
    builds = -(-n // a.index_refresh)
    ratio = (mean["dpo"]["step"] * n + build * builds) / (mean["sampled_softmax"]["step"] * n)  # from the numbers as recorded
    step_ratio = [d / s for d, s in zip(times["dpo"]["step"], times["sampled_softmax"]["step"])]
    return dict(fused=fused, steps_timed=len(times["dpo"]["step"]), steps_per_epoch=n, mean_s=mean, index_build_s=build, builds_per_epoch=builds,
                epoch_ratio=round(ratio, 2), step_ratio_median=round(statistics.median(step_ratio), 2),
                step_ratio_range=[round(min(step_ratio), 2), round(max(step_ratio), 2)], rss_mb_at_end=round(rss_mb(), 1))


def markdown(out) -> str:
    a = out["settings"]
    lines = [f"# A stage-1 step and a DPO step, part by part\n", f"`{out['command']}` (one torch thread, {out['machine']['cpu_count']}-core CPU machine, "
             f"load average {out['machine']['load_average'][0]:.1f} at the end; {a['items']:,} synthetic items, {a['users']:,} users, batch {a['batch']}; "
             f"approximate pool: {a['index']}, {a['nprobe']} cells searched, {a['candidates']} candidates, index rebuilt every {a['index_refresh']} steps, "
             f"ranks every {a['rank_every']} steps; one process, the two steps in turn)\n",
             "| Adam | task | forward s | of which sampler s | of which search s | backward s | optimiser s | step s |", "|---|---|---|---|---|---|---|---|"]
    for r in out["rows"]:
        for task, m in r["mean_s"].items():
            lines.append(f"| {'fused' if r['fused'] else 'default'} | {task} | {m['forward']} | {m.get('sampler', '')} | {m.get('search', '')} | {m['backward']} | {m['optimiser']} | {m['step']} |")
    lines += ["", "| Adam | steps timed | index build s | builds/epoch | DPO step / stage-1 step, median [range] | DPO epoch / stage-1 epoch |", "|---|---|---|---|---|---|"]
    lines += [f"| {'fused' if r['fused'] else 'default'} | {r['steps_timed']} | {r['index_build_s']} | {r['builds_per_epoch']} | {r['step_ratio_median']}x "
              f"[{r['step_ratio_range'][0]}x, {r['step_ratio_range'][1]}x] | {r['epoch_ratio']}x |" for r in out["rows"]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=256, help="sequences a step, both tasks")
    p.add_argument("--steps", type=int, default=20, help="timed steps of each task (after one untimed step of each)")
    p.add_argument("--fused", default="0,1", help="0 and/or 1: Adam as by default, and/or its fused kernel")
    p.add_argument("--index", default="pq4", help="the approximate pool's index (SamplerConfig.index)")
    p.add_argument("--candidates", type=int, default=400)
    p.add_argument("--nprobe", type=int, default=32)
    p.add_argument("--rank_every", type=int, default=10)
    p.add_argument("--index_refresh", type=int, default=100)
    p.add_argument("--out", default=str(ROOT/"results"/"benchmarks"/"step_parts"))
    a = p.parse_args(argv)
    import torch
    from rodpo.negatives import INDEXES
    if a.index not in INDEXES: p.error(f"--index {a.index}: one of {', '.join(INDEXES)}")
    fuseds = [int(f) for f in a.fused.split(",")]
    if set(fuseds) - {0, 1}: p.error(f"--fused {a.fused}: 0 and/or 1")
    if a.steps < 1: p.error(f"--steps {a.steps}: a positive integer")
    from rodpo.data import synthetic_dataset
    torch.set_num_threads(1)
    ds = synthetic_dataset(a.users, a.items, seed=0)  # once for both optimisers
    rows = []
    for f in fuseds:
        rows.append(measure(a, ds, bool(f)))
        print(json.dumps(rows[-1]), flush=True)
    cmd = "python benchmarks/scale/step_parts.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = dict(command=cmd.strip(), settings=vars(a) | dict(threads=1), rows=rows,
               machine=dict(cpu_count=os.cpu_count(), platform=platform.platform(), load_average=os.getloadavg(), transparent_hugepage=thp_mode(),
                            thp_mem_alloc=os.environ.get("THP_MEM_ALLOC_ENABLE")))
    stem = Path(a.out); stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
