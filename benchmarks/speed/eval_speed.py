"""Full-ranking evaluation and a stage-1 epoch against their bare catalogue matrix products, in one run on one thread.

Usage: python benchmarks/speed/eval_speed.py [--dataset beauty] [--repeats 3] [--train_epochs 1] [--threads 1]
                                       [--out results/benchmarks/eval_speed_cpu.json] [--no_before] [--no_train]

Evaluation (the validation users of the dataset, an untrained default SASRec, batches of 1,024 users):
- `bare_matmul`: `h @ table.T` for blocks of 1,024 users, nothing else (the floor: the products evaluation cannot avoid);
- `evaluate`: `rodpo.metrics.evaluate(model, es)`, and its parts: `encoder` (`model.last_hidden` of every batch),
  `scoring` (the same block products as `target_ranks_fused`, without the comparison) and `counting` (what the
  comparison adds: `target_ranks_fused` minus `scoring`);
- `before` (unless `--no_before`): the previous implementation composed from the same functions (every position of
  every block, the `model.score` matrix, `target_ranks` counting afterwards), with its parts, and whether its ranks equal
  the new ones.
Training: one stage-1 epoch (`ce_loss`, Adam, batches of 256) against the catalogue products of that epoch alone (for each
batch's targets, in chunks of 256 rows as `ChunkedSoftmaxCE` does: logits `h @ table.T` and the two gradient products).
`bare_matmul_reused_out`: the same 1,024-user products written into one reused buffer (the bare products allocate a
fresh 50 MB result per block, and its page faults cost as much as the arithmetic). GFLOP/s count only the catalogue
products (2 x rows x items x hidden each). Wall and CPU seconds (this process, user + system) are both given, each the
minimum over the repeats, which run interleaved; on a shared machine CPU seconds are the steadier figure, and only
ratios measured in the same run compare. Prints one JSON object and writes it to `--out`.
"""
import argparse, json, os, platform, time
from pathlib import Path

import torch

from rodpo.data import load_dataset, eval_set, TrainBatches
from rodpo.metrics import evaluate, target_ranks, target_ranks_fused
from rodpo.model import SASRec, SASRecConfig
from rodpo.objectives import ce_loss

ROOT = Path(__file__).resolve().parents[2]  # the repository (this file: benchmarks/<group>/<name>.py)


def timed(f):
    "(wall seconds, CPU seconds of this process, result) of one call."
    w, c = time.perf_counter(), time.process_time()
    r = f()
    return time.perf_counter() - w, time.process_time() - c, r


def each(f, xs):
    "Call `f` on every element, keeping no result (a list of score matrices would hold them all)."
    for x in xs: f(x)


def eval_batches(es, batch_size=1024):
    "The batches `evaluate` forms: users sorted by history length, all-padding columns dropped."
    order = (es.histories > 0).sum(1).argsort(stable=True)
    out = []
    for idx in order.split(batch_size):
        hist = es.histories[idx]
        out.append((idx, hist[:, int((hist > 0).any(0).int().argmax()):], es.targets[idx]))
    return out


