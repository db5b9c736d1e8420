"""Where the recorded negatives come from: the share of the probe users' negatives that are items of their own history,
and the share that are future items, per experiment folder and strategy (all seeds and evaluations pooled).

Usage: python benchmarks/negatives_in_history.py results/dpo_toys results/dpo_toys_exclude_history
Reads each run's probes.json (16 seeded users at their last training position, at every evaluation; rodpo.dpo.probe).
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
        ds = load_dataset(json.loads((folder / "experiment.json").read_text())["dataset"])
        runs = {}
        for f in sorted(folder.glob("*-seed*/probes.json")):
            runs.setdefault(f.parent.name.rsplit("-seed", 1)[0], []).append(json.loads(f.read_text()))
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
