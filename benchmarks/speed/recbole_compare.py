"""RecBole's SASRec and rodpo's stage-1 SASRec side by side on the same data, split, architecture and machine.

    python benchmarks/speed/recbole_compare.py [--dataset beauty] [--max_epochs 200] [--time_budget 600] [--threads 1] [--resume]

One run: builds RecBole its own virtual environment (default data/recbole-venv; RecBole 1.2.1 needs older numpy,
pandas and scipy than rodpo), exports the dataset with `rodpo.recbole.to_recbole` (pre-split benchmark files, so
RecBole reads exactly rodpo's leave-one-out split), then trains RecBole's SASRec and rodpo's `fit` one after the other,
each in its own process (peak RSS per system), with full-softmax cross-entropy, the same architecture and optimiser,
early stopping on validation NDCG@10 with the same patience. Both evaluate by full ranking over the whole catalogue
without masking history items. `--time_budget` (seconds, per system) stops training early: numbers from a run cut by
the budget are marked `truncated`, and its test metrics come from the best epoch seen so far. Both trainings save their
state after every epoch, so `--resume` continues them (after a time budget, a crash or on another day) where they stopped;
a RecBole epoch on Beauty takes about 300 CPU seconds, so its run to early stopping spans several invocations on a CPU.

Writes results/benchmarks/recbole_<dataset>.json and .md and prints the JSON.
"""
from __future__ import annotations
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository (this file: benchmarks/<group>/<name>.py)
RECBOLE_PINS = ["recbole==1.2.1", "numpy<1.27", "pandas<2.3", "scipy<1.14"]
# setuptools<70 is not pinned: torch 2.13 requires setuptools>=77.0.3, and pip refuses the pair (ResolutionImpossible).

RECBOLE_DRIVER = r'''
import json, os, random, resource, sys, time, copy
import numpy as np
args = json.loads(sys.argv[1])
import torch
torch.set_num_threads(args["threads"])
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.sequential_recommender import SASRec
from recbole.trainer import Trainer
from recbole.utils import init_seed
t0 = time.perf_counter()
config = Config(model="SASRec", config_dict=args["config"])
init_seed(config["seed"], config["reproducibility"])
dataset = create_dataset(config)
train_data, valid_data, test_data = data_preparation(config, dataset)
prep = time.perf_counter() - t0
sizes = dict(n_items_with_padding=dataset.item_num, n_users_with_padding=dataset.user_num,
             train_rows=len(train_data.dataset), valid_rows=len(valid_data.dataset), test_rows=len(test_data.dataset))
model = SASRec(config, train_data.dataset).to(config["device"])
trainer = Trainer(config, model)
best, best_epoch, bad, best_state, history, peak = -1.0, 0, 0, None, [], 0.0
rss = lambda: max(peak, round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))  # over this and earlier invocations
state_file = args["state"]  # everything needed to continue after the last finished epoch, rewritten atomically each epoch
if args["resume"] and os.path.exists(state_file):
    st = torch.load(state_file, weights_only=False)
    model.load_state_dict(st["model"]); trainer.optimizer.load_state_dict(st["optimizer"])
    train_data.generator.set_state(st["shuffle_rng"]); torch.set_rng_state(st["torch_rng"])
    random.setstate(st["python_rng"]); np.random.set_state(st["numpy_rng"])
    best, best_epoch, bad, best_state, history = st["best"], st["best_epoch"], st["bad"], st["best_state"], st["history"]
    peak = st.get("peak_rss_mb", 0.0)
    print(f"resumed after epoch {len(history)} from {state_file}", file=sys.stderr, flush=True)
start = time.perf_counter(); truncated = False
for epoch in range(len(history), args["max_epochs"]):
    if bad >= args["patience"]: break
    t1, c1 = time.perf_counter(), time.process_time()
    loss = trainer._train_epoch(train_data, epoch, show_progress=False)
    t2, c2 = time.perf_counter(), time.process_time()
    score, res = trainer._valid_epoch(valid_data, show_progress=False)
    t3, c3 = time.perf_counter(), time.process_time()
    history.append(dict(epoch=epoch + 1, loss=float(loss), train_time=round(t2 - t1, 3), eval_time=round(t3 - t2, 3),
                        train_cpu=round(c2 - c1, 3), eval_cpu=round(c3 - c2, 3), valid_ndcg10=float(score)))
    print(json.dumps(history[-1]), file=sys.stderr, flush=True)
    if score > best:
        best, best_epoch, bad, best_state = float(score), epoch + 1, 0, copy.deepcopy(model.state_dict())
    else:
        bad += 1
    torch.save(dict(model=model.state_dict(), optimizer=trainer.optimizer.state_dict(), shuffle_rng=train_data.generator.get_state(),
                    torch_rng=torch.get_rng_state(), python_rng=random.getstate(), numpy_rng=np.random.get_state(), best=best,
                    best_epoch=best_epoch, bad=bad, best_state=best_state, history=history, peak_rss_mb=rss()), state_file + ".tmp")
    os.replace(state_file + ".tmp", state_file)
    if bad >= args["patience"]: break
    if time.perf_counter() - start > args["time_budget"]:
        truncated = epoch + 1 < args["max_epochs"]; break
model.load_state_dict(best_state)
t4 = time.perf_counter()
test = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
test_time = time.perf_counter() - t4
print(json.dumps(dict(system="recbole", sizes=sizes, prep_time=round(prep, 3), history=history, best_epoch=best_epoch,
                      epochs=len(history), stopped_early=bad >= args["patience"], truncated=truncated,
                      valid_best_ndcg10=best, test={k: float(v) for k, v in test.items()}, test_eval_time=round(test_time, 3),
                      peak_rss_mb=rss(), torch=torch.__version__, recbole=__import__("recbole").__version__)))
'''

