"""Brings committed DPO run records up to what `rodpo.dpo.fit_dpo` records today, without touching a result.

    python benchmarks/study/records.py results [more folders ...] [--check]

For every DPO run folder under the given folders (a `config.json` with a `dpo` section):
- `config.json`: the fields its arm does not read set to None (`rodpo.dpo.recorded`: `continue` and `continue-<loss>` read no beta,
  form, ce_weight or sampler; `negatives-<strategy>` no beta, form or ce_weight). Runs recorded before carried the DPOConfig defaults there.
- `metrics.json`: `beta` None for those arms, and `stage1`, the reference's stage 1 (`rodpo.dpo.stage1_record`: objective, budget and where
  it stopped), read from the reference's folder where it is committed. `backbone` is the stage-1 objective; `stage1` tells a reference
  stopped by its budget (the study's `ce-quarter`) from one stopped by early stopping.

Tables read neither field (arms are named by their folders), so no table changes. `--check` changes nothing and exits 1 if a record is not
current (a test runs it over results/).
"""
import argparse, json, sys
from pathlib import Path

from rodpo.dpo import recorded, stage1_record
from rodpo.runs import save_json


def updated(run: Path) -> dict:
    "{file name: its new content} for the records of one run folder that are not current."
    c = json.loads((run / "config.json").read_text())
    out = {}
    if c["dpo"] != recorded(c["dpo"]): out["config.json"] = {**c, "dpo": recorded(c["dpo"])}
    if (run / "metrics.json").exists():
        m = json.loads((run / "metrics.json").read_text())
        new = dict(m, beta=None) if c["dpo"].get("control") else dict(m)
        ref = Path(c["dpo"]["stage1"])
        if "stage1" not in new and (ref / "config.json").exists():
            s1 = stage1_record(ref, json.loads((ref / "config.json").read_text())["train"])
            after, ordered = "objective" if "objective" in new else "backbone", {}
            for k, v in new.items():  # stage1 after the objective, where fit_dpo writes it
                ordered[k] = v
                if k == after: ordered["stage1"] = s1
            new = ordered
        if new != m or list(new) != list(m): out["metrics.json"] = new
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a record is not current")
    a = p.parse_args(argv)
    runs = sorted({f.parent for d in a.folders for f in Path(d).rglob("config.json") if "dpo" in json.loads(f.read_text())})
    stale = {run: updated(run) for run in runs}
    stale = {run: files for run, files in stale.items() if files}
    for run, files in stale.items():
        for name, content in files.items():
            if a.check: print(f"not current: {run / name}")
            if not a.check: save_json(content, run / name)
    missing = [str(r) for r in runs if (r / "metrics.json").exists() and "stage1" not in json.loads((r / "metrics.json").read_text())]
    print(json.dumps({"runs": len(runs), "stale" if a.check else "updated": len(stale), "without_stage1 (reference not committed)": len(missing)}))
    return 1 if a.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
