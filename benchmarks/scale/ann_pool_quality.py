"""The approximate pool against the exact one on real data: test metrics paired over users and seeds, the pools' recall of the exact
top-50 by the index's age, the false-negative rate and the DPO wall time, from an experiment folder with a `pool` sweep.

    python benchmarks/scale/ann_pool_quality.py results/ann_pool/beauty [results/ann_pool/toys ...]

The folder is what `rodpo-experiment --strategies topk_stochastic --sweep 'pool="exact","ann"' --sweep_only` writes (its `sweeps.json`
names the run of each pool and seed). Per-user test values come from each run's `test_ranks.npz`; `rodpo.experiment.paired_comparison`
gives the relative change of ann against exact with its paired bootstrap 95% CI and the Wilcoxon p-value. Recall comes from the runs'
`diagnostics.json` (`pool_recall`: the share of the exact top-K in the pools, measured each step on `rank_rows` positions), grouped by
`index_age` (steps since the index was built). Writes ann_vs_exact.json and ann_vs_exact.md in each folder and prints the JSON.
"""
from __future__ import annotations
import json, sys
from types import SimpleNamespace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from rodpo.experiment import paired_comparison, format_change, format_p
from rodpo.metrics import metrics_from_ranks
from rodpo.runs import load_ranks

AGES = ((0, 9), (10, 49), (50, 99), (100, 999), (1000, 10**9))


def recall_by_nprobe(folder: Path, runs: dict, cfg: dict, positions: int = 2048, nprobes=(8, 16, 32, 64)) -> dict | None:
    """Recall of the exact top-K in fresh pools at each of `nprobes`, with the runs' index (`cfg`: its kind, metric, cells and candidates), for each seed's selected ann policy (its best.pt, which stays on the machine
    that trained it: None without it), over the first `positions` training positions of epoch 0."""
    import torch
    from rodpo.data import load_dataset, TrainBatches
    from rodpo.negatives import SamplerConfig, NegativeSampler
    from rodpo.runs import load_checkpoint
    if not all((r/"best.pt").exists() for r in runs.values()): return None
    ds = load_dataset(json.loads((folder/"experiment.json").read_text())["dataset"])
    out = {}
    for seed, run in sorted(runs.items()):
        policy = load_checkpoint(run/"best.pt", "cpu").eval()
        hs, ys = [], []
        with torch.no_grad():
            table = policy.item_table()
            for x, y in TrainBatches(ds.sequences, policy.cfg.max_len, 128, seed).epoch(0):
                m = y > 0
                hs.append(policy(x, table)[m]); ys.append(y[m])
                if sum(len(v) for v in ys) >= positions: break
        h, y = torch.cat(hs)[:positions], torch.cat(ys)[:positions]
        for nprobe in nprobes:
            c = SamplerConfig("topk_stochastic", K=cfg["K"], pool="ann", candidates=cfg["candidates"], nlist=cfg["nlist"], nprobe=nprobe, index_refresh=1, rank_rows=len(h),
                              index=cfg.get("index", "flat"), index_metric=cfg.get("index_metric", "ip"))  # as the runs' index; folders recorded before a field was added had its default
            sampler = NegativeSampler(c, ds.n_items)
            rec = sampler.from_embeddings(h, table, y, generator=torch.Generator().manual_seed(0), step=0, with_ranks=True)[2]
            out.setdefault(str(nprobe), []).append(round(float(rec.mean()), 4))
    return dict(positions=positions, cells=sampler.index.nlist, by_nprobe=out)


def sweep_runs(folder: Path, field: str, example: str) -> dict:
    "{value: {seed: run folder}} of the finished runs of the experiment folder's topk_stochastic sweep of `field` (its sweeps.json)."
    points = json.loads((folder/"sweeps.json").read_text()).get(f"topk_stochastic {field}")
    if not points: raise SystemExit(f"{folder}: sweeps.json has no 'topk_stochastic {field}' sweep; run rodpo-experiment with --sweep '{example}'")
    runs = {}
    for value, seed, name in points:
        if not (folder/name/"metrics.json").exists(): raise SystemExit(f"{folder/name}: not finished (no metrics.json); run the experiment again to finish it")
        runs.setdefault(value, {})[seed] = folder/name
    return runs


def shown(folder: Path) -> str:
    return str(folder.relative_to(ROOT) if folder.is_absolute() and folder.is_relative_to(ROOT) else folder)


def compare(arm: dict, base: dict, seeds, arm_name: str, base_name: str) -> dict:
    "Test NDCG@5, MRR@5 and NDCG@10 of the runs `arm` against `base` ({seed: run folder}), paired over users and `seeds`: means, relative change, CI, Wilcoxon p."
    per_user = lambda runs, k: np.stack([metrics_from_ranks(load_ranks(runs[s])[1])[k].to_numpy() for s in seeds])
    out = {}
    for k in ("ndcg@5", "mrr@5", "ndcg@10"):
        r = paired_comparison(per_user(arm, k), per_user(base, k))
        out[k] = {base_name: round(float(r["base_mean"]), 5), arm_name: round(float(r["mean"]), 5), "change": format_change(SimpleNamespace(**r)),
                  "p_text": format_p(r["p"]), **{x: float(r[x]) for x in ("rel_change", "ci_low", "ci_high", "p", "mde")}}
    return out


