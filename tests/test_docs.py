"The docs site's results page, built without a browser: numbers formatted, no NaN."
import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def _build():
    spec = importlib.util.spec_from_file_location("rodpo_docs_build", ROOT / "docs/build.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _text(nb) -> str:
    "Everything the results page shows: markdown and the HTML of its tables."
    parts = []
    for c in nb.cells:
        if c.cell_type == "markdown":
            parts.append(c.source)
        for o in c.get("outputs", []):
            parts.append(str(o.get("data", {}).get("text/html", "")))
    return "\n".join(parts)


def test_results_page_of_the_committed_results_has_no_nan(tmp_path):
    build = _build()
    nb = build.results_notebook(ROOT / "results", tmp_path, [])
    text = _text(nb)
    assert "site-table" in text and "NaN" not in text and "nan" not in text.replace("nanos", "")


def test_results_tables_are_formatted(tmp_path):
    build = _build()
    exp = tmp_path / "results" / "dpo_toy"
    exp.mkdir(parents=True)
    pd.DataFrame(dict(strategy=["reference", "hard"], seeds=[3, 3], **{"test_ndcg@10": ["0.076012345 ± 0.00123456", "nan ± nan"]},
                      p=[float("nan"), 0.0032], p_holm=[0.00004, 0.5], false_negative_rate=[float("nan"), 0.123456789])).to_csv(exp / "summary.csv", index=False)
    nb = build.results_notebook(tmp_path / "results", tmp_path / "site", [])
    text = _text(nb)
    assert "NaN" not in text and "nan" not in text, text
    for shown in ("0.07601 ± 0.001235", "0.003", "&lt;0.001", "0.500", "0.1235", "\u2014"):
        assert shown in text, (shown, text)
    assert build.fmt_p(0.0032) == "0.003" and build.fmt_p(0.0004) == "<0.001" and build.fmt_number(float("nan")) == "\u2014"
    assert build.fmt_number(92.0) == "92" and build.fmt_number(0.14294) == "0.1429"
