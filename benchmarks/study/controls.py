"""The simpler alternatives beside a study's DPO arm, on one of its backbones: the same references (retrained from the study folder's own
configuration, same seeds), the same DPO budget, and the arms `continue`, `topk_stochastic` and `dns` (DPO at one beta), their negatives
without DPO (`negatives-topk_stochastic`, `negatives-dns`) and the model continued with full CE (`continue-ce`).

Usage: python benchmarks/study/controls.py results/regimes/scientific [--backbone bce] [--beta 1.0] [--seeds 0,1,2,3,4] [--workers 2]
       [--out results/controls/scientific]

Writes an experiment folder OUT/<backbone> (rodpo.experiment; resumable: a second call trains only what is missing), then the folder's
tables with `regimes_tables.py OUT --bases continue,reference,negatives,dns`, and checks that each retrained reference has the test
metrics of the study's (a reference trained again with its seed on the same machine must give the same numbers).
"""
import argparse, json, subprocess, sys, time
from dataclasses import asdict
from pathlib import Path

from rodpo.experiment import ExperimentConfig, run_experiment

ARMS = ("continue", "topk_stochastic", "dns", "negatives-topk_stochastic", "negatives-dns", "continue-ce")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("study", help="a study folder (results/regimes/<dataset>) whose <backbone>/experiment.json gives the configuration")
    p.add_argument("--backbone", default="bce")
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--seeds", default=None, help="default: the study's")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=None, help="default: results/controls/<dataset>")
    a = p.parse_args(argv)
    study = Path(a.study)
    base = json.loads((study / a.backbone / "experiment.json").read_text())
    out = Path(a.out or f"results/controls/{study.name}")
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else base["seeds"]
    cfg = ExperimentConfig(base["dataset"], str(out / a.backbone), ARMS, seeds, (a.beta,), base["model"], base["stage1"], base["dpo"], base["sampler"])
    t = time.time()
    run_experiment(cfg, workers=a.workers)
    wall = round(time.time() - t)
    same = {}
    for s in seeds:  # the retrained references against the study's
        new, old = (json.loads((d / a.backbone / f"reference-seed{s}" / "metrics.json").read_text())["test"] for d in (out, study))
        same[s] = new == old
    cmd = "python benchmarks/study/controls.py " + " ".join(argv if argv is not None else sys.argv[1:])
    note = (f"{cmd}: the {a.backbone} references of {study} retrained (same configuration and seeds; test metrics identical to the study's for "
            f"seeds {[s for s, v in same.items() if v]}, different for {[s for s, v in same.items() if not v]}), and the arms {', '.join(ARMS)} "
            f"at beta {a.beta} with the study's DPO budget {json.dumps(base['dpo'])}; {wall} s on {a.workers} workers (this call)")
    subprocess.run([sys.executable, str(Path(__file__).with_name("regimes_tables.py")), str(out), "--bases", "continue,reference,negatives,dns",
                    "--title", f"{study.name}: the simpler alternatives ({a.backbone})", "--note", note], check=True)
    print(json.dumps(dict(out=str(out), references_identical=same, wall_s=wall, config=asdict(cfg)), indent=1))


if __name__ == "__main__":
    main()