def age_label(lo: int, hi: int) -> str:
    "The key of an index-age group: '10-49', or '400+' for the open-ended last one."
    return f"{lo}-{hi}" if hi < 10**9 else f"{lo}+"


def recall_by_age(diag: list, ages=AGES) -> dict:
    "The pools' recall of the exact top-K (`pool_recall` of the steps of `diag` that measured it) grouped by the index's age: mean, lowest step, steps."
    out = {}
    for lo, hi in ages:
        v = [d["pool_recall"] for d in diag if "pool_recall" in d and lo <= d["index_age"] <= hi]
        if v: out[age_label(lo, hi)] = dict(mean=round(float(np.mean(v)), 4), min=round(float(np.min(v)), 4), steps=len(v))
    return out


def one(folder: Path) -> dict:
    runs = sweep_runs(folder, "pool", "pool=\"exact\",\"ann\"")
    seeds = sorted(set(runs["exact"]) & set(runs["ann"]))
    out = dict(folder=shown(folder), seeds=seeds, comparison=compare(runs["ann"], runs["exact"], seeds, "ann", "exact"))
    metrics = {pool: [json.loads((runs[pool][s]/"metrics.json").read_text()) for s in seeds] for pool in runs}
    diag = [d for s in seeds for d in json.loads((runs["ann"][s]/"diagnostics.json").read_text()) if "pool_recall" in d]
    by_age = recall_by_age(diag)
    cfg = json.loads((runs["ann"][seeds[0]]/"config.json").read_text())["dpo"]["sampler"]
    out["recall_by_nprobe"] = recall_by_nprobe(folder, runs["ann"], cfg)
    out.update(sampler=cfg, pool_recall=round(float(np.mean([d["pool_recall"] for d in diag])), 4), pool_recall_by_index_age=by_age,
               false_negative_rate={pool: round(float(np.mean([m["mean_false_negative_rate"] for m in metrics[pool]])), 5) for pool in metrics},
               dpo_wall_s={pool: [m["wall_s"] for m in metrics[pool]] for pool in metrics},
               steps={pool: [m["steps"] for m in metrics[pool]] for pool in metrics})
    md = [f"# Approximate against exact pool: {out['folder']}", "",
          f"`python benchmarks/scale/ann_pool_quality.py {out['folder']}`; topk_stochastic DPO, seeds {seeds}; index: {cfg['candidates']} candidates, "
          f"{cfg['nprobe']} cells searched, rebuilt every {cfg['index_refresh']} steps" + (f", index {cfg['index']}" if cfg.get("index", "flat") != "flat" else "")
          + (", cells by Euclidean distance (index_metric 'l2')" if cfg.get("index_metric", "ip") == "l2" else ""), "",
          "| test metric | exact | ann | ann vs exact [95% CI] | Wilcoxon p |", "|---|---|---|---|---|"]
    md += [f"| {k} | {c['exact']:.5f} | {c['ann']:.5f} | {c['change']} | {c['p_text']} |" for k, c in out["comparison"].items()]
    md += ["", f"Recall of the exact top-{cfg['K']} in the pools: "
           f"{out['pool_recall']} over all steps; by the index's age (steps since its build):", "",
           "| index age | mean recall | lowest step | steps |", "|---|---|---|---|"]
    md += [f"| {a} | {v['mean']} | {v['min']} | {v['steps']} |" for a, v in by_age.items()]
    if out["recall_by_nprobe"]:
        md += ["", f"Recall of the exact top-{cfg['K']} in a fresh pool by the cells searched (`nprobe`), for each seed's selected ann policy (the runs' index), over "
               f"{out['recall_by_nprobe']['positions']:,} training positions:", "", "| nprobe | recall by seed |", "|---|---|"]
        md += [f"| {k} | {', '.join(map(str, v))} |" for k, v in out["recall_by_nprobe"]["by_nprobe"].items()]
    md += ["", f"False-negative rate: exact {out['false_negative_rate']['exact']}, ann {out['false_negative_rate']['ann']}. "
           f"DPO wall time (s, by seed): exact {out['dpo_wall_s']['exact']}, ann {out['dpo_wall_s']['ann']}."]
    (folder/"ann_vs_exact.json").write_text(json.dumps(out, indent=1) + "\n")
    (folder/"ann_vs_exact.md").write_text("\n".join(md) + "\n")
    return out


def main(argv=None):
    folders = [Path(f) for f in (argv if argv is not None else sys.argv[1:])]
    if not folders: raise SystemExit(__doc__)
    print(json.dumps([one(f) for f in folders], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
