"""Data-parallel training: two processes under torchrun (gloo, CPU) against one process with the same global batch."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    "The same run (stage 1, then DPO with hard negatives) as one process and as two torchrun processes."
    d = tmp_path_factory.mktemp("ddp")
    data = d / "beauty1200.txt"
    data.write_text("".join((shared_data / "s3rec/Beauty.txt").read_text().splitlines(keepends=True)[:1200]))
    one = _run([str(WORKER), str(data), str(d / "one")])
    assert one.returncode == 0, one.stderr[-3000:]
    two = _torchrun(data, d / "two")
    assert two.returncode == 0, two.stderr[-3000:]
    return d / "one", d / "two"


def _run(args):
    return subprocess.run([sys.executable, *args], env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)


def _torchrun(data, out, *extra):
    return _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER), str(data), str(out), *extra])


def test_two_processes_ran(runs):
    one, two = runs
    assert json.loads((one / "done.json").read_text())["processes"] == 1
    assert json.loads((two / "done.json").read_text())["processes"] == 2
    assert json.loads((two / "stage1/metrics.json").read_text())["processes"] == 2


def test_stage1_loss_trajectory_matches_one_process(runs):
    one, two = (json.loads((r / "stage1/history.json").read_text()) for r in runs)
    assert len(one) == len(two) == 3
    np.testing.assert_allclose([h["loss"] for h in two], [h["loss"] for h in one], rtol=1e-4)
    np.testing.assert_allclose([h["valid_ndcg@10"] for h in two], [h["valid_ndcg@10"] for h in one], rtol=1e-3, atol=1e-4)


def test_dpo_loss_trajectory_matches_one_process(runs):
    one, two = (json.loads((r / "dpo/diagnostics.json").read_text()) for r in runs)
    assert len(one) == len(two) > 10
    np.testing.assert_allclose([s["loss"] for s in two], [s["loss"] for s in one], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose([s["negative_rank"] for s in two], [s["negative_rank"] for s in one], rtol=1e-3)
    a, b = (json.loads((r / "done.json").read_text())["dpo_test"] for r in runs)
    np.testing.assert_allclose(b["ndcg@10"], a["ndcg@10"], rtol=1e-3, atol=1e-4)


def test_two_process_dpo_paused_and_resumed_ends_where_an_uninterrupted_run_ends(runs):
    one, two = runs
    data, out = one.parent / "beauty1200.txt", one.parent / "paused"
    first = _torchrun(data, out, "hard", "1")  # the DPO stage stops after its first evaluation
    assert first.returncode == 0, first.stderr[-3000:]
    assert not (out / "dpo/metrics.json").exists() and (out / "dpo/last.pt").exists()
    second = _torchrun(data, out, "hard")
    assert second.returncode == 0, second.stderr[-3000:]
    resumed, straight = (json.loads((r / "dpo/diagnostics.json").read_text()) for r in (out, two))
    assert [s["loss"] for s in resumed] == [s["loss"] for s in straight]
    assert json.loads((out / "done.json").read_text())["dpo_test"] == json.loads((two / "done.json").read_text())["dpo_test"]
