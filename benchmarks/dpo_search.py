"""A small validation-only search of DPO hyperparameters for hard and topk_stochastic negatives, on one stage-1 reference.

Usage: python benchmarks/dpo_search.py > results/dpo_scientific_search.jsonl
(needs results/dpo_scientific/reference-seed0/best.pt from `python benchmarks/dpo_experiment.py --dataset scientific`).
Grid: lr {1e-4, 1e-3} x beta {0.1, 1} x CE weight {0, 1} x {pairwise with 1 negative, S-DPO with 8}; K = 50.
Prints one JSON line per run: the reference's and the best policy's validation NDCG@10 (test is not read for selection).
"""
import itertools, json
from rodpo.data import load_dataset
from rodpo.dpo import DPOConfig, fit_dpo
from rodpo.negatives import SamplerConfig
ds = load_dataset("scientific")
ref = "results/dpo_scientific/reference-seed0"
grid = [dict(lr=lr, beta=b, ce_weight=ce, form=form, m=m) for lr in (1e-4, 1e-3) for b in (0.1, 1.0) for ce in (0.0, 1.0)
        for form, m in (("pairwise", 1), ("sdpo", 8))]
for g in grid:
    for strat in ("hard", "topk_stochastic"):
        name = f"{strat}-lr{g['lr']}-b{g['beta']}-ce{g['ce_weight']}-{g['form']}{g['m']}"
        r = fit_dpo(ds, DPOConfig(ref, lr=g["lr"], beta=g["beta"], ce_weight=g["ce_weight"], form=g["form"], eval_every=5, patience=6, max_epochs=5,
                                  sampler=SamplerConfig(strat, m=g["m"], K=50), progress=False), f"runs/dpo_search/{name}", log=lambda *a: None)
        print(json.dumps(dict(run=name, ref_valid=round(r["reference_valid"]["ndcg@10"], 4), best_valid=round(r["valid"]["ndcg@10"], 4),
                              best_step=r["best_step"], steps=r["steps"], fn=round(r["mean_false_negative_rate"], 4))), flush=True)
