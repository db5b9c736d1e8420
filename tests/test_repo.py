"The repository tells the truth about itself: README commands, README text, CI."
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_has_two_commands_and_ci_runs_the_test_one():
    cmds = readme_commands()
    assert len(cmds) == 2, cmds
    main, tests = cmds
    assert "rodpo-reproduce" in main and "pytest" in tests
    ci_lines = (ROOT / ".ci/run").read_text().splitlines()
    assert tests in ci_lines, "the README's test command must appear verbatim in .ci/run"
    assert main.split(" && ")[:2] == tests.split(" && ")[:2], "both commands install the same way"


def test_readme_is_index_notebook():
    r = subprocess.run([sys.executable, str(ROOT / ".ci/readme.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_papermill_tag_survives_nbdev_clean():
    import tomllib
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["nbdev"]
    assert "tags" in cfg["allowed_cell_metadata_keys"]
