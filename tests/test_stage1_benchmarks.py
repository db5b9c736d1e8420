"benchmarks/stage1: how stage1_table.py reads a variant, and what gbce_collapse.py measures."
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("stage1_table", ROOT / "benchmarks" / "stage1" / "stage1_table.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_variant_fields_go_to_the_model_or_the_training_configuration():
    parse = _module().parse_variant
    assert parse("gBCE untied|id,text:sparse_moe:loss=gbce:tied_output=false:n_experts=8:gbce_t=0.5") == (
        "gBCE untied", dict(modalities=("id", "text"), fusion="sparse_moe", tied_output=False, n_experts=8), dict(loss="gbce", gbce_t=0.5))
    assert parse("ID|id:sum") == ("ID", dict(modalities=("id",), fusion="sum"), {})
    with pytest.raises(ValueError, match="neither SASRecConfig nor TrainConfig"): parse("x|id:sum:nope=1")
    with pytest.raises(ValueError, match="'true' or 'false'"): parse("x|id:sum:tied_output=0")  # not bool("0") == True


def test_gbce_collapse_measures_how_much_of_the_ranking_is_the_users(tmp_path):
    "benchmarks/stage1/gbce_collapse.py on a tiny synthetic set: one row per evaluated epoch and config; user_share follows from the two spreads."
    import json, subprocess, sys
    from rodpo.data import load_dataset
    from rodpo.objectives import gbce_beta
    out, beta = tmp_path / "c", gbce_beta(16, load_dataset("synthetic:300x200").n_items, 0.75)
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stage1" / "gbce_collapse.py"), "--dataset", "synthetic:300x200", "--epochs", "3",
                        "--configs", f"bce|1|0,g|16|0.75,gb|16|0|16,same|16|0.75|{beta!r}", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.with_suffix(".json").read_text())
    assert [(x["config"], x["epoch"]) for x in res["rows"]] == [(c, e) for c in ("bce", "g", "gb", "same") for e in (1, 2, 3)]
    assert [x["beta"] for x in res["rows"]] == [None] * 6 + [16.0] * 3 + [beta] * 3  # the positive's weight, where given in place of gSASRec's
    strip = lambda x: {k: v for k, v in x.items() if k not in ("config", "beta")}
    assert [strip(x) for x in res["rows"][3:6]] == [strip(x) for x in res["rows"][9:]]  # gSASRec's own beta, given: the same run as gbce
    assert [strip(x) for x in res["rows"][3:6]] != [strip(x) for x in res["rows"][6:9]]
    for x in res["rows"]:
        assert abs(x["user_share"] - (1 - (x["item_mean_std"] / x["within_user_std"]) ** 2)) < 2e-3 and 0 <= x["user_share"] <= 1 and 0 <= x["valid_ndcg10"] <= 1
        assert min(x["h_common"], x["h_spread"], x["e_common"], x["e_spread"]) >= 0 and -1 <= x["cos_h_e"] <= 1
