"""Stage-1 speed on a real dataset: seconds per training epoch and for full-ranking evaluation of all users.

Usage: python benchmarks/speed/stage1_speed.py [--dataset beauty] [--epochs 2] [--batch_size 256] [--device auto]
Prints one JSON object (machine-readable); variants are run side by side in the same process.
"""
import argparse, json, os, platform, time

import torch

from rodpo.data import load_dataset, eval_set, TrainBatches
from rodpo.metrics import evaluate
from rodpo.model import SASRec, SASRecConfig
from rodpo.objectives import ce_loss
from rodpo.train import TrainConfig


def epoch_time(model, batches, opt, dev, epoch):
    model.train()
    t0 = time.perf_counter()
    for x, y in batches.epoch(epoch):
        loss = ce_loss(model, x.to(dev), y.to(dev))
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    if dev.type == "cuda": torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch_sizes", default="256,1024")
    p.add_argument("--device", default="auto")
    a = p.parse_args()
    dev = TrainConfig(device=a.device).torch_device()
    ds = load_dataset(a.dataset)
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(n_items=ds.n_items)).to(dev)
    out = dict(dataset=a.dataset, device=str(dev), torch=torch.__version__, threads=torch.get_num_threads(),
               cpu=platform.processor() or platform.machine(), n_users=ds.n_users, n_items=ds.n_items, variants={})
    for bs in map(int, a.batch_sizes.split(",")):
        batches = TrainBatches(ds.sequences, 50, bs, seed=0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        times = [epoch_time(model, batches, opt, dev, e) for e in range(a.epochs)]
        out["variants"][f"train_batch{bs}"] = dict(epoch_s=round(min(times), 3), epoch_s_all=[round(t, 3) for t in times], steps=len(batches))
    for split in ("valid", "test"):
        es = eval_set(ds, split)
        ts = []
        for _ in range(3):
            t0 = time.perf_counter(); evaluate(model, es, batch_size=1024); ts.append(time.perf_counter() - t0)
        out["variants"][f"eval_{split}_all_users"] = dict(seconds=round(min(ts), 3), users=ds.n_users)
    es = eval_set(ds, "test")
    t0 = time.perf_counter(); evaluate(model, es, batch_size=1024, mask_history=True)
    out["variants"]["eval_test_mask_history"] = dict(seconds=round(time.perf_counter() - t0, 3), users=ds.n_users)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
