"""Stage-1 runs under faults: bad configuration values, non-finite losses and weights, unusable or shared run folders,
and a process killed with SIGKILL in the middle of training."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import rodpo.objectives as O  # stage1_loss looks ce_loss up here at every call
from rodpo.data import SeqDataset, RodpoDataError, TrainBatches, eval_set, load_dataset
from rodpo.model import SASRecConfig
from rodpo.runs import RunFolderError, RunLock
from rodpo.train import TrainConfig, fit, main


def quiet(*a): pass


@pytest.fixture(scope="module")
def small(shared_data, tmp_path_factory):
    "The first 1,000 users of Beauty, read as the user's own file (items renumbered: a smaller catalogue, faster tests)."
    f = tmp_path_factory.mktemp("data") / "beauty1000.txt"
    f.write_text("".join((shared_data / "s3rec/Beauty.txt").read_text().splitlines(keepends=True)[:1000]))
    return load_dataset(f)


@pytest.fixture(autouse=True)
def one_thread():
    "One torch thread: exact repeatability between runs and no oversubscription of a small shared machine."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------- validation before work

@pytest.mark.parametrize("field,value,hint", [
    ("dataset", "", "dataset name"), ("dataset", 3, "dataset name"), ("data_dir", 5, "folder path"),
    ("seed", -1, "[0, 2**32)"), ("seed", 1.0, "[0, 2**32)"), ("seed", 2**32, "[0, 2**32)"), ("seed", True, "[0, 2**32)"),
    ("lr", -1e-3, "(0, 1)"), ("lr", 0, "(0, 1)"), ("lr", 1.5, "(0, 1)"), ("lr", float("nan"), "(0, 1)"), ("lr", "1e-3", "(0, 1)"),
    ("lr", True, "(0, 1)"),
    ("weight_decay", -0.1, ">= 0"), ("weight_decay", float("inf"), ">= 0"), ("weight_decay", None, ">= 0"),
    ("batch_size", 256.0, "positive integer"), ("batch_size", 0, "positive integer"), ("batch_size", "256", "positive integer"),
    ("max_epochs", 0, "positive integer"), ("max_epochs", 2.5, "positive integer"), ("patience", -3, "positive integer"),
    ("eval_every", False, "positive integer"), ("eval_batch_size", 0, "positive integer"),
    ("metric", "ndcg@7", "ndcg@10"), ("metric", "NDCG@10", "ndcg@10"), ("metric", ["ndcg@10"], "ndcg@10"),
    ("bucket", -1, ">= 0"), ("bucket", 1.5, ">= 0"),
    ("all_windows", "yes", "True or False"), ("mask_history", 1, "True or False"), ("progress", "false", "True or False"),
    ("device", "tpu", "'cpu'"), ("device", "cuda:x", "'cuda:N'"), ("device", "gpu", "'cpu'"), ("device", None, "'cpu'"),
    ("device", "", "'auto'"),
])
def test_train_config_rejects(field, value, hint):
    with pytest.raises(ValueError) as e:
        TrainConfig(**{field: value})
    msg = str(e.value)
    assert f"{field}={value!r}" in msg and hint in msg, msg


def test_train_config_accepts_defaults_and_edges():
    TrainConfig(); TrainConfig(seed=2**32 - 1, lr=0.5, weight_decay=0, bucket=0, device="cpu", data_dir="/x")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_unavailable_device_fails_before_the_folder_is_made(small, tmp_path):
    with pytest.raises(ValueError, match="device='cuda:1': this machine has no CUDA device"):
        fit(small, TrainConfig(device="cuda:1", progress=False), SASRecConfig(n_items=small.n_items, hidden=16), tmp_path / "r", log=quiet)
    assert not (tmp_path / "r").exists()


def test_dataset_checked_against_the_model(small, tmp_path):
    cfg = TrainConfig(max_epochs=1, progress=False)
    with pytest.raises(ValueError, match=f"model_cfg.n_items=10 but dataset .* has {small.n_items} items"):
        fit(small, cfg, SASRecConfig(n_items=10, hidden=16), tmp_path / "a", log=quiet)
    bad = SeqDataset("bad", [np.array([1, 2, 3]), np.array([2, 3, 9])], 5)
    with pytest.raises(RodpoDataError, match="item ids must be integers in 1..5"):
        fit(bad, cfg, SASRecConfig(n_items=5, hidden=16), tmp_path / "b", log=quiet)
    short = SeqDataset("short", [np.array([1, 2, 3]), np.array([2, 3])], 5)
    with pytest.raises(RodpoDataError, match="user 1 has 2 item"):
        fit(short, cfg, SASRecConfig(n_items=5, hidden=16), tmp_path / "c", log=quiet)
    assert not any((tmp_path / d).exists() for d in "abc")  # nothing was created


@pytest.mark.parametrize("call,msg", [
    (lambda ds: eval_set(ds, "train"), "split='train' must be 'valid' or 'test'"),
    (lambda ds: eval_set(ds, "test", max_len=0), "max_len=0 must be a positive integer"),
    (lambda ds: TrainBatches(ds.sequences, max_len=50, batch_size=12.5), "batch_size=12.5 must be a positive integer"),
    (lambda ds: TrainBatches(ds.sequences, bucket=-2), "bucket=-2 must be an integer >= 0"),
])
def test_data_inputs_rejected(call, msg):
    ds = SeqDataset("toy", [np.array([1, 2, 3, 4])], 4)
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        call(ds)


@pytest.mark.parametrize("argv,msg", [
    (["--progress", "flase"], "'flase' is not a boolean"),
    (["--lr", "-0.1"], "lr=-0.1 must be a number in (0, 1)"),
    (["--batch_size", "12.5"], "invalid int value"),
    (["--device", "tpu"], "device='tpu'"),
])
def test_cli_rejects(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--dataset", "beauty", "--max_epochs", "1"] + argv)
    out = str(e.value.code) + capsys.readouterr().err
    assert msg in out, out


# ---------- numerical faults

class _PoisonGrad(torch.autograd.Function):
    "Identity forward, NaN gradients backward: a finite loss whose step poisons every weight."
    @staticmethod
    def forward(ctx, x): return x.clone()

    @staticmethod
    def backward(ctx, g): return g * float("nan")


def _faulty_loss(monkeypatch, at_call, kind):
    orig, calls = O.ce_loss, [0]

    def loss(*a, **k):
        calls[0] += 1
        out = orig(*a, **k)
        if calls[0] != at_call: return out
        return out * float("nan") if kind == "nan" else _PoisonGrad.apply(out)
    monkeypatch.setattr(O, "ce_loss", loss)


@pytest.mark.parametrize("kind", ["nan", "poisoned_weights"])
def test_numerical_fault_stops_and_keeps_the_last_good_epoch(small, tmp_path, monkeypatch, kind):
    mcfg = SASRecConfig(n_items=small.n_items, hidden=16)
    cfg = TrainConfig(max_epochs=2, batch_size=128, progress=False)
    out = tmp_path / "r"
    assert fit(small, cfg, mcfg, out, log=quiet, stop_after=1) is None
    good = {f: (out / f).read_bytes() for f in ("last.pt", "best.pt", "history.json")}
    n = len(TrainBatches(small.sequences, mcfg.max_len, cfg.batch_size, cfg.seed))
    at = n if kind == "poisoned_weights" else random.Random(0).randint(2, n)  # weights: the epoch's last step
    _faulty_loss(monkeypatch, at, kind)
    want = (f"non-finite training loss nan at epoch 2, step {at} of {n}" if kind == "nan"
            else "non-finite parameters .* after epoch 2")
    with pytest.raises(FloatingPointError, match=want + ".*still holds the state after epoch 1"):
        fit(small, cfg, mcfg, out, log=quiet)
    assert {f: (out / f).read_bytes() for f in good} == good  # checkpoints and history untouched
    assert not (out / "metrics.json").exists()
    monkeypatch.undo()  # the fault is gone: the run resumes from epoch 1 and ends as an uninterrupted one
    resumed = fit(small, cfg, mcfg, out, log=quiet)
    straight = fit(small, cfg, mcfg, tmp_path / "s", log=quiet)
    assert resumed["test"] == straight["test"] and resumed["epochs"] == 2


# ---------- the run folder

def test_output_under_a_regular_file(small, tmp_path):
    (tmp_path / "file").write_text("x")
    logged = []
    with pytest.raises(RunFolderError, match=r"cannot write to the output folder .*file/run .*Nothing was trained"):
        fit(small, TrainConfig(max_epochs=1, progress=False), SASRecConfig(n_items=small.n_items, hidden=16),
            tmp_path / "file" / "run", log=logged.append)
    assert logged == []


def test_cli_output_under_a_regular_file(shared_data, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit) as e:
        main(["--dataset", "beauty", "--data_dir", str(shared_data), "--max_epochs", "1", "--out_dir", str(tmp_path / "file/run")])
    assert "rodpo-train: error: cannot write to the output folder" in str(e.value.code)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes to read-only folders; covered by the regular-file case")
def test_read_only_output_folder(small, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(); ro.chmod(0o500)
    try:
        with pytest.raises(RunFolderError, match="cannot write to the output folder"):
            fit(small, TrainConfig(max_epochs=1, progress=False), SASRecConfig(n_items=small.n_items, hidden=16), ro / "run", log=quiet)
    finally:
        ro.chmod(0o700)


def test_second_run_on_a_locked_folder(small, tmp_path):
    mcfg, cfg = SASRecConfig(n_items=small.n_items, hidden=16), TrainConfig(max_epochs=1, progress=False)
    out = tmp_path / "r"
    out.mkdir()
    with RunLock(out):
        with pytest.raises(RunFolderError, match=f"run folder {out} is in use by another run \\(pid {os.getpid()}"):
            fit(small, cfg, mcfg, out, log=quiet)
        assert not (out / "last.pt").exists()
    assert fit(small, cfg, mcfg, out, log=quiet)["epochs"] == 1  # released: the run goes ahead


# ---------- SIGKILL and resume

def _cli(data_file, out, epochs):
    return [sys.executable, "-c", "from rodpo.train import main; main()", "--dataset", str(data_file), "--hidden", "16",
            "--max_epochs", str(epochs), "--batch_size", "128", "--seed", "3", "--progress", "false", "--out_dir", str(out)]


def test_sigkill_then_resume_matches_an_uninterrupted_run(shared_data, tmp_path):
    data = tmp_path / "beauty1000.txt"  # the first 1,000 users of Beauty as the user's own file
    data.write_text("".join((shared_data / "s3rec/Beauty.txt").read_text().splitlines(keepends=True)[:1000]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # the same thread count in every process: same sums
    epochs = 6
    straight = subprocess.Popen(_cli(data, tmp_path / "straight", epochs), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    victim = subprocess.Popen(_cli(data, tmp_path / "killed", epochs), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    last = tmp_path / "killed/last.pt"
    deadline = time.time() + 120
    while not last.exists():
        assert victim.poll() is None, victim.communicate()[1].decode()[-2000:]
        assert time.time() < deadline, "no checkpoint after 120 s"
        time.sleep(0.02)
    # a second run on the same folder, while the first is training, is refused and names the holder
    with pytest.raises(SystemExit) as second:
        main(_cli(data, tmp_path / "killed", epochs)[3:])
    if victim.poll() is None:
        assert f"is in use by another run (pid {victim.pid}" in str(second.value.code), second.value.code
    time.sleep(random.uniform(0, 1.5))  # somewhere in a later epoch, or while a checkpoint is written
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the run ended before it could be killed: raise epochs"
    assert not (tmp_path / "killed/metrics.json").exists()
    done_before = json.loads(Path(tmp_path / "killed/history.json").read_text())
    resumed = subprocess.run(_cli(data, tmp_path / "killed", epochs), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    out, err = straight.communicate()
    assert straight.returncode == 0, err.decode()[-2000:]
    a = json.loads((tmp_path / "killed/metrics.json").read_text())
    b = json.loads((tmp_path / "straight/metrics.json").read_text())
    assert a["valid"] == b["valid"] and a["test"] == b["test"], (len(done_before), a["test"], b["test"])
    assert a["epochs"] == b["epochs"] == epochs and a["best_epoch"] == b["best_epoch"]
    assert "resumed" in resumed.stdout + resumed.stderr
    ha, hb = (json.loads((tmp_path / d / "history.json").read_text()) for d in ("killed", "straight"))
    assert [h["epoch"] for h in ha] == list(range(1, epochs + 1))
    assert [h["valid_ndcg@10"] for h in ha] == [h["valid_ndcg@10"] for h in hb]
    assert (tmp_path / "killed/test_per_user.csv").read_text() == (tmp_path / "straight/test_per_user.csv").read_text()
    assert not list((tmp_path / "killed").glob(".*.part"))  # temporary files of the killed write are cleaned up


_DPO_RUN = """
import sys
from rodpo.data import load_dataset
from rodpo.dpo import DPOConfig, fit_dpo
from rodpo.negatives import SamplerConfig
cfg = DPOConfig(sys.argv[2], seed=5, batch_size=16, max_epochs=2, eval_every=4, patience=1000, progress=False,
                sampler=SamplerConfig("topk_stochastic", m=2, K=10, refresh=3))
