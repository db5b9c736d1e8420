"""What the target log-probability diagnostic costs a DPO step that measures it: `dpo_step` with `logp_rows=rodpo.dpo.LOGP_ROWS` and
with 0 (no diagnostic), alternating blocks of steps on the same batches so that both settings meet the same machine load. `fit_dpo`
measures it at evaluation steps only, so a run pays this once every `eval_every` steps (once an epoch by default).

Usage: python benchmarks/speed/logp_cost.py [--dataset beauty] [--steps 10] [--rounds 6] [--threads 1]
Prints one JSON object: the median seconds a step of each setting over the rounds, and their ratio.
"""
import argparse, copy, json, platform, statistics, time

import numpy as np
import torch

from rodpo.data import load_dataset, TrainBatches
from rodpo.dpo import DPOConfig, dpo_step, reference_hidden, _position_keys, LOGP_ROWS
from rodpo.model import SASRec, SASRecConfig
from rodpo.negatives import SamplerConfig, NegativeSampler


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--model", default='{"modalities": ["id", "attributes"], "fusion": "sum"}', help="SASRecConfig overrides (JSON)")
    p.add_argument("--steps", type=int, default=10, help="steps a block")
    p.add_argument("--rounds", type=int, default=6, help="blocks of each setting, alternating")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ds = load_dataset(a.dataset)
    torch.manual_seed(0)
    mcfg = SASRecConfig.for_dataset(ds, **json.loads(a.model))
    reference = SASRec(mcfg, ds.features, ds.attributes).eval()
    for q in reference.parameters(): q.requires_grad_(False)
    with torch.no_grad(): ref_table = reference.item_table()
    ref_hidden = reference_hidden(reference, ref_table, ds.sequences)
    policy = copy.deepcopy(reference).train()
    for q in policy.parameters(): q.requires_grad_(True)
    cfg = DPOConfig("unused", sampler=SamplerConfig("topk_stochastic"), progress=False)
    counts = np.bincount(np.concatenate([q[:-2] for q in ds.sequences]), minlength=ds.n_items + 1)
    sampler, offsets = NegativeSampler(cfg.sampler, ds.n_items, counts, n_keys=ds.n_interactions), torch.as_tensor(_position_keys(ds.sequences))
    batches = list(zip(range(a.steps), TrainBatches(ds.sequences, mcfg.max_len, cfg.batch_size, seed=0).epoch(0, with_source=True)))
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)

    def block(rows: int) -> float:
        gen = torch.Generator().manual_seed(0)
        t0 = time.perf_counter()
        for _, (x, y, users, tindex) in batches:
            m = y > 0
            loss, _ = dpo_step(policy, reference, ref_table, sampler, cfg, x, y, gen, offsets[users[:, None].expand_as(m)[m]] + tindex[m], 0,
                               ref_hidden=ref_hidden, logp_rows=rows)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        return (time.perf_counter() - t0) / len(batches)

    block(LOGP_ROWS)  # warm-up
    times = {LOGP_ROWS: [], 0: []}
    for _ in range(a.rounds):
        for rows in (LOGP_ROWS, 0): times[rows].append(block(rows))
    with_, without = statistics.median(times[LOGP_ROWS]), statistics.median(times[0])
    print(json.dumps(dict(dataset=a.dataset, items=ds.n_items, device=platform.processor() or platform.machine(), torch=torch.__version__,
                          threads=a.threads, batch_size=cfg.batch_size, steps_a_block=a.steps, rounds=a.rounds, logp_rows=LOGP_ROWS,
                          step_s_with=round(with_, 4), step_s_without=round(without, 4), ratio=round(with_ / without, 3),
                          blocks_with=[round(t, 4) for t in times[LOGP_ROWS]], blocks_without=[round(t, 4) for t in times[0]]), indent=1))


if __name__ == "__main__":
    main()
