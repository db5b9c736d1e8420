"""DPO-stage speed against stage 1 on a real dataset, side by side in one process.

Usage: python benchmarks/speed/dpo_speed.py [--dataset beauty] [--strategies topk_stochastic,hard] [--max_steps 0] [--device auto] [--amp]
Times one stage-1 training epoch (full-softmax CE) and one DPO epoch per strategy (policy forward, the reference's hidden
states read from the cache `rodpo.dpo.fit_dpo` builds (the one-off pass that builds it is timed apart: `reference_cache`),
the sampler on the batch's own catalogue scores, backward, and the per-step false-negative diagnostics, as in
`rodpo.dpo.fit_dpo`), each at its stage's default batch size, plus `topk_stochastic` at the stage-1 batch size
(`dpo_topk_stochastic_batch256`). With --amp, the same stage-1 and topk_stochastic epochs under bfloat16 autocast too
(`*_amp`). With --compile, the stage-1 and topk_stochastic epochs again with the encoder under `torch.compile(mode=--compile_mode)`
(`*_compiled`; on CUDA the default mode 'reduce-overhead' replays CUDA graphs, one per batch shape, so the first epoch (the warm-up)
records them and --repeats 2 or more times the replays). With --repeats R each variant runs R epochs and the fastest counts. With --max_steps N > 0 only the first N
steps of each epoch are timed and the epoch time is extrapolated from the mean step time (marked "extrapolated").
Prints one JSON object with seconds per epoch and the ratio DPO / stage 1.
"""
import argparse, copy, json, platform, time

import numpy as np
import torch

from rodpo.data import load_dataset, eval_set, TrainBatches
from rodpo.dpo import DPOConfig, FutureIndex, dpo_step, reference_hidden, _position_keys, _step_diagnostics
from rodpo.metrics import evaluate
from rodpo.model import SASRec, SASRecConfig
from rodpo.negatives import SamplerConfig, NegativeSampler
from rodpo.distributed import autocast
from rodpo.objectives import ce_loss
from rodpo.train import TrainConfig


