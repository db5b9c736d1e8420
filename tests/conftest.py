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
