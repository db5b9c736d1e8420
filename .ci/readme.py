"""README.md is the text of nbs/index.ipynb. `python .ci/readme.py` rewrites it; `--check` fails if it is stale.

Markdown cells are copied; a code cell that starts with `#| echo: false` is run (from the repository's root, so that it
reads the committed `results/`) and the Markdown its last expression returns takes its place: the README's tables and
numbers are computed from the results, as on the docs site's home page. `--check` therefore also fails when the committed
results would change the README. Other code cells become Python blocks; other `#|` cells are left out.

(nbdev's own `nbdev-readme` needs Quarto, which is not installable on every machine.)
"""
import ast, json, os, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent


def run_cell(src: str, ns: dict) -> str:
    "Run a cell's code in `ns`; the Markdown text of its last expression ('' if it has none)."
    tree = ast.parse(src)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<index.ipynb>", "exec"), ns)
    if last is None: return ""
    value = eval(compile(ast.Expression(last.value), "<index.ipynb>", "eval"), ns)
    return value._repr_markdown_() if hasattr(value, "_repr_markdown_") else str(value)


def render() -> str:
    nb = json.loads((root / "nbs/index.ipynb").read_text())
    parts, ns, cwd = [], {}, os.getcwd()
    os.chdir(root)
    try:
        for c in nb["cells"]:
            src = "".join(c["source"]).strip()
            if c["cell_type"] == "code" and src.startswith("#| echo: false"):
                out = run_cell(src, ns).strip()
                if out: parts.append(out)
                continue
            if not src or src.startswith("#|"):
                continue
            parts.append(src if c["cell_type"] == "markdown" else f"```python\n{src}\n```")
    finally:
        os.chdir(cwd)
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    text, readme = render(), root / "README.md"
    if "--check" in sys.argv:
        if readme.read_text() != text:
            sys.exit("README.md differs from nbs/index.ipynb and the committed results: run `python .ci/readme.py` and commit the result")
    else:
        readme.write_text(text)
