"""One training run, stage 1 then DPO, on a slice of Beauty: run as one process, or under torchrun as several
(tests/test_distributed.py compares the two). Usage: [torchrun --nproc_per_node 2] python tests/ddp_worker.py <data file> <out dir> [strategy [stop_after]]
stop_after N pauses the DPO stage after N evaluations (a rerun in the same folder resumes it)."""
import json
import sys
from pathlib import Path

from rodpo.data import load_dataset
from rodpo.dpo import DPOConfig, fit_dpo
from rodpo.model import SASRecConfig
from rodpo.negatives import SamplerConfig
from rodpo.distributed import init_distributed, world
from rodpo.train import TrainConfig, fit

data, out = Path(sys.argv[1]), Path(sys.argv[2])
strategy = sys.argv[3] if len(sys.argv) > 3 else "hard"
stop_after = int(sys.argv[4]) if len(sys.argv) > 4 else None
init_distributed("cpu")
ds = load_dataset(data)
mcfg = SASRecConfig.for_dataset(ds, hidden=32, dropout=0.0, attn_dropout=0.0)  # no dropout: one process and several see the same network
quiet = lambda *a: None
s1 = fit(ds, TrainConfig(dataset=str(data), max_epochs=3, batch_size=96, eval_batch_size=512, progress=False, device="cpu"), mcfg, out / "stage1", log=quiet)
cfg = DPOConfig(str(out / "stage1"), sampler=SamplerConfig(strategy, m=2, K=20), ce_weight=1.0, lr=1e-3, batch_size=96, max_epochs=1,
                eval_every=10, patience=100, progress=False, device="cpu")
r = fit_dpo(ds, cfg, out / "dpo", log=quiet, stop_after=stop_after)
if r is not None and world()[0] == 0:
    (out / "done.json").write_text(json.dumps(dict(processes=world()[1], stage1_test=s1["test"], dpo_test=r["test"])))
