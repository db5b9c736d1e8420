"""The simpler alternatives beside a study's DPO arm, on one of its backbones: the same references (retrained from the study folder's own
configuration, same seeds), the same DPO budget, and the arms `continue`, `topk_stochastic` and `dns` (DPO at one beta), their negatives
without DPO (`negatives-topk_stochastic`, `negatives-dns`) and the model continued with full CE (`continue-ce`). On a full-softmax CE backbone
(`ce`, `ce-quarter`) the arms are `continue`, `topk_stochastic` and `dns`: it samples no negatives that a strategy's could replace, and
`continue-ce` is its `continue`.

Usage: python benchmarks/study/controls.py results/regimes/scientific [--backbone bce] [--beta 1.0] [--seeds 0,1,2,3,4] [--workers 2]
       [--out results/controls/scientific] [--like bce] [--bases continue,reference,negatives,dns] [--arms continue,topk_stochastic,dns]

A backbone the study did not train (`gbce`, `sampled_softmax_1000`: keys of `rodpo.regimes.BACKBONES`) takes `--like`'s configuration with
its own stage-1 objective and model overrides (`BACKBONES`, `BACKBONE_MODEL`); its references are trained here (nothing to compare them to).
Calls that add a backbone to an OUT folder keep the notes of the earlier ones in its parameters.json; the tables' Holm correction runs over
every backbone of the folder, so a backbone added to a committed folder changes its adjusted p-values: give new backbones a folder of their own.

Writes an experiment folder OUT/<backbone> (rodpo.experiment; resumable: a second call trains only what is missing), then the folder's
tables with `regimes_tables.py OUT --bases continue,reference,negatives,dns` (`--bases`), and checks that each retrained reference has the test
metrics of the study's (a reference trained again with its seed on the same machine must give the same numbers).
"""
import argparse, json, subprocess, sys, time
from dataclasses import asdict
from pathlib import Path

from rodpo.experiment import ExperimentConfig, run_experiment
from rodpo.regimes import BACKBONES, BACKBONE_MODEL
from rodpo.train import TrainConfig

ARMS = ("continue", "topk_stochastic", "dns", "negatives-topk_stochastic", "negatives-dns", "continue-ce")
CE_ARMS = ("continue", "topk_stochastic", "dns")  # a full-softmax CE backbone: no sampled negatives to replace, and continue-ce is continue


def backbone_of(command: str) -> str | None:
    "The backbone a controls.py command line names (bce where it names none); None for a line that is not such a command."
    words = command.split()
    if not any(w.endswith("controls.py") for w in words[:2]): return None
    return words[words.index("--backbone") + 1] if "--backbone" in words else "bce"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("study", help="a study folder (results/regimes/<dataset>) whose <backbone>/experiment.json gives the configuration")
    p.add_argument("--backbone", default="bce")
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--seeds", default=None, help="default: the study's")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=None, help="default: results/controls/<dataset>")
    p.add_argument("--bases", default="continue,reference,negatives,dns", help="the baselines of the folder's tables (regimes_tables.py --bases; Holm over all of them)")
    p.add_argument("--like", default=None, help="a backbone the study did not train: the study's backbone whose configuration it takes (e.g. bce)")
    p.add_argument("--arms", default=None, help=f"comma-separated; default {','.join(ARMS)}, on a full-softmax CE backbone {','.join(CE_ARMS)}")
    a = p.parse_args(argv)
    study = Path(a.study)
    if a.like is None: base = json.loads((study / a.backbone / "experiment.json").read_text())
    else:
        if a.backbone not in BACKBONES: p.error(f"--backbone {a.backbone}: one of {', '.join(BACKBONES)}")
        base = json.loads((study / a.like / "experiment.json").read_text())
        base.update(stage1={**{k: v for k, v in base["stage1"].items() if k not in ("loss", "n_negatives", "neg_sampling", "gbce_negatives", "gbce_t", "gbce_beta")}, **BACKBONES[a.backbone]},
                    model={**base["model"], **BACKBONE_MODEL.get(a.backbone, {})})
    out = Path(a.out or f"results/controls/{study.name}")
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else base["seeds"]
    ce = base["stage1"].get("loss", TrainConfig.loss) == "ce"
    arms = tuple(a.arms.split(",")) if a.arms else CE_ARMS if ce else ARMS
    if ce and (bad := [x for x in arms if x.startswith("negatives-") or x == "continue-ce"]):
        p.error(f"--arms {a.arms}: {', '.join(bad)} on the full-softmax CE backbone {a.backbone}, which samples no negatives to replace and whose continue is continue-ce; "
                f"use {','.join(CE_ARMS)}")
    cfg = ExperimentConfig(base["dataset"], str(out / a.backbone), arms, seeds, (a.beta,), base["model"], base["stage1"], base["dpo"], base["sampler"])
    t = time.time()
    run_experiment(cfg, workers=a.workers)
    wall = round(time.time() - t)
    same = {}
    for s in seeds if a.like is None else ():  # the retrained references against the study's
        new, old = (json.loads((d / a.backbone / f"reference-seed{s}" / "metrics.json").read_text())["test"] for d in (out, study))
        same[s] = new == old
    cmd = "python benchmarks/study/controls.py " + " ".join(argv if argv is not None else sys.argv[1:])
    refs = (f"the {a.backbone} references of {study} retrained (same configuration and seeds; test metrics identical to the study's for "
            f"seeds {[s for s, v in same.items() if v]}, different for {[s for s, v in same.items() if not v]})" if a.like is None else
            f"{a.backbone} references trained with the configuration of {study}'s {a.like} backbone and the stage-1 objective {json.dumps(base['stage1'])}, model {json.dumps(base['model'])}")
    note = f"{cmd}: {refs}, and the arms {', '.join(arms)} at beta {a.beta} with the study's DPO budget {json.dumps(base['dpo'])}; {wall} s on {a.workers} workers (this call)"
    old = json.loads((out / "parameters.json").read_text()).get("note", "") if (out / "parameters.json").exists() else ""
    note = "\n".join([*(line for line in old.split("\n") if line and backbone_of(line.split(":")[0]) != a.backbone), note])  # earlier backbones' notes kept
    subprocess.run([sys.executable, str(Path(__file__).with_name("regimes_tables.py")), str(out), "--bases", a.bases,
                    "--title", f"{study.name}: the simpler alternatives ({a.backbone})", "--note", note], check=True)
    print(json.dumps(dict(out=str(out), references_identical=same, wall_s=wall, config=asdict(cfg)), indent=1))


if __name__ == "__main__":
    main()
