"The reproduction notebook as a user runs it: papermill with parameters, outputs on disk, clear errors for bad parameters."
import json

import pandas as pd
import pytest

from conftest import ROOT
from rodpo.reproduce import check_parameters_cell, reproduce

NB = ROOT / "nbs" / "reproduce.ipynb"


def test_parameters_cell_is_tagged():
    names = check_parameters_cell(NB)
    assert {"dataset", "modalities", "fusion", "strategies", "seeds", "device", "out_dir", "quick", "k_sweep"} <= set(names)


def test_quick_reproduction_through_papermill(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("RODPO_DATA", str(shared_data))
    table = reproduce(["scientific"], tmp_path, parameters=dict(quick=True), timeout=900, log=lambda *a: None)
    out = tmp_path / "scientific"
    for f in ("reproduce.ipynb", "summary.csv", "summary.json", "runs.csv", "sweep_K.csv", "parameters.json",
              "comparison.html", "false_negative_rate.html", "sweep_K.html", "expert_load.html"):
        assert (out / f).exists(), f
    assert set(table.strategy) == {"reference", "hard", "topk_stochastic"} and (table.dataset == "scientific").all()
    params = json.loads((out / "parameters.json").read_text())
    assert params["quick"] is True and params["resolved"]["fusion"] == "sparse_moe" and params["resolved"]["seeds"] == [0]
    sweep = pd.read_csv(out / "sweep_K.csv")
    assert sorted(sweep.K.unique()) == [1, 20]
    # K = 1 with one negative is the hard strategy: the same run, the same test metrics
    hard = pd.read_csv(out / "runs.csv").set_index("strategy").loc["hard"]
    assert sweep[sweep.K == 1]["test_ndcg@5"].iloc[0] == pytest.approx(hard["test_ndcg@5"])
    nb = json.loads((out / "reproduce.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in nb["cells"])  # papermill used the tag


@pytest.mark.parametrize("params, message", [
    (dict(dataset="beuaty"), "beuaty"),
    (dict(strategies=["hard", "hardest"]), "hardest"),
    (dict(fusion="mix"), "mix"),
    (dict(seeds=3), "seeds=3 must be a list"),
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
