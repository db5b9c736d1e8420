"""Where the recorded negatives come from: the share of the probe users' negatives that are items of their own history,
and the share that are future items, per experiment folder and strategy (all seeds and evaluations pooled).

Usage: python benchmarks/study/negatives_in_history.py results/regimes/toys/bce results/regimes/toys/sampled_softmax
An experiment folder is one holding experiment.json and DPO run folders <arm>-seed<s>/ (a study's backbone folder, or `rodpo-experiment`'s
output). Reads each run's probes.json (16 seeded users at their last training position, at every evaluation; rodpo.dpo.probe);
probes.json is not committed (.gitignore), so the folder's runs must have been trained here; a folder without any stops the script.
Prints one JSON line per folder and strategy.
"""
import argparse, json
from pathlib import Path

from rodpo.data import load_dataset


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+")
    a = p.parse_args()
    for folder in map(Path, a.folders):
        if not (folder / "experiment.json").exists(): p.error(f"{folder} is not an experiment folder (no experiment.json)")
        runs = {}
        for f in sorted(folder.glob("*-seed*/probes.json")):
            runs.setdefault(f.parent.name.rsplit("-seed", 1)[0], []).append(json.loads(f.read_text()))
        if not runs: p.error(f"{folder} holds no run with probes.json (probes are not committed: train the folder's runs first)")
        ds = load_dataset(json.loads((folder / "experiment.json").read_text())["dataset"])
        for strategy, probes in runs.items():
            n = in_history = future = 0
            for pr in probes:
                for rec in pr["records"]:
                    for u, negs, fut in zip(pr["users"], rec["negatives"], rec["negative_future"]):
                        history = set(ds.sequences[u][:len(ds.sequences[u]) - 3].tolist())  # the items before the last training target
                        n += len(negs); in_history += sum(g in history for g in negs); future += sum(fut)
            print(json.dumps(dict(folder=str(folder), strategy=strategy, runs=len(probes), negatives=n,
                                  in_history=round(in_history / n, 4), future=round(future / n, 4))))


if __name__ == "__main__":
    main()