SPLIT_DRIVER = r'''
import json, sys
args = json.loads(sys.argv[1])
from recbole.config import Config
from recbole.data import create_dataset
out = {}
for mode, cfg in args["configs"].items():  # the rows RecBole builds from each kind of export, as original tokens
    config = Config(model="SASRec", config_dict=cfg)
    dataset = create_dataset(config)
    rows = {}
    for split, d in zip(("train", "valid", "test"), dataset.build()):
        f = d.inter_feat
        lists, lens = f[d.item_id_list_field].numpy(), f[d.item_list_length_field].numpy()
        rows[split] = [[u, " ".join(d.id2token(d.iid_field, l[:n])), t] for u, l, n, t in
                       zip(d.id2token(d.uid_field, f[d.uid_field].numpy()), lists, lens, d.id2token(d.iid_field, f[d.iid_field].numpy()))]
    out[mode] = dict(rows=rows, n_items_with_padding=dataset.item_num)
json.dump(out, open(args["save"], "w"))
'''

RODPO_DRIVER = r'''
import json, resource, sys, time
args = json.loads(sys.argv[1])
import torch
torch.set_num_threads(args["threads"])
from rodpo.data import load_dataset, eval_set
from rodpo.model import SASRecConfig
from rodpo.runs import final_evaluation
from rodpo.train import TrainConfig, fit
import rodpo.runs as rr, rodpo.train as rt
from pathlib import Path
out = Path(args["out_dir"])
rss = lambda: round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
cpu = dict(train=[], eval=[], peak_rss_mb=0.0)  # process CPU seconds of each training loop and each evaluation (less sensitive to other load than wall time)
cpu_file = out/"cpu_times.json"  # with those of earlier (resumed) invocations, and their peak RSS
if cpu_file.exists() and (out/"history.json").exists():
    cpu = json.loads(cpu_file.read_text())
    done = len(json.loads((out/"history.json").read_text()))  # epochs in the last checkpoint: later ones are trained again
    cpu["train"], cpu["eval"] = cpu["train"][:done], cpu["eval"][:done]
elif (out/"history.json").exists():
    sys.exit(f"{out} holds epochs without their CPU times ({cpu_file.name}): run without --resume to start afresh")
_epoch, _evaluate = rt.TrainBatches.epoch, rt.evaluate
def epoch(self, *a, **k):
    c0 = time.process_time(); yield from _epoch(self, *a, **k); cpu["train"].append(time.process_time() - c0)
def evaluate(*a, **k):
    c0 = time.process_time(); r = _evaluate(*a, **k); cpu["eval"].append(time.process_time() - c0)
    cpu["peak_rss_mb"] = max(cpu["peak_rss_mb"], rss()); cpu_file.write_text(json.dumps(cpu))
    return r
rt.TrainBatches.epoch, rt.evaluate, rr.evaluate = epoch, evaluate, evaluate  # validation (train) and the final evaluation (runs)
t0 = time.perf_counter()
ds = load_dataset(args["dataset"])
cfg = TrainConfig(dataset=args["dataset"], seed=0, max_epochs=args["max_epochs"], patience=args["patience"], lr=args["lr"],
                  batch_size=args["batch_size"], eval_batch_size=args["eval_batch_size"], device="cpu", progress=False)
mcfg = SASRecConfig.for_dataset(ds)
prep = time.perf_counter() - t0
# With a time budget one epoch per call (fit resumes from last.pt), so that the budget is checked between epochs; without, one call.
pause = None if args["time_budget"] >= 1e18 else 1
start = time.perf_counter(); truncated = False; result = None
while result is None:
    result = fit(ds, cfg, mcfg, out, log=lambda m: print(m, file=sys.stderr, flush=True), stop_after=pause)
    if result is None and time.perf_counter() - start > args["time_budget"]:
        truncated = True; break
history = json.loads(open(f"{out}/history.json").read())
if truncated:  # test the best epoch so far, as fit does at the end of a full run
    t4 = time.perf_counter()
    valid_res, test_res = final_evaluation(out, ds, eval_set(ds, "valid", mcfg.max_len),
                                           torch.device("cpu"), cfg.eval_batch_size)
    test_time = time.perf_counter() - t4
    best_epoch = max(history, key=lambda h: h["valid_ndcg@10"])["epoch"]
else:
    valid_res, test_res, best_epoch, test_time = result["valid"], result["test"], result["best_epoch"], None
print(json.dumps(dict(system="rodpo", prep_time=round(prep, 3),
                      history=[dict(epoch=h["epoch"], loss=h["loss"], train_time=h["train_time"], eval_time=h["eval_time"],
                                    train_cpu=round(tc, 3), eval_cpu=round(ec, 3), valid_ndcg10=h["valid_ndcg@10"])
                               for h, tc, ec in zip(history, cpu["train"], cpu["eval"])],
                      best_epoch=best_epoch, epochs=len(history), stopped_early=not truncated and len(history) < cfg.max_epochs,
                      truncated=truncated, valid_best_ndcg10=valid_res["ndcg@10"],
                      test={k: test_res[k] for k in ("hr@10", "ndcg@10", "mrr@10")}, test_eval_time=test_time,
                      peak_rss_mb=max(cpu["peak_rss_mb"], rss()), torch=torch.__version__)))
'''


