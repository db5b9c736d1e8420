"""Dense vs sparse Mixture-of-Experts: parameters, training step time and inference latency, side by side.

Usage: python benchmarks/speed/moe_speed.py [--dataset scientific] [--experts 4,8,16] [--repeats 30] [--batch 256]

Variants (ID + text + image items): `sum` fusion (no MoE), `dense_moe` and `sparse_moe` item fusion with E experts,
and sparse-MoE feed-forward blocks in the encoder (`moe_ffn`) with E experts. Inference is one request of --batch
users scored against the whole catalogue with the item representations computed once and cached (as at serving
time), top-10 taken. Timings are medians over repeats that are interleaved across variants, so machine noise hits
every variant alike; ratios to the `sum` model are reported. Prints one JSON object.
"""
import argparse, json, statistics, time

import torch

from rodpo.data import load_dataset, eval_set, TrainBatches
from rodpo.model import SASRec, n_parameters
from rodpo.objectives import ce_loss


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="scientific")
    p.add_argument("--experts", default="4,8,16")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice); 1 steadies timings on a busy machine")
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    ds = load_dataset(a.dataset)
    mods = ("id", "text", "image") if {"text", "image"} <= set(ds.features) else ("id", "attributes")
    variants = {"sum": dict(fusion="sum")}
    for E in map(int, a.experts.split(",")):
        variants[f"dense_moe_E{E}"] = dict(fusion="dense_moe", n_experts=E)
        variants[f"sparse_moe_E{E}"] = dict(fusion="sparse_moe", n_experts=E)
        variants[f"moe_ffn_E{E}"] = dict(fusion="sum", moe_ffn=True, n_experts=E)
    torch.manual_seed(0)
    models = {k: SASRec.for_dataset(ds, modalities=mods, **kw) for k, kw in variants.items()}
    opts = {k: torch.optim.Adam(m.parameters(), 1e-3) for k, m in models.items()}
    batch = next(iter(TrainBatches(ds.sequences, 50, 256, seed=0).epoch(0)))
    users = eval_set(ds, "test").histories[: a.batch]
    users = users[:, int((users > 0).any(0).int().argmax()):]  # trimmed to the longest history, as in evaluation
    tables = {}
    for k, m in models.items():
        m.eval()
        with torch.no_grad(): tables[k] = m.item_table()  # cached once per catalogue
    train_t = {k: [] for k in models}; infer_t = {k: [] for k in models}
    for r in range(a.repeats + 2):
        for k, m in models.items():
            m.train(); t0 = time.perf_counter()
            loss = ce_loss(m, *batch); opts[k].zero_grad(); loss.backward(); opts[k].step()
            t1 = time.perf_counter()
            m.eval()
            with torch.no_grad():
                t2 = time.perf_counter()
                m.score(m.last_hidden(users, tables[k]), tables[k]).topk(10)
                t3 = time.perf_counter()
            if r >= 2:  # the first two rounds warm up
                train_t[k].append(t1 - t0); infer_t[k].append(t3 - t2)
    base_train, base_inf = statistics.median(train_t["sum"]), statistics.median(infer_t["sum"])
    out = dict(dataset=a.dataset, modalities=mods, n_items=ds.n_items, batch_users=a.batch, repeats=a.repeats,
               threads=torch.get_num_threads(), torch=torch.__version__, variants={})
    for k, m in models.items():
        tr, inf = statistics.median(train_t[k]), statistics.median(infer_t[k])
        out["variants"][k] = dict(params=n_parameters(m), train_step_ms=round(tr * 1e3, 2), infer_ms=round(inf * 1e3, 2),
                                  train_vs_sum=round(tr / base_train, 3), infer_vs_sum=round(inf / base_inf, 3))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
