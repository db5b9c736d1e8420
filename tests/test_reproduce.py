"The reproduction notebook as a user runs it: papermill with parameters, outputs on disk, clear errors for bad parameters."
import json
import re
import time

import nbformat
import pandas as pd
import pytest

from conftest import ROOT
from rodpo.reproduce import _cli_value, check_parameters_cell, dataset_folder, main, reproduce

NB = ROOT / "nbs" / "reproduce.ipynb"


def test_parameters_cell_is_tagged():
    names = check_parameters_cell(NB)
    assert {"dataset", "modalities", "fusion", "strategies", "seeds", "device", "out_dir", "quick", "k_sweep"} <= set(names)


def test_quick_reproduction_through_papermill(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("RODPO_DATA", str(shared_data))
    for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # one thread in the kernel: a busy machine cannot change how sums are split, so
        monkeypatch.setenv(v, "1")                   # the K = 1 sweep run below repeats the hard run to the last bit
    lines = []
    table = reproduce(["scientific"], tmp_path, parameters=dict(quick=True), timeout=900, log=lines.append)
    done = [l for l in lines if re.match(r"scientific: \[\d/5\] \S+ +valid ndcg@10 0\.\d{4}  test ndcg@5 0\.\d{4} ", l)]
    assert len(done) == 5 and done[-1].startswith("scientific: [5/5]") and "elapsed" in done[-1], lines  # one line per finished run, in order
    out = tmp_path / "scientific"
    for f in ("reproduce.ipynb", "summary.csv", "summary.json", "runs.csv", "sweep_K.csv", "parameters.json",
              "comparison.html", "false_negative_rate.html", "sweep_K.html", "expert_load.html"):
        assert (out / f).exists(), f
    assert set(table.strategy) == {"reference", "continue", "hard", "topk_stochastic", "negatives-topk_stochastic"} and (table.dataset == "scientific").all()
    params = json.loads((out / "parameters.json").read_text())
    assert params["quick"] is True and params["resolved"]["fusion"] == "sparse_moe" and params["resolved"]["seeds"] == [0]
    sweep = pd.read_csv(out / "sweep_K.csv")
    assert sorted(sweep.K.unique()) == [1, 20]
    # K = 1 with one negative is the hard strategy: the sweep reads the hard run, and K = 20 (the arm's K in quick mode) the arm's run
    assert sweep.set_index("K").run.to_dict() == {1: "hard-seed0", 20: "topk_stochastic-seed0"}
    hard = pd.read_csv(out / "runs.csv").set_index("strategy").loc["hard"]
    assert sweep[sweep.K == 1]["test_ndcg@5"].iloc[0] == hard["test_ndcg@5"]
    assert not list(out.glob("sweep-*"))  # nothing trained twice
    nb = json.loads((out / "reproduce.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in nb["cells"])  # papermill used the tag


@pytest.mark.parametrize("params, message", [
    (dict(dataset="beuaty"), "beuaty"),
    (dict(strategies=["hard", "hardest"]), "hardest"),
    (dict(fusion="mix"), "mix"),
    (dict(seeds=3), "seeds=3 must be a list"),
    (dict(seeds="[0, 1"), "seeds='[0, 1' is not a JSON list"),
    (dict(K=0), "K=0"),
    (dict(quick="false"), "quick='false' must be True or False"),
])
def test_bad_parameters_fail_with_a_clear_message(shared_data, tmp_path, monkeypatch, params, message):
    import papermill as pm
    monkeypatch.setenv("RODPO_DATA", str(shared_data))
    with pytest.raises(pm.PapermillExecutionError) as e:
        pm.execute_notebook(str(NB), str(tmp_path / "out.ipynb"), parameters=dict(params, out_dir=str(tmp_path / "o")),
                            cwd=str(ROOT), progress_bar=False)
    assert message in str(e.value)
    assert not (tmp_path / "o" / "runs.csv").exists()  # nothing trained


# ---------- the validation cell alone: the notebook's cells up to "## Training", without papermill

def checked(out_dir, **params) -> dict:
    "Run the parameters cell, `params` (as papermill injects them) and the cells before '## Training' with `out_dir`; their namespace."
    nb = nbformat.read(NB, as_version=4)
    start = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    stop = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Training"))
    ns = {}
    exec(nb.cells[start].source, ns)
    ns.update(params, out_dir=str(out_dir))
    for c in nb.cells[start + 1:stop]:
        if c.cell_type == "code":
            exec(c.source, ns)
    return ns


def validate(tmp_path, **params):
    "The resolved parameters of `checked` (written to parameters.json)."
    checked(tmp_path / "o", **params)
    return json.loads((tmp_path / "o" / "parameters.json").read_text())["resolved"]


def test_list_parameters_given_as_json_text(shared_data, tmp_path, monkeypatch):
    "papermill -p seeds '[0]' passes the text '[0]': the notebook reads it as JSON, as rodpo-reproduce -p does"
    monkeypatch.setenv("RODPO_DATA", str(shared_data))
    r = validate(tmp_path, seeds="[0, 2]", strategies='["hard", "dns"]', k_sweep="[1, 5]", modalities='["id", "text"]')
    assert r == dict(modalities=["id", "text"], fusion="sparse_moe", backbone="sasrec", seeds=[0, 2], strategies=["hard", "dns"])


def test_the_hm4sr_backbone_resolves_its_own_modalities_and_fusion(shared_data, tmp_path, monkeypatch):
    "-p backbone hm4sr: one encoder per modality among id, text, image (attributes feed its category term), fused by its alignment MoE."
    monkeypatch.setenv("RODPO_DATA", str(shared_data))
    ns = checked(tmp_path / "o", backbone="hm4sr", align_moe="sparse")
    assert ns["cfg"].model == dict(modalities=("id", "text", "image"), fusion="sum", backbone="hm4sr", align_moe="sparse")
    assert checked(tmp_path / "t", dataset="toys", backbone="hm4sr")["cfg"].model["modalities"] == ("id",)  # toys: attributes only
    timed = checked(tmp_path / "m", dataset="ml-100k", backbone="hm4sr", temporal_moe=True)  # MovieLens-100k has timestamps
    assert timed["cfg"].model == dict(modalities=("id",), fusion="sum", backbone="hm4sr", align_moe="dense", temporal_moe=True)
    with pytest.raises(ValueError, match="temporal_moe=True is a part of the hm4sr backbone: add -p backbone hm4sr"):
        checked(tmp_path / "s", dataset="ml-100k", temporal_moe=True)


@pytest.mark.parametrize("params", [dict(seeds=3), dict(seeds="[0"), dict(strategies="hard"), dict(k_sweep="1, 10"),
                                    dict(modalities="id"), dict(quick="yes")])
def test_every_example_in_an_error_message_works(shared_data, tmp_path, monkeypatch, params):
    "The `-p NAME VALUE` an error suggests is accepted, read as papermill's CLI reads it and as rodpo-reproduce reads it"
    from papermill.cli import _resolve_type
    monkeypatch.setenv("RODPO_DATA", str(shared_data))
    with pytest.raises(ValueError) as e:
        validate(tmp_path, **params)
    m = re.search(r"e\.g\. -p (\w+) (?:'(.+?)'|(\S+))$", str(e.value))
    assert m and m.group(1) == next(iter(params)), str(e.value)
    text = m.group(2) or m.group(3)
    for value in (_resolve_type(text), _cli_value(text)):
        validate(tmp_path, **{m.group(1): value})


# ---------- rodpo-reproduce: output folders and timeouts, with a stand-in notebook (no training)

STUB_CELLS = ["import json\nfrom pathlib import Path\nimport pandas as pd\nfrom rodpo.data import load_dataset",
              "ds = load_dataset(dataset)\nout = Path(out_dir)\nout.mkdir(parents=True, exist_ok=True)\n"
              "pd.DataFrame(dict(strategy=['reference'], users=[ds.n_users], quick=[quick], seeds=[json.dumps(seeds)]))"
              ".to_csv(out / 'summary.csv', index=False)"]


def stub_notebook(root, *cells):
    "A notebook in root/nbs with a parameters cell like the reproduction notebook's (tagged), then `cells`."
    (root / "nbs").mkdir(parents=True, exist_ok=True)
    params = nbformat.v4.new_code_cell("dataset = 'scientific'\nout_dir = None\nquick = False\nseeds = [0, 1, 2]",
                                       metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(cells=[params] + [nbformat.v4.new_code_cell(c) for c in cells or STUB_CELLS],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, root / "nbs" / "stub.ipynb")
    return root / "nbs" / "stub.ipynb"


def tiny_s3rec(path, n_users=6):
    "A valid S3-Rec sequence file (`user item item ...`, 1-based items, at least 3 per user), ending with a blank line."
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"u{u} {' '.join(str((u + k) % 9 + 1) for k in range(4))}\n" for u in range(n_users)) + "\n")
    return path


def test_output_folder_names(tmp_path):
    data = tiny_s3rec(tmp_path / "some" / "dir" / "MyData.txt")
    (tmp_path / "atomic.v2").mkdir()
    assert dataset_folder(data) == dataset_folder(str(data)) == "MyData"
    assert dataset_folder(tmp_path / "atomic.v2") == dataset_folder(f"{tmp_path}/atomic.v2/") == "atomic.v2"
    assert [dataset_folder(n) for n in ("scientific", "Toys", "data/Games.txt.gz")] == ["scientific", "Toys", "Games.txt"]


def test_rodpo_reproduce_on_a_file_of_ones_own(tmp_path):
    "rodpo-reproduce /some/dir/MyData.txt -p quick True --out X writes X/MyData/summary.csv (it used to mkdir X//some/dir/MyData.txt)"
    data = tiny_s3rec(tmp_path / "some" / "dir" / "MyData.txt")
    nb = stub_notebook(tmp_path / "repo")
    out = tmp_path / "x"
    main([str(data), "-p", "quick", "True", "-p", "seeds", "[0]", "--out", str(out), "--notebook", str(nb)])
    s = pd.read_csv(out / "MyData" / "summary.csv")
    assert s.users.tolist() == [6] and s.quick.tolist() == [True] and s.seeds.tolist() == ["[0]"]
    assert (out / "MyData" / "reproduce.ipynb").exists() and pd.read_csv(out / "summary_all.csv").dataset.tolist() == [str(data)]
    twin = tiny_s3rec(tmp_path / "other" / "MyData.txt")
    with pytest.raises(ValueError, match="would share the output folder"):
        reproduce([data, twin], out, notebook=nb, log=lambda *a: None)


def test_a_cell_past_the_timeout_is_named_and_a_rerun_resumes(tmp_path):
    nb = stub_notebook(tmp_path / "repo", "import time", "x = 1\ntime.sleep(120)")
    t0 = time.perf_counter()
    with pytest.raises(SystemExit) as e:
        main(["scientific", "--out", str(tmp_path / "x"), "--notebook", str(nb), "--timeout", "3"])
    msg = str(e.value.code)
    assert time.perf_counter() - t0 < 100
    assert re.search(r"scientific: cell \d+ of .+reproduce\.ipynb \(which begins 'x = 1'\) ran longer than the 3 s allowed per cell", msg), msg
    assert "Run the same command again to resume" in msg and "--timeout" in msg


def test_notebook_defaults_are_the_library_defaults():
    "The reproduction notebook, DPOConfig (rodpo-dpo, rodpo-experiment) and SamplerConfig share one set of defaults: the regimes study's."
    import ast
    import nbformat
    from rodpo.dpo import DPOConfig
    from rodpo.negatives import SamplerConfig
    nb = nbformat.read(str(ROOT / "nbs" / "reproduce.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    p = {n.target.id if isinstance(n, ast.AnnAssign) else n.targets[0].id: ast.literal_eval(n.value)
         for n in ast.parse(cell.source).body if isinstance(n, (ast.Assign, ast.AnnAssign))}
    d, s = DPOConfig("unused"), SamplerConfig()
    assert (p["beta"], p["ce_weight"], p["lr"], p["patience"], p["dpo_epochs"], p["form"]) == (d.beta, d.ce_weight, d.lr, d.patience, d.max_epochs, d.form)
    assert (p["m"], p["K"], p["pool"], p["index_refresh"]) == (s.m, s.K, s.pool, s.index_refresh) and d.keep_reference is False and (d.beta, d.ce_weight) == (1.0, 1.0)


def test_the_main_job_accepts_its_committed_experiment_folder(tmp_path):
    """The README's main job writes into results/reproduce/scientific on a fresh clone: the configuration its notebook builds today
    must match the committed experiment.json, fields added since included (a new DPOConfig field once made it refuse the folder)."""
    import shutil
    from rodpo.experiment import _record_config
    out = tmp_path / "o"
    out.mkdir()
    shutil.copy(ROOT / "results/reproduce/scientific/experiment.json", out / "experiment.json")
    ns = checked(out)  # the defaults: the README's command
    _record_config(ns["cfg"], out)  # raises "holds an experiment with another configuration" if they differ
