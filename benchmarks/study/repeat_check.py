"""Does a rerun repeat the committed runs? Compares the per-run test metrics of two `runs.csv` tables, run by run.

    python benchmarks/study/repeat_check.py --before REV:results/reproduce/scientific/runs.csv \\
        --after /path/to/clone/results/reproduce/scientific/runs.csv --wall_s 350 --peak_mb 571 \\
        --command "rodpo-reproduce scientific" --out results/reproduce/scientific/repeat

`--before` and `--after` are files, or `REV:PATH` for a file as committed at a git revision. Writes `OUT.json` and
`OUT.md`: the CPU (model name, family and model from /proc/cpuinfo), each run's test metrics before and after and
whether every one is equal to the last digit, the counts, and the wall time and peak memory given.
"""
import argparse, io, json, platform, subprocess, sys
from pathlib import Path

import pandas as pd

from rodpo.data import atomic_write


def read_table(spec: str) -> pd.DataFrame:
    "A CSV file, or `REV:PATH` read from git."
    if ":" in spec and not Path(spec).exists():
        rev, path = spec.split(":", 1)
        text = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True).stdout
        return pd.read_csv(io.StringIO(text))
    return pd.read_csv(spec)


def cpu() -> dict:
    "The CPU as /proc/cpuinfo names it (model name, family, model): enough to tell two machine kinds apart."
    info = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            k = k.strip()
            if k in ("model name", "cpu family", "model") and k not in info: info[k] = v.strip()
    except OSError: pass
    return dict(model_name=info.get("model name", platform.processor()), family=info.get("cpu family"), model=info.get("model"))


def compare(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    "One row per run in both tables: its strategy, test NDCG@5 before and after, and whether every test metric is equal."
    metrics = [c for c in before.columns if c.startswith("test_") and c in after.columns]
    if not metrics: raise ValueError("the two tables share no test_* column")
    m = before.merge(after, on="run", suffixes=("_before", "_after"))
    same = pd.concat([m[f"{c}_before"] == m[f"{c}_after"] for c in metrics], axis=1).all(axis=1)
    return pd.DataFrame({"run": m.run, "strategy": m.get("strategy_before", m.run), "test_ndcg@5 before": m["test_ndcg@5_before"],
                         "test_ndcg@5 after": m["test_ndcg@5_after"], "repeated": same})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", required=True); p.add_argument("--after", required=True); p.add_argument("--out", required=True)
    p.add_argument("--wall_s", type=float, default=None, help="the rerun's wall time in seconds")
    p.add_argument("--peak_mb", type=float, default=None, help="the rerun's peak resident memory of one process, in MB")
    p.add_argument("--command", default="", help="the command that made --after")
    p.add_argument("--note", default="")
    a = p.parse_args(argv)
    t = compare(read_table(a.before), read_table(a.after))
    res = dict(command=" ".join(sys.argv), rerun=a.command, before=a.before, after=a.after, cpu=cpu(), wall_s=a.wall_s,
               peak_mb=a.peak_mb, runs=len(t), repeated=int(t.repeated.sum()), note=a.note,
               differ=sorted(t[~t.repeated].run), rows=t.to_dict(orient="records"))
    out = Path(a.out)
    atomic_write(out.with_suffix(".json"), lambda f: Path(f).write_text(json.dumps(res, indent=1, default=str) + "\n"))
    md = (f"# Rerun against committed runs\n\n`{res['command']}`\n\nCPU: {res['cpu']['model_name']} (family {res['cpu']['family']}, "
          f"model {res['cpu']['model']}); {res['repeated']} of {res['runs']} runs repeated every test metric.\n\n" + t.to_markdown(index=False) + "\n")
    atomic_write(out.with_suffix(".md"), lambda f: Path(f).write_text(md))
    print(md)


if __name__ == "__main__":
    main()