def block_products(h, table, rows=256, cols=1024):
    "The products `target_ranks_fused` computes on a CPU, into the same reused buffer, with nothing done to them."
    items = table[1:]
    buf = torch.empty(rows * (cols + 1), dtype=h.dtype)
    for r in range(0, len(h), rows):
        hb = h[r:r + rows]
        for a in range(0, len(items), cols):
            b = min(a + cols, len(items))
            torch.mm(hb, items[a:b].T, out=buf[:len(hb) * (b - a)].view(len(hb), b - a))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train_epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no_before", action="store_true")
    p.add_argument("--no_train", action="store_true")
    p.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "eval_speed_cpu.json"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    load_start = os.getloadavg()
    ds = load_dataset(a.dataset)
    es = eval_set(ds, "valid")
    torch.manual_seed(0)
    model = SASRec(SASRecConfig.for_dataset(ds)).eval()
    batches = eval_batches(es)
    n_users, n_cols, d = len(es.targets), ds.n_items + 1, model.cfg.hidden
    eval_flops = 2 * n_users * n_cols * d

    with torch.no_grad():
        table = model.item_table()
        hs = [model.last_hidden(x, table) for _, x, _ in batches]
        h = torch.cat(hs)

        def bare():
            for r in range(0, n_users, 1024): h[r:r + 1024] @ table.T

        out_buf = torch.empty(1024, n_cols)

        def bare_out():  # the same products into one reused buffer: no fresh 50 MB result (page faults) per block
            for r in range(0, n_users, 1024):
                hb = h[r:r + 1024]
                torch.mm(hb, table.T, out=out_buf[:len(hb)])

        def before():  # the previous evaluate: every position of every block, the score matrix, counting afterwards
            ranks = torch.empty(n_users, dtype=torch.long)
            for idx, x, t in batches:
                ranks[idx] = target_ranks(model.score(model(x, table)[:, -1], table).float(), t)
            return ranks

        parts = {
            "bare_matmul": bare,
            "bare_matmul_reused_out": bare_out,
            "evaluate": lambda: evaluate(model, es)[1]["rank"].to_numpy(),
            "encoder": lambda: each(lambda b: model.last_hidden(b[1], table), batches),
            "ranking": lambda: each(lambda b: target_ranks_fused(b[0], table, b[1][2]), zip(hs, batches)),
            "scoring": lambda: each(lambda hb: block_products(hb, table), hs),
        }
        if not a.no_before:
            parts.update({
                "before_evaluate": before,
                "before_encoder": lambda: each(lambda b: model(b[1], table)[:, -1], batches),
                "before_scoring": lambda: each(lambda hb: model.score(hb, table), hs),
                "before_scoring_counting": lambda: each(lambda b: target_ranks(model.score(b[0], table), b[1][2]), zip(hs, batches)),
            })
        runs = {k: [] for k in parts}
        results = {}
        for _ in range(a.repeats):
            for k, f in parts.items():
                w, c, r = timed(f)
                runs[k].append((w, c))
                if r is not None: results[k] = r
    best = {k: min(w for w, _ in v) for k, v in runs.items()}
    cpu = {k: min(c for _, c in v) for k, v in runs.items()}

    def figures(t):
        "Wall or CPU figures of evaluation from the per-part times `t`."
        f = dict(bare_matmul_s=round(t["bare_matmul"], 3), bare_matmul_reused_out_s=round(t["bare_matmul_reused_out"], 3),
                 evaluate_s=round(t["evaluate"], 3),
                 ratio_evaluate_to_bare=round(t["evaluate"] / t["bare_matmul"], 3),
                 ratio_evaluate_to_bare_reused_out=round(t["evaluate"] / t["bare_matmul_reused_out"], 3),
                 bare_matmul_gflops=round(eval_flops / t["bare_matmul"] / 1e9, 1),
                 bare_matmul_reused_out_gflops=round(eval_flops / t["bare_matmul_reused_out"] / 1e9, 1),
                 evaluate_gflops=round(eval_flops / t["evaluate"] / 1e9, 1),
                 split_s=dict(encoder=round(t["encoder"], 3), scoring=round(t["scoring"], 3),
                              counting=round(t["ranking"] - t["scoring"], 3),
                              rest=round(t["evaluate"] - t["encoder"] - t["ranking"], 3)))
        if not a.no_before:
            f["before"] = dict(
                evaluate_s=round(t["before_evaluate"], 3),
                ratio_evaluate_to_bare=round(t["before_evaluate"] / t["bare_matmul"], 3),
                evaluate_gflops=round(eval_flops / t["before_evaluate"] / 1e9, 1),
                split_s=dict(encoder=round(t["before_encoder"], 3), scoring=round(t["before_scoring"], 3),
                             counting=round(t["before_scoring_counting"] - t["before_scoring"], 3)),
                speedup=round(t["before_evaluate"] / t["evaluate"], 3))
        return f

    ev = dict(users=n_users, columns=n_cols, hidden=d, scoring_gflop=round(eval_flops / 1e9, 2),
              wall=figures(best), cpu=figures(cpu),
              all_runs={k: dict(wall_s=[round(w, 3) for w, _ in v], cpu_s=[round(c, 3) for _, c in v]) for k, v in runs.items()})
    if not a.no_before:
        ev["before_ranks_equal_to_new"] = bool((results["before_evaluate"].numpy() == results["evaluate"]).all())
    out = dict(dataset=a.dataset, torch=torch.__version__, threads=torch.get_num_threads(),
               cpu=platform.processor() or platform.machine(), load_average_start=load_start, evaluation=ev)

    if not a.no_train:
        torch.manual_seed(0)
        m = SASRec(SASRecConfig.for_dataset(ds))
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        tb = TrainBatches(ds.sequences, m.cfg.max_len, 256, seed=0)
        n_targets = [int((y > 0).sum()) for _, y in tb.epoch(0)]
        g = torch.Generator().manual_seed(0)
        tab = torch.randn(ds.n_items + 1, d, generator=g)
        hmax = torch.randn(256, d, generator=g)
        gt = torch.zeros(ds.n_items, d)

        def epoch(e):
            m.train()
            for x, y in tb.epoch(e):
                loss = ce_loss(m, x, y); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()

        def products():  # forward logits and both gradient products of ChunkedSoftmaxCE, nothing else
            for n in n_targets:
                for i in range(0, n, 256):
                    hc = hmax[:min(256, n - i)]
                    z = hc @ tab[1:].T
                    z @ tab[1:]
                    gt.addmm_(z.T, hc)

        tr_runs = {"epoch": [], "products": []}
        for e in range(a.train_epochs):
            tr_runs["epoch"].append(timed(lambda: epoch(e))[:2])
            tr_runs["products"].append(timed(products)[:2])
        flops = 3 * 2 * sum(n_targets) * ds.n_items * d

        def tfig(i):
            te, tp = min(r[i] for r in tr_runs["epoch"]), min(r[i] for r in tr_runs["products"])
            return dict(epoch_s=round(te, 3), products_s=round(tp, 3), ratio_epoch_to_products=round(te / tp, 3),
                        epoch_gflops=round(flops / te / 1e9, 1), products_gflops=round(flops / tp / 1e9, 1))
        out["training"] = dict(steps=len(n_targets), targets=sum(n_targets), catalogue_gflop=round(flops / 1e9, 1),
                               wall=tfig(0), cpu=tfig(1),
                               all_runs={k: dict(wall_s=[round(w, 3) for w, _ in v], cpu_s=[round(c, 3) for _, c in v]) for k, v in tr_runs.items()})
    out["load_average_end"] = os.getloadavg()
    text = json.dumps(out, indent=2)
    print(text)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