def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def timed_epoch(step_fn, batches, max_steps, dev, repeats=1):
    "Seconds for one epoch (or extrapolated from the first max_steps steps); the fastest of `repeats` epochs."
    n = len(batches) if max_steps <= 0 else min(max_steps, len(batches))
    best = float("inf")
    for r in range(repeats):
        it = batches.epoch(r, with_source=True)
        step_fn(*next(it)); sync(dev)  # warm-up step, not timed
        t0 = time.perf_counter()
        for _ in range(n - 1): step_fn(*next(it))
        sync(dev)
        best = min(best, (time.perf_counter() - t0) / max(n - 1, 1))
    return best * len(batches), n < len(batches)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--strategies", default="topk_stochastic,hard,random")
    p.add_argument("--model", default='{"modalities": ["id", "attributes"], "fusion": "sum"}', help="SASRecConfig overrides (JSON)")
    p.add_argument("--max_steps", type=int, default=0, help="time only this many steps per epoch (0 = the whole epoch)")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true", help="also time bfloat16 autocast variants")
    p.add_argument("--repeats", type=int, default=1, help="epochs per variant; the fastest counts (the first epoch meets new batch shapes)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--compile", action="store_true", help="also time the stage-1 and topk_stochastic epochs with the encoder compiled")
    p.add_argument("--compile_mode", default="reduce-overhead", help="torch.compile mode of the --compile variants")
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = TrainConfig(device=a.device).torch_device()
    ds = load_dataset(a.dataset)
    torch.manual_seed(0)
    mcfg = SASRecConfig.for_dataset(ds, **json.loads(a.model))
    model = SASRec(mcfg, ds.features, ds.attributes).to(dev)
    out = dict(dataset=a.dataset, device=str(dev), device_name=torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine(),
               torch=torch.__version__, threads=torch.get_num_threads(), model=mcfg.to_dict(), max_steps=a.max_steps, repeats=a.repeats, variants={})

    tc = TrainConfig()
    b1 = TrainBatches(ds.sequences, mcfg.max_len, tc.batch_size, seed=0)
    per = b1.n_targets / len(b1)
    start, stage1_s = copy.deepcopy(model.state_dict()), {}  # stage-1 epoch seconds by amp
    compiled = lambda net: torch.compile(net, mode=a.compile_mode, dynamic=False)  # one graph per batch shape (bucketed lengths)
    for amp, comp in [(False, False)] + [(True, False)] * a.amp + [(a.amp, True)] * a.compile:
        model.load_state_dict(start); opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        net = compiled(model) if comp else model

        def ce_step(x, y, users, tindex):
            with autocast(dev, amp): loss = ce_loss(net, x.to(dev), y.to(dev), per)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()

        s, extrapolated = timed_epoch(ce_step, b1, a.max_steps, dev, a.repeats)
        out["variants"]["stage1" + ("_amp" if amp else "") + ("_compiled" if comp else "")] = dict(epoch_s=round(s, 3), steps=len(b1), batch_size=tc.batch_size, extrapolated=extrapolated)
        stage1_s[amp, comp] = s
    model.load_state_dict(start)

    reference = copy.deepcopy(model).eval()
    for q in reference.parameters(): q.requires_grad_(False)
    with torch.no_grad(): ref_table = reference.item_table()
    sync(dev); t0 = time.perf_counter()
    ref_hidden = reference_hidden(reference, ref_table, ds.sequences)  # once per run, as fit_dpo does (fp32: the amp variant's steps read it too)
    sync(dev); out["variants"]["reference_cache"] = dict(seconds=round(time.perf_counter() - t0, 3), megabytes=round(ref_hidden.numel() * 4 / 2**20, 1))
    futures, offsets = FutureIndex(ds.sequences), torch.as_tensor(_position_keys(ds.sequences))
    counts = np.bincount(np.concatenate([q[:-2] for q in ds.sequences]), minlength=ds.n_items + 1)
    variants = [(s, 128, False, False, f"dpo_{s}") for s in a.strategies.split(",")] + [("topk_stochastic", 256, False, False, "dpo_topk_stochastic_batch256")]
    if a.amp: variants.append(("topk_stochastic", 128, True, False, "dpo_topk_stochastic_amp"))
    if a.compile: variants.append(("topk_stochastic", 128, a.amp, True, "dpo_topk_stochastic" + ("_amp" if a.amp else "") + "_compiled"))
    for strategy, batch_size, amp, comp, name in variants:
        cfg = DPOConfig("unused", sampler=SamplerConfig(strategy), ce_weight=1.0, device=a.device, batch_size=batch_size, amp=amp)
        policy = copy.deepcopy(reference).train()
        for q in policy.parameters(): q.requires_grad_(True)
        net = compiled(policy) if comp else policy
        popt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
        sampler = NegativeSampler(cfg.sampler, ds.n_items, counts, n_keys=ds.n_interactions)
        gen = torch.Generator(device=dev).manual_seed(0)
        b2 = TrainBatches(ds.sequences, mcfg.max_len, cfg.batch_size, seed=0)

        def dpo(x, y, users, tindex):
            m = y > 0
            pu, pi = users[:, None].expand_as(m)[m], tindex[m]
            loss, d = dpo_step(net, reference, ref_table, sampler, cfg, x.to(dev), y.to(dev), gen, (offsets[pu] + pi).to(dev), 0,
                               ref_hidden=ref_hidden)
            popt.zero_grad(set_to_none=True); loss.backward(); popt.step()
            _step_diagnostics(d, futures, pu, pi, dev)

        s2, extrapolated = timed_epoch(dpo, b2, a.max_steps, dev, a.repeats)
        out["variants"][name] = dict(epoch_s=round(s2, 3), steps=len(b2), batch_size=cfg.batch_size, extrapolated=extrapolated,
                                     ratio_to_stage1=round(s2 / stage1_s[amp, comp], 3))  # against the stage 1 of the same amp and compilation
    es = eval_set(ds, "valid", mcfg.max_len)
    ts = []
    for _ in range(3):
        sync(dev); t0 = time.perf_counter(); evaluate(model, es); sync(dev); ts.append(time.perf_counter() - t0)
    out["variants"]["eval_valid_all_users"] = dict(seconds=round(min(ts), 3), users=ds.n_users)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