def ensure_recbole_venv(venv: Path, log: Path) -> Path:
    "RecBole's own environment, created once; the torch pin is this interpreter's torch, so pip reuses the same build (no CUDA download)."
    py = venv/"bin"/"python"
    if py.exists() and subprocess.run([py, "-c", "import recbole"], capture_output=True).returncode == 0:
        return py
    import torch
    pins = RECBOLE_PINS + [f"torch=={torch.__version__}"]
    with open(log, "w") as f:
        f.write(f"$ {sys.executable} -m venv {venv}\n$ pip install {' '.join(pins)}\n"); f.flush()
        r = subprocess.run([sys.executable, "-m", "venv", str(venv)], stdout=f, stderr=subprocess.STDOUT)
        if r.returncode == 0:
            r = subprocess.run([py, "-m", "pip", "install", *pins], stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        raise RuntimeError(f"installing RecBole into {venv} failed (exit {r.returncode}); full log {log}:\n" + "\n".join(tail))
    return py


def run_driver(python, code, args: dict, log: Path, env=None, cwd=ROOT) -> dict:
    "Run a driver in its own process (its own peak RSS); its last stdout line is its JSON result."
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
    t0 = time.perf_counter()
    with open(log, "a") as err:  # appended: a resumed run keeps the log of the invocations before it
        err.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {python} driver\n"); err.flush()
        r = subprocess.run([str(python), f.name, json.dumps(args)], stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=cwd)
    os.unlink(f.name)
    if r.returncode != 0:
        raise RuntimeError(f"{python} driver failed (exit {r.returncode}); last lines of {log}:\n" + "\n".join(log.read_text().splitlines()[-20:]))
    lines = r.stdout.strip().splitlines()
    res = json.loads(lines[-1]) if lines else {}
    res["wall_time"] = round(time.perf_counter() - t0, 1)
    return res


def check_split(py, ds, folder, name, max_len, work, env) -> dict:
    "Build RecBole's train/valid/test rows from both exports (pre-split files; name.inter split by RecBole) and compare them with rodpo's split."
    from rodpo.recbole import recbole_config, recbole_rows
    base = dict(loss_type="CE", train_neg_sample_args=None, seed=0, state="WARNING", show_progress=False, checkpoint_dir=str(work/"saved"))
    save = work/"split_rows.json"
    run_driver(py, SPLIT_DRIVER, dict(save=str(save), configs={
        "benchmark_files": recbole_config(folder, name, max_len, benchmark=True) | base,
        "inter_file": recbole_config(folder, name, max_len, benchmark=False) | base}), work/"split.log", env, cwd=work)
    got = json.loads(save.read_text()); save.unlink()
    want = {k: sorted([u, " ".join(str(i - 1) for i in h.tolist()), str(t - 1)] for u, h, t in zip(*v))
            for k, v in recbole_rows(ds, max_len).items()}
    res = {}
    for mode, g in got.items():
        same = {k: sorted(g["rows"][k]) == want[k] for k in want}
        res[mode] = dict(rows={k: len(g["rows"][k]) for k in want}, identical_to_rodpo=same,
                         n_items_with_padding=g["n_items_with_padding"])
    return res


def summary(res: dict) -> dict:
    import numpy as np
    h = res["history"]
    med = lambda key: round(float(np.median([x[key] for x in h])), 2)
    return dict(epochs=res["epochs"], best_epoch=res["best_epoch"], stopped_early=res["stopped_early"], truncated=res["truncated"],
                epoch_time_median=med("train_time"), eval_time_median=med("eval_time"),
                epoch_cpu_median=med("train_cpu"), eval_cpu_median=med("eval_cpu"),
                peak_rss_mb=res["peak_rss_mb"], valid_best_ndcg10=round(res["valid_best_ndcg10"], 4),
                **{f"test_{k.split('@')[0].lower().replace('hit', 'hr')}@10": round(v, 4) for k, v in res["test"].items() if k.lower().endswith("@10")})


def markdown(out: dict) -> str:
    rows = [("system", "train s / epoch", "eval s", "train CPU s / epoch", "eval CPU s", "peak RSS MB", "epochs", "best epoch",
             "stopped by", "test HR@10", "test NDCG@10", "test MRR@10")]
    for name in ("recbole", "rodpo"):
        s = out["summary"].get(name)
        if s is None: continue
        stop = "early stopping" if s["stopped_early"] else ("time budget (truncated)" if s["truncated"] else "max_epochs")
        rows.append((name, s["epoch_time_median"], s["eval_time_median"], s["epoch_cpu_median"], s["eval_cpu_median"],
                     s["peak_rss_mb"], s["epochs"], s["best_epoch"], stop,
                     s["test_hr@10"], s["test_ndcg@10"], s["test_mrr@10"]))
    lines = ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    r = out.get("ratios", {})
    text = "\n".join(lines) + "\n"
    if r: text += (f"\nRecBole / rodpo (medians over epochs): training epoch {r['epoch_time']}x wall time, {r['epoch_cpu']}x CPU time; "
                   f"full-ranking evaluation of the validation users {r['eval_time']}x wall, {r['eval_cpu']}x CPU; peak RSS {r['peak_rss']}x.\n"
                   "Times are medians per epoch; eval = one full-ranking pass over the validation users, metrics included.\n")
    if any(s["truncated"] for s in out["summary"].values()):
        text += ("\nTruncated: training stopped by the time budget before early stopping; test metrics are those of the best "
                 "validation epoch reached, not of a converged model.\n")
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--max_epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--time_budget", type=float, default=float("inf"), help="seconds of training per system (checked after each epoch)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each system")
    p.add_argument("--venv", default=str(ROOT/"data"/"recbole-venv"))
    p.add_argument("--out", default=None, help="output stem (default results/benchmarks/recbole_<dataset>)")
    p.add_argument("--resume", action="store_true",
                   help="continue both trainings from their last finished epoch (state under data/recbole-<dataset>/) and keep the "
                        "results of a system not run in this invocation; without it every run starts afresh")
    p.add_argument("--only", choices=["recbole", "rodpo", "split"], default=None,
                   help="run one system only, or only check that RecBole reads rodpo's split (written to <out>_split.json)")
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from rodpo.data import load_dataset
    from rodpo.model import SASRecConfig
    from rodpo.train import TrainConfig
    from rodpo.recbole import to_recbole, recbole_config
    work = ROOT/"data"/f"recbole-{a.dataset}"
    work.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(a.dataset)
    m, t = SASRecConfig.for_dataset(ds), TrainConfig()
    to_recbole(ds, work/"atomic"/a.dataset, a.dataset, m.max_len)
    common = dict(threads=a.threads, max_epochs=a.max_epochs, patience=a.patience, resume=a.resume,
                  time_budget=a.time_budget if a.time_budget != float("inf") else 1e18)
    cfg = recbole_config(work/"atomic"/a.dataset, a.dataset, m.max_len) | dict(
        n_layers=m.n_layers, n_heads=m.n_heads, hidden_size=m.hidden, inner_size=m.ffn_mult * m.hidden,
        hidden_dropout_prob=m.dropout, attn_dropout_prob=m.attn_dropout, hidden_act="gelu", layer_norm_eps=1e-12,
        initializer_range=m.init_std, loss_type="CE", train_neg_sample_args=None, learning_rate=t.lr, weight_decay=t.weight_decay,
        train_batch_size=t.batch_size, eval_batch_size=t.eval_batch_size, epochs=a.max_epochs, stopping_step=a.patience,
        metrics=["Hit", "NDCG", "MRR"], topk=[10], valid_metric="NDCG@10", use_gpu=False, device="cpu", seed=0,
        reproducibility=True, show_progress=False, worker=0, checkpoint_dir=str(work/"saved"), save_dataset=False,
        save_dataloaders=False, log_wandb=False, state="WARNING")
    out = dict(dataset=a.dataset, machine=dict(cpu_count=os.cpu_count(), platform=platform.platform(), threads=a.threads),
               settings=dict(max_epochs=a.max_epochs, patience=a.patience, time_budget_s=a.time_budget,
                             architecture=dict(hidden=m.hidden, layers=m.n_layers, heads=m.n_heads, dropout=m.dropout,
                                               attn_dropout=m.attn_dropout, ffn=m.ffn_mult * m.hidden, max_len=m.max_len),
                             lr=t.lr, batch_size=t.batch_size, eval_batch_size=t.eval_batch_size),
               notes=["Training batches: RecBole's are 256 (history, target) rows, one target each; rodpo's are 256 sequence windows "
                      "with every position a target. An epoch covers every training target once in both.",
                      "Evaluation: both rank the target among all items (RecBole full_sort_predict, padding column -inf, no history "
                      "masking for sequential models; rodpo evaluate). RecBole ranks by torch.topk (ties in arbitrary order), rodpo counts "
                      "ties against the model.",
                      "Eval time is one full-ranking pass over the validation users, metrics included."],
               results={}, summary={}, errors={})
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    stem = Path(a.out) if a.out else ROOT/"results"/"benchmarks"/f"recbole_{a.dataset}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    def earlier():  # what an earlier invocation wrote (read again before writing: invocations for each system may overlap)
        if not (a.resume and stem.with_suffix(".json").exists()): return None
        before = json.loads(stem.with_suffix(".json").read_text())
        if before.get("settings") != out["settings"] | dict(time_budget_s=before.get("settings", {}).get("time_budget_s")):
            raise SystemExit(f"--resume: {stem}.json was written with other settings ({before.get('settings')}); "
                             "run without --resume to start afresh")
        return before
    earlier()  # a mismatch stops here, before any training
    if a.only in (None, "split"):
        try:
            py = ensure_recbole_venv(Path(a.venv), work/"install.log")
            out["split_check"] = check_split(py, ds, work/"atomic"/a.dataset, a.dataset, m.max_len, work, env)
            Path(f"{stem}_split.json").write_text(json.dumps(out["split_check"], indent=2) + "\n")
            if not all(all(v["identical_to_rodpo"].values()) for v in out["split_check"].values()):
                out["errors"]["split"] = f"RecBole's rows differ from rodpo's split: {out['split_check']}"
        except Exception as e:
            out["errors"]["split"] = f"{type(e).__name__}: {e}"
        if a.only == "split":
            print(json.dumps(out["split_check"] if "split_check" in out else out["errors"], indent=2))
            return 1 if out["errors"] else 0
    if a.only in (None, "recbole"):
        try:
            py = ensure_recbole_venv(Path(a.venv), work/"install.log")
            state = work/"recbole-state.pt"
            if not a.resume: state.unlink(missing_ok=True)
            res = run_driver(py, RECBOLE_DRIVER, common | dict(config=cfg, state=str(state)), work/"recbole.log", env, cwd=work)  # RecBole writes log/ folders in its cwd
            want = dict(n_items_with_padding=ds.n_items + 1, n_users_with_padding=ds.n_users + 1, train_rows=ds.n_interactions - 3 * ds.n_users,
                        valid_rows=ds.n_users, test_rows=ds.n_users)
            if res["sizes"] != want:
                raise RuntimeError(f"RecBole read another dataset than rodpo's split: {res['sizes']} != {want}")
            out["results"]["recbole"], out["summary"]["recbole"] = res, summary(res)
        except Exception as e:
            out["errors"]["recbole"] = f"{type(e).__name__}: {e}"
            print(f"recbole_compare: RecBole side failed: {e}", file=sys.stderr)
    if a.only in (None, "rodpo"):
        rodpo_out = work/"rodpo-run"
        if rodpo_out.exists() and not a.resume:
            import shutil; shutil.rmtree(rodpo_out)  # a fresh run
        res = run_driver(sys.executable, RODPO_DRIVER, common | dict(dataset=a.dataset, lr=t.lr, batch_size=t.batch_size,
                         eval_batch_size=t.eval_batch_size, out_dir=str(rodpo_out)), work/"rodpo.log", env)
        out["results"]["rodpo"], out["summary"]["rodpo"] = res, summary(res)
    before = earlier()
    for name in ("recbole", "rodpo"):  # keep the results of a system not run in this invocation
        if before and name not in out["summary"] and name in before.get("summary", {}):
            out["results"][name], out["summary"][name] = before["results"][name], before["summary"][name]
    if before and "split_check" not in out and "split_check" in before: out["split_check"] = before["split_check"]
    if {"recbole", "rodpo"} <= set(out["summary"]):
        r, o = out["summary"]["recbole"], out["summary"]["rodpo"]
        out["ratios"] = dict(epoch_time=round(r["epoch_time_median"] / o["epoch_time_median"], 2),
                             eval_time=round(r["eval_time_median"] / o["eval_time_median"], 2),
                             epoch_cpu=round(r["epoch_cpu_median"] / o["epoch_cpu_median"], 2),
                             eval_cpu=round(r["eval_cpu_median"] / o["eval_cpu_median"], 2),
                             peak_rss=round(r["peak_rss_mb"] / o["peak_rss_mb"], 2))
    from rodpo.data import atomic_write
    text = (f"# RecBole SASRec vs rodpo stage 1 on {a.dataset}\n\n`python benchmarks/speed/recbole_compare.py "
            + " ".join(argv if argv is not None else sys.argv[1:]) + f"` ({a.threads} torch thread(s) each, {os.cpu_count()}-core CPU machine"
            + ("; with --resume, the results of earlier invocations are merged in" if a.resume else "") + ")\n\n" + markdown(out)
            + "".join(f"\n{k} failed: {v}\n" for k, v in out["errors"].items()))
    for suffix, body in ((".json", json.dumps(out, indent=2) + "\n"), (".md", text)):  # atomically: an interrupted write leaves the old file
        atomic_write(stem.with_suffix(suffix), lambda p: Path(p).write_text(body))
    print(json.dumps(dict(summary=out["summary"], ratios=out.get("ratios"), errors=out["errors"]), indent=2))
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
