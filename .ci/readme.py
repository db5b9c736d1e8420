"""README.md is the text of nbs/index.ipynb. `python .ci/readme.py` rewrites it; `--check` fails if it is stale.

(nbdev's own `nbdev-readme` needs Quarto, which is not installable on every machine.)
"""
import json, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent


def render() -> str:
    nb = json.loads((root / "nbs/index.ipynb").read_text())
    parts = []
    for c in nb["cells"]:
        src = "".join(c["source"]).strip()
        if not src or src.startswith("#|"):
            continue
        parts.append(src if c["cell_type"] == "markdown" else f"```python\n{src}\n```")
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    text, readme = render(), root / "README.md"
    if "--check" in sys.argv:
        if readme.read_text() != text:
            sys.exit("README.md differs from nbs/index.ipynb: run `python .ci/readme.py` and commit the result")
    else:
        readme.write_text(text)