fit_dpo(load_dataset(sys.argv[1]), cfg, sys.argv[3])
"""


def test_dpo_sigkill_then_resume_matches_an_uninterrupted_run(shared_data, tmp_path):
    # the DPO stage killed at a random point resumes from its last evaluation: the same diagnostics, probes and metrics
    data = tmp_path / "beauty1000.txt"
    data.write_text("".join((shared_data / "s3rec/Beauty.txt").read_text().splitlines(keepends=True)[:1000]))
    from rodpo.data import load_dataset
    ds = load_dataset(str(data))
    fit(ds, TrainConfig(max_epochs=2, batch_size=128, progress=False), SASRecConfig(n_items=ds.n_items, hidden=16), tmp_path / "ref", log=quiet)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = lambda out: [sys.executable, "-c", _DPO_RUN, str(data), str(tmp_path / "ref"), str(tmp_path / out)]
    straight = subprocess.Popen(cmd("straight"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    victim = subprocess.Popen(cmd("killed"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    last, deadline = tmp_path / "killed/last.pt", time.time() + 120
    while not last.exists():
        assert victim.poll() is None, victim.communicate()[1].decode()[-2000:]
        assert time.time() < deadline, "no checkpoint after 120 s"
        time.sleep(0.02)
    time.sleep(random.uniform(0, 2.0))
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the run ended before it could be killed: make it longer"
    assert not (tmp_path / "killed/metrics.json").exists()
    resumed = subprocess.run(cmd("killed"), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed" in resumed.stdout
    assert straight.wait() == 0, straight.communicate()[1].decode()[-2000:]
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("killed", "straight"))
    assert a["test"] == b["test"] and a["valid"] == b["valid"] and a["steps"] == b["steps"] and a["best_step"] == b["best_step"]
    for f in ("diagnostics.json", "probes.json"):
        assert json.loads((tmp_path / "killed" / f).read_text()) == json.loads((tmp_path / "straight" / f).read_text()), f
    assert not list((tmp_path / "killed").glob(".*.part"))
