"""What a stage-1 training step costs on the HM4SR-style backbone (`rodpo.hm4sr`) beside rodpo's SASRec, on the same batches:
alternating blocks of steps of each model so that all of them meet the same machine load. The variants: SASRec with the main job's
item encoder (ID + text + image fused by a sparse MoE), HM4SR with its dense and its sparse alignment MoE, and HM4SR without its
auxiliary terms (the placeholder term encodes the text and image sequences a second time); with `--temporal`, HM4SR with its temporal MoE
too, every batch carrying its times (data with timestamps); with `--every-position`, HM4SR whose contrastive terms read every position of a
batch (`cl_positions` unbounded, as before the bound) beside the bounded default.

Usage: python benchmarks/speed/hm4sr_cost.py [--dataset scientific] [--modalities id,text,image] [--temporal] [--steps 10] [--rounds 4] [--threads 1]
       python benchmarks/speed/hm4sr_cost.py --dataset ml-100k+text --modalities id,text --temporal --every-position \
           > results/benchmarks/hm4sr_cost_ml-100k_cpu.json
Prints one JSON object: per variant, its parameters, the median seconds a step (forward, backward, Adam) over the rounds, and its
ratio to SASRec's.
"""
import argparse, json, platform, statistics, time

import torch

from rodpo.data import load_dataset, TrainBatches
from rodpo.model import SASRecConfig, build_model, n_parameters, timed
from rodpo.objectives import stage1_loss

VARIANTS = {
    "sasrec_sparse_moe_fusion": dict(fusion="sparse_moe"),
    "hm4sr_dense": dict(backbone="hm4sr", align_moe="dense"),
    "hm4sr_sparse": dict(backbone="hm4sr", align_moe="sparse"),
    "hm4sr_dense_no_aux": dict(backbone="hm4sr", align_moe="dense", id_cl_weight=0, category_weight=0, placeholder_weight=0),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="scientific")
    p.add_argument("--modalities", default="id,text,image")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="steps a block")
    p.add_argument("--rounds", type=int, default=4, help="blocks of each variant, in turn")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--temporal", action="store_true", help="add HM4SR with its temporal MoE; the batches carry their times")
    p.add_argument("--every-position", action="store_true", help="add HM4SR whose contrastive terms read every position of a batch")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ds = load_dataset(a.dataset)
    variants = dict(VARIANTS, **({"hm4sr_dense_temporal": dict(backbone="hm4sr", align_moe="dense", temporal_moe=True)} if a.temporal else {}),
                    **({"hm4sr_dense_every_position": dict(backbone="hm4sr", align_moe="dense", cl_positions=10**9)} if a.every_position else {}))
    models, opts = {}, {}
    for name, kw in variants.items():
        torch.manual_seed(0)
        models[name] = build_model(SASRecConfig.for_dataset(ds, modalities=tuple(a.modalities.split(",")), **kw), ds.features, ds.attributes).train()
        opts[name] = torch.optim.Adam(models[name].parameters(), lr=1e-3)
    batches = [b for _, b in zip(range(a.steps), TrainBatches(ds.sequences, 50, a.batch_size, seed=0, times=ds.when() if a.temporal else None).epoch(0))]

    def block(name) -> float:
        model, opt = models[name], opts[name]
        t0 = time.perf_counter()
        for x, y, *t in batches:
            loss = stage1_loss(model, x, y, **timed(t[0] if model.cfg.temporal_moe else None))
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        return (time.perf_counter() - t0) / len(batches)

    for name in variants: block(name)  # warm-up
    times = {name: [] for name in variants}
    for _ in range(a.rounds):
        for name in variants: times[name].append(block(name))
    base = statistics.median(times["sasrec_sparse_moe_fusion"])
    print(json.dumps(dict(dataset=a.dataset, items=ds.n_items, modalities=a.modalities.split(","), device=platform.processor() or platform.machine(),
                          torch=torch.__version__, threads=a.threads, batch_size=a.batch_size, steps_a_block=a.steps, rounds=a.rounds,
                          variants={name: dict(parameters=n_parameters(models[name]), step_s=round(statistics.median(t), 4),
                                               ratio_to_sasrec=round(statistics.median(t) / base, 3), blocks=[round(v, 4) for v in t])
                                    for name, t in times.items()}), indent=1))


if __name__ == "__main__":
    main()
