"""What a stage-1 training step costs on the HM4SR-style backbone (`rodpo.hm4sr`) beside rodpo's SASRec, on the same batches:
alternating blocks of steps of each model so that all of them meet the same machine load. The variants: SASRec with the main job's
item encoder (ID + text + image fused by a sparse MoE), HM4SR with its dense and its sparse alignment MoE, and HM4SR without its
auxiliary terms (the placeholder term encodes the text and image sequences a second time).

Usage: python benchmarks/speed/hm4sr_cost.py [--dataset scientific] [--steps 10] [--rounds 4] [--threads 1]
Prints one JSON object: per variant, its parameters, the median seconds a step (forward, backward, Adam) over the rounds, and its
ratio to SASRec's.
"""
import argparse, json, platform, statistics, time

import torch

from rodpo.data import load_dataset, TrainBatches
from rodpo.model import SASRecConfig, build_model, n_parameters
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
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ds = load_dataset(a.dataset)
    models, opts = {}, {}
    for name, kw in VARIANTS.items():
        torch.manual_seed(0)
        models[name] = build_model(SASRecConfig.for_dataset(ds, modalities=tuple(a.modalities.split(",")), **kw), ds.features, ds.attributes).train()
        opts[name] = torch.optim.Adam(models[name].parameters(), lr=1e-3)
    batches = [b for _, b in zip(range(a.steps), TrainBatches(ds.sequences, 50, a.batch_size, seed=0).epoch(0))]

    def block(name) -> float:
        model, opt = models[name], opts[name]
        t0 = time.perf_counter()
        for x, y in batches:
            loss = stage1_loss(model, x, y)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        return (time.perf_counter() - t0) / len(batches)

    for name in VARIANTS: block(name)  # warm-up
    times = {name: [] for name in VARIANTS}
    for _ in range(a.rounds):
        for name in VARIANTS: times[name].append(block(name))
    base = statistics.median(times["sasrec_sparse_moe_fusion"])
    print(json.dumps(dict(dataset=a.dataset, items=ds.n_items, modalities=a.modalities.split(","), device=platform.processor() or platform.machine(),
                          torch=torch.__version__, threads=a.threads, batch_size=a.batch_size, steps_a_block=a.steps, rounds=a.rounds,
                          variants={name: dict(parameters=n_parameters(models[name]), step_s=round(statistics.median(t), 4),
                                               ratio_to_sasrec=round(statistics.median(t) / base, 3), blocks=[round(v, 4) for v in t])
                                    for name, t in times.items()}), indent=1))


if __name__ == "__main__":
    main()
