import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    "The real benchmark data: the folder named by RODPO_DATA, else the cache, filled from the public origins."
    if os.environ.get("RODPO_DATA"):
        p = Path(os.environ["RODPO_DATA"])
        if not (p / "s3rec" / "Beauty.txt").exists():
            pytest.fail(f"RODPO_DATA={p} holds no s3rec/Beauty.txt: point it at a data root laid out like s3rec/..., unisrec/...")
        return p
    from rodpo.data import REMOTE_FILES, fetch, cache_dir
    for rel in REMOTE_FILES:
        fetch(rel)
    return cache_dir()


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    "No RODPO_DATA, an empty cache and no mirror: only what the test provides can be found."
    monkeypatch.delenv("RODPO_DATA", raising=False)
    monkeypatch.delenv("RODPO_MIRROR", raising=False)
    monkeypatch.setenv("RODPO_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _skip_reason(report) -> str:
    r = report.longrepr
    return (r[2] if isinstance(r, tuple) and len(r) == 3 else str(r)).removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter):
    "One visible line when browser tests were skipped for want of Chromium or Playwright (test_browser.py), and how to run them."
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if any(w in _skip_reason(r).lower() for w in ("chromium", "playwright"))]
    if skipped:
        reasons = "; ".join(sorted({_skip_reason(r) for r in skipped}))
        terminalreporter.write_line(f"browser tests: {len(skipped)} skipped: {reasons}", yellow=True, bold=True)
