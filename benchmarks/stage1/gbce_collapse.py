"""What gBCE with many negatives does to rodpo's SASRec: one stage-1 run per configuration, evaluated as it trains, with how far the
ranking still depends on the user.

    python benchmarks/stage1/gbce_collapse.py [--dataset scientific] [--configs "bce|1|0,gbce 256|256|0.75"] [--epochs 12]
                                              [--norm_first] [--tied_output false] [--out results/stage1_scientific_gbce/collapse]

Each config is 'label|negatives|t' (1 negative: plain BCE; otherwise gBCE with that many uniform negatives per position and calibration t),
or 'label|negatives|t|beta' with the positive's weight beta given directly in place of gSASRec's (from t; `TrainConfig.gbce_beta`): beta = negatives weighs the
positive as much as all the negatives together (1 for BCE, about 0.29 for gBCE's defaults on Scientific).
ID-only items, the method's defaults otherwise (hidden 64, dropout 0.5, Adam lr 1e-3, batch 256), seed 0, two threads. After epochs 1, 2, 3
and every third: validation NDCG@10 (all items ranked), the mean score, and for 500 validation users the spread of the scores over items
two ways: `within_user_std`, the root of the mean over users of a user's variance over items, and `item_mean_std`, the standard
deviation over items of an item's mean score over users. The first is never below the second, and the two are equal when every user gets
the same scores (the ranking does not depend on the user); `user_share` = 1 - (item_mean_std / within_user_std)^2, in [0, 1], is the share
of a user's score variance that is the user's own.
Also the correlation of the items' mean scores with their training popularity, and where the user states and the scored items sit:
`h_common`, the norm of the mean user state over those users, against `h_spread`, the mean distance of a user's state from it; `e_common`
and `e_spread`, the same over the items' rows of the table; `cos_h_e`, the cosine of the two means. Writes OUT.json and OUT.md and prints the JSON.
"""
from __future__ import annotations
import argparse, json, os, sys, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def run(ds, label, k, t, epochs, norm_first, tied_output, beta=None) -> list[dict]:
    import torch
    from rodpo.data import TrainBatches, eval_set
    from rodpo.model import SASRec, SASRecConfig
    from rodpo.objectives import Objective, stage1_loss, item_counts
    from rodpo.metrics import evaluate
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(n_items=ds.n_items, norm_first=norm_first, tied_output=tied_output))
    obj = Objective("bce", ds.n_items) if k == 1 and beta is None else Objective("gbce", ds.n_items, gbce_negatives=k, gbce_t=t, gbce_beta=beta)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches, valid = TrainBatches(ds.sequences, 50, 256, seed=0), eval_set(ds, "valid", 50)
    pop = item_counts(ds.sequences, ds.n_items)[1:].astype(float)
    rows = []
    for ep in range(epochs):
        model.train(); total = 0.0
        for x, y in batches.epoch(ep):
            loss = stage1_loss(model, x, y, batches.n_targets / len(batches), objective=obj)
            opt.zero_grad(); loss.backward(); opt.step(); total += loss.item()
        if ep < 3 or ep % 3 == 2:
            ndcg = evaluate(model, valid)[0]["ndcg@10"]
            model.eval()
            with torch.no_grad():
                table = model.item_table(); h, e = model.last_hidden(valid.histories[:500], table).double(), table[1:].double()
                s, mh, me = h @ e.T, h.mean(0), e.mean(0)
            within, across = float(s.var(1).mean().sqrt()), float(s.mean(0).std())  # mean over users of the variance over items >= the variance of the items' means
            rows.append(dict(config=label, negatives=k, t=t, beta=beta, epoch=ep + 1, loss=round(total / len(batches), 4), valid_ndcg10=round(ndcg, 4),
                             score_mean=round(float(s.mean()), 3), within_user_std=round(within, 4), item_mean_std=round(across, 4),
                             user_share=round(1 - (across / within) ** 2, 4), popularity_corr=round(float(np.corrcoef(s.mean(0).numpy(), pop)[0, 1]), 3),
                             h_common=round(float(mh.norm()), 3), h_spread=round(float((h - mh).norm(dim=1).mean()), 3),
                             e_common=round(float(me.norm()), 3), e_spread=round(float((e - me).norm(dim=1).mean()), 3),
                             cos_h_e=round(float(mh @ me / (mh.norm() * me.norm())), 3)))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="scientific")
    p.add_argument("--configs", default="bce|1|0,gbce 256|256|0.75")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--norm_first", action="store_true")
    p.add_argument("--tied_output", default="true", choices=("true", "false"))
    p.add_argument("--out", default=str(ROOT/"results"/"stage1_scientific_gbce"/"collapse"))
    a = p.parse_args(argv)
    import torch
    sys.path.insert(0, str(ROOT))
    from rodpo.data import load_dataset
    torch.set_num_threads(2)
    ds = load_dataset(a.dataset)
    t0, rows = time.time(), []
    for spec in a.configs.split(","):
        label, k, t, *beta = spec.split("|")
        rows += run(ds, label, int(k), float(t), a.epochs, a.norm_first, a.tied_output == "true", float(beta[0]) if beta else None)
    cmd = "python benchmarks/stage1/gbce_collapse.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = dict(command=cmd.strip(), dataset=a.dataset, norm_first=a.norm_first, tied_output=a.tied_output == "true", wall_s=round(time.time() - t0), rows=rows)
    stem = Path(a.out); stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    cols = ("config", "epoch", "loss", "valid_ndcg10", "score_mean", "within_user_std", "item_mean_std", "user_share", "popularity_corr", "h_common", "h_spread", "e_common", "e_spread", "cos_h_e")
    md = [f"# gBCE and the user\n\n`{out['command']}` ({a.dataset}, ID only, seed 0; {out['wall_s']} s)\n", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
