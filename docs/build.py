#!/usr/bin/env python3
"""Build the documentation as a static HTML site, without Quarto.

The notebooks in `nbs/` go through nbdev's documentation processors, those that
`nbdev-proc-nbs` and `nbdev-docs` apply (frontmatter, `show_doc` for exported symbols, run
in a kernel; hidden and export-only cells removed), and are rendered with nbconvert's
JupyterLab HTML template into one page per notebook, named as nbdev names them
(`00_data.ipynb` -> `data.html`, `index.ipynb` -> `index.html`, the home page). A results page
lists the summaries under `results/` (tables and a plot of each), and executed notebooks found
under `results/` become pages with their outputs. The study pages (`nbs/study_*.ipynb`, a
"Studies" section) read committed results only and run whole, also with `--no-exec`; a failing
cell there stops the build. Pages load nothing from the network:
plotly.js ships in `assets/` so figures draw offline (MathJax only where a page has math).

    .venv/bin/python docs/build.py                  # writes _docs/ (processing cached in _docs/.proc/)
    .venv/bin/python docs/build.py --no-exec --out /tmp/site   # seconds: no show_doc output

Where Quarto is installed, `nbdev-docs` builds nbdev's own site from the same notebooks
(settings in pyproject.toml [tool.nbdev]).
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
MAX_COPIED_FILE = 2_000_000  # result files up to this size are copied into the site and linked
SKIP_RESULTS = {"tmp"}  # scratch output (git-ignored), not results
# a title cell: `# title`, `> description` lines, `- key: value` frontmatter lines
_TITLE_BLOCK = re.compile(r"^\s*#\s+[^\n]*\n*(?:>[^\n]*\n?)*(?:\s*-\s+[\w-]+\s*:[^\n]*\n?)*\s*")


# ---------------------------------------------------------------------------------------
# Processing: nbdev's processors, with show_doc execution that survives a failing cell

def process_notebooks(nbs: Path, cache: Path, execute: bool = True, force: bool = False) -> Path:
    """Run nbdev's documentation processors (those of `nbdev-proc-nbs`) over the notebooks
    in `nbs`, writing the processed notebooks into `cache`; return it. A notebook is processed
    again only when it, the library, pyproject.toml or this script changed (or with `force`).

    nbdev executes every cell that imports something (to make `show_doc` work); a cell
    that mixes imports with test code can fail outside a test run. Here such a cell is
    reported and left without outputs instead of stopping the build. A study page runs
    whole and stops the build on an error. With `execute=False` only the study pages run
    (no `show_doc` output)."""
    import nbdev.processors as procs
    from nbdev.config import get_config
    from nbdev.frontmatter import FrontmatterProc

    cfg = get_config(ROOT)
    failures: list[str] = []
    study = {"page": False}  # a study page (`study_*.ipynb`): every code cell runs, and a failing one stops the build
    orig_call, orig_base = procs.exec_show_docs.__call__, procs.FilterDefaults.base_procs

    def tolerant_call(self, cell):
        if study["page"] and hasattr(self, "k"):
            if cell.cell_type == "code" and cell.source.strip() and "nbdev_export" not in cell.source:
                self.k.cell(cell)
                if self.k.exc is not None:
                    e, self.k.exc = self.k.exc, None
                    raise RuntimeError(f"study page {cell.idx_}: {type(e).__name__}: {e}\n{cell.source}") from e
            return
        if not execute or not getattr(self.nb, "has_docs_", False) or not hasattr(self, "k"):
            return
        fm = getattr(self.nb, "frontmatter_", {}) or {}
        if str(fm.get("skip_showdoc", "")).lower() in ("true", "1", "yes"):
            return
        if procs._do_eval(cell):
            self.k.cell(cell)
            if self.k.exc is not None:
                e, self.k.exc = self.k.exc, None
                failures.append(f"{fm.get('title', '?')} cell {cell.idx_}: {type(e).__name__}: {e}")
                cell.outputs = []

    def base_procs(self):
        return orig_base(self)  # without `execute`, exec_show_docs still runs the study pages (tolerant_call)

    orig_update = FrontmatterProc._update

    def keep_body(self, f, cell):
        "nbdev drops a title cell whole: keep what follows its `# title` and `> description`"
        src = cell.get("source") or ""
        orig_update(self, f, cell)
        if cell.source is None and cell.cell_type == "markdown":
            rest = _TITLE_BLOCK.sub("", src, count=1)
            if rest.strip():
                cell.source = rest

    procs.exec_show_docs.__call__ = tolerant_call
    procs.FilterDefaults.base_procs = base_procs
    FrontmatterProc._update = keep_body
    from nbdev.serve_drv import exec_nb
    inputs = [cfg.config_file, Path(__file__)] + sorted(Path(cfg.lib_path).glob("*.py"))
    stamp = max(f.stat().st_mtime for f in inputs if f.exists())
    cwd, in_test = os.getcwd(), os.environ.get("IN_TEST")
    try:
        os.chdir(cfg.config_path)  # as nbdev-docs runs them
        os.environ["IN_TEST"] = "1"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbdev warns about every cell mixing imports and code
            cache.mkdir(parents=True, exist_ok=True)
            srcs = sorted(nbs.glob("*.ipynb"))
            for old in cache.glob("*.ipynb"):
                if not (nbs / old.name).exists():
                    old.unlink()
            for src in srcs:
                dst = cache / src.name
                if not force and dst.exists() and dst.stat().st_mtime >= max(src.stat().st_mtime, stamp):
                    continue  # processed since the notebook, the library and this script last changed
                t = time.time()
                study["page"] = is_study(src) or src.name == cfg.get("readme_nb", "index.ipynb")  # the home page's tables too
                exec_nb(src, dst, procs.FilterDefaults)
                if execute or study["page"]:
                    print(f"processed {src.name} in {time.time() - t:.1f}s")
    finally:
        procs.exec_show_docs.__call__, procs.FilterDefaults.base_procs = orig_call, orig_base
        FrontmatterProc._update = orig_update
        os.chdir(cwd)
        if in_test is None:
            os.environ.pop("IN_TEST", None)
        else:
            os.environ["IN_TEST"] = in_test
    for f in failures:
        print(f"warning: show_doc execution failed (cell left without outputs): {f}", file=sys.stderr)
    return cache


# ---------------------------------------------------------------------------------------
# Notebook preparation: quarto conventions -> plain notebook, plotly -> offline HTML

def is_study(nb_path: Path) -> bool:
    "A study page: `nbs/study_<name>.ipynb`, which reads committed results and is executed whole by the build"
    return Path(nb_path).name.startswith("study_")


def page_name(nb_path: Path) -> str:
    "nbdev's page name for a notebook: lower case, numeric prefix stripped"
    return re.sub(r"^\d+[a-zA-Z0-9]*_", "", nb_path.name.lower()).rsplit(".", 1)[0] + ".html"


def _frontmatter(nb) -> dict:
    "Read and remove the YAML frontmatter cell nbdev puts first"
    import yaml
    if nb.cells and nb.cells[0].cell_type == "raw":
        src = nb.cells[0].source.strip()
        if src.startswith("---") and src.endswith("---"):
            nb.cells.pop(0)
            try:
                return yaml.safe_load(src.strip("-").strip()) or {}
            except yaml.YAMLError:
                return {}
    return {}


_DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")


def _apply_directives(cell) -> None:
    "Turn the quarto cell options nbdev keeps (echo, output, include) into nbconvert tags"
    lines = cell.source.splitlines()
    opts = {}
    while lines and _DIRECTIVE.match(lines[0]):
        k, v = _DIRECTIVE.match(lines[0]).groups()
        opts[k] = v.lower()
        lines.pop(0)
    cell.source = "\n".join(lines)
    tags = set(cell.metadata.get("tags", []))
    if opts.get("include") == "false":
        tags.add("remove_cell")
    if opts.get("echo") == "false":
        tags.add("remove_input")
    if opts.get("output") == "false":
        tags.add("remove_output")
    cell.metadata["tags"] = sorted(tags)


def _quarto_markdown(src: str) -> str:
    "Quarto fenced divs (`::: {.callout-note}`) have no meaning in plain markdown: keep the content"
    return re.sub(r"^:::+.*$\n?", "", src, flags=re.M)


_PANDOC_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)\{([^}]*)\}")


def _pandoc_links(src: str) -> str:
    "Pandoc link attributes (`[source](url){target=\"_blank\"}`, from show_doc) as HTML links"
    def link(m):
        text, url, attrs = m.groups()
        classes = " ".join(a[1:] for a in attrs.split() if a.startswith("."))
        pairs = " ".join(re.findall(r'[\w-]+="[^"]*"', attrs))
        cls = f' class="{classes}"' if classes else ""
        return f'<a href="{html.escape(url, quote=True)}"{cls} {pairs}>{text}</a>'.replace(" >", ">")
    return _PANDOC_LINK.sub(link, src)


def plotly_html(fig_json: dict, div_id: str) -> str:
    "A div and the script that draws a plotly figure with the page's plotly.js"
    data = json.dumps(fig_json.get("data", []))
    layout = json.dumps(fig_json.get("layout", {}))
    config = json.dumps({"responsive": True, **fig_json.get("config", {})})
    height = int(fig_json.get("layout", {}).get("height") or 450)  # the figure's own height, else plotly's default
    return (f'<div class="site-plot"><div id="{div_id}" class="plotly-graph-div" style="height:{height}px; width:100%;"></div>'
            f'<script>Plotly.newPlot({json.dumps(div_id)}, {data}, {layout}, {config});</script></div>')


def prepare(nb, stem: str) -> dict:
    """Make a processed notebook render well offline; return what the page needs.

    Title and description come from the frontmatter; plotly outputs become plotly.js
    calls; widget views (which need a live kernel) fall back to their text form."""
    fm = _frontmatter(nb)
    has_plotly = has_math = False
    n_plot = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # nbdev's timing profile, not valid nbformat
        if cell.cell_type == "markdown":
            cell.source = _pandoc_links(_quarto_markdown(cell.source))
            if re.search(r"\$[^$\s][^$]*\$", cell.source):
                has_math = True
        if cell.cell_type != "code":
            continue
        _apply_directives(cell)
        outs = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/markdown" in data:
                md = data["text/markdown"]
                data["text/markdown"] = _pandoc_links(md if isinstance(md, str) else "".join(md))
            if PLOTLY_MIME in data:
                n_plot += 1
                has_plotly = True
                out["data"] = {"text/html": plotly_html(data[PLOTLY_MIME], f"plot-{stem}-{n_plot}")}
            elif out.get("output_type") in ("display_data", "execute_result") and not data:
                continue
            elif WIDGET_VIEW_MIME in data:
                data.pop(WIDGET_VIEW_MIME)
                if not data:
                    continue
            elif "text/html" in data and "plotly" in data["text/html"] and "cdn.plot.ly" in data["text/html"]:
                has_plotly = True  # plotly's own notebook HTML: drawn by the shipped plotly.js
            outs.append(out)
        if "outputs" in cell:
            cell.outputs = outs
    nb.metadata.pop("widgets", None)  # widget state needs the widget manager from a CDN
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    h1 = re.match(r"^\s*#\s+(.+)", first)  # a notebook nbdev has not processed: its `# title`
    title = str(fm.get("title") or (h1.group(1).strip() if h1 else stem))
    desc = fm.get("description")
    head = f"# {title}" + (f"\n\n> {desc}" if desc else "")
    import nbformat
    if fm:  # nbdev moved the notebook's title and description into the frontmatter
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(head))
    nb.metadata["title"] = title
    return {"title": title, "plotly": has_plotly, "math": has_math}


# ---------------------------------------------------------------------------------------
# Results page

def _mean_std(v):
    "'0.076 ± 0.001' -> (0.076, 0.001); a plain number -> (x, None); else None"
    if isinstance(v, (int, float)):
        return float(v), None
    m = re.match(r"^\s*([-+0-9.eE]+)\s*(?:±\s*([-+0-9.eE]+))?\s*$", str(v))
    return (float(m.group(1)), float(m.group(2)) if m.group(2) else None) if m else None


DASH = "\u2014"  # an empty or undefined cell: no NaN on the page
_NAN = re.compile(r"\b(?:nan|NaN|NAN|None|<NA>)\b")


def fmt_number(x, digits: int = 4) -> str:
    "A number as a results table shows it: integers whole, others to `digits` significant digits (no exponent from 1e-4 to 1e6); NaN or None -> an em dash"
    if x is None or isinstance(x, bool):
        return DASH if x is None else str(x)
    x = float(x)
    if x != x or x in (float("inf"), float("-inf")):
        return DASH
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    if 1e-4 <= abs(x) < 10 ** digits:
        return f"{x:.{digits}g}"
    return f"{x:.0f}" if abs(x) >= 10 ** digits and abs(x) < 1e6 else f"{x:.{digits - 1}e}"


def fmt_p(p) -> str:
    "A p-value: 0.003, <0.001; NaN or None -> an em dash"
    if p is None or p != p:
        return DASH
    return "<0.001" if float(p) < 0.001 else f"{float(p):.3f}"


def _is_p_column(name) -> bool:
    n = str(name).lower()
    return n in ("p", "pvalue", "p_value", "p-value") or n.startswith(("p_", "p ")) or n.endswith((" p", "_p")) or " p_" in n or "p_holm" in n


def fmt_cell(v, p_value: bool = False) -> str:
    "One cell of a results table as text: numbers by `fmt_number` (p-values by `fmt_p`), 'mean ± std' strings with both parts so, NaN anywhere as an em dash"
    import numbers
    if v is None or (isinstance(v, numbers.Number) and not isinstance(v, bool)):
        return fmt_p(v) if p_value else fmt_number(v)
    s = str(v).strip()
    if not s or _NAN.fullmatch(s):
        return DASH
    if p_value:
        try:
            return fmt_p(float(s))
        except ValueError:
            pass
    try:
        ms = _mean_std(s)
    except ValueError:  # '-', 'e': text that only looks numeric
        ms = None
    if ms is not None and not re.fullmatch(r"[-+]?\d+", s):  # '0.0828 ± 0.0013', '0.054 ± 0.0', a bare float string
        mean, std = ms
        return fmt_number(mean) + ("" if std is None else f" ± {fmt_number(std)}")
    s = _NAN.sub(DASH, s)
    return DASH if not s.replace(DASH, "").replace("±", "").strip() else s  # 'nan ± nan


def format_table(df):
    "A copy of `df` with every cell as display text (`fmt_cell`): the HTML of the results page shows no NaN and no runaway digits"
    out = df.copy().astype(object)
    for c in out.columns:
        p = _is_p_column(c)
        out[c] = [fmt_cell(v, p) for v in df[c]]
    return out


def table_html(df) -> str:
    return format_table(df).to_html(index=False, classes="site-table", border=0, na_rep=DASH)


def summary_figure(df, name: str):
    "A bar chart (mean ± std) of a summary's headline test metric, or None"
    import plotly.graph_objects as go
    cols = [c for c in df.columns if str(c).lower().startswith("test")]
    pref = [c for c in cols if "ndcg" in c.lower() and "10" in c] or [c for c in cols if "ndcg" in c.lower()] or cols
    if not pref or len(df) < 1:
        return None
    metric, label = pref[0], df.columns[0]
    vals = [_mean_std(v) for v in df[metric]]
    if any(v is None for v in vals):
        return None
    fig = go.Figure(go.Bar(x=[str(x) for x in df[label]], y=[v[0] for v in vals],
                           error_y=dict(type="data", array=[v[1] or 0 for v in vals], visible=True)))
    fig.update_layout(title=f"{name}: {metric}", yaxis_title=metric, xaxis_title=str(label),
                      margin=dict(l=60, r=20, t=50, b=120), template="plotly_white")
    return json.loads(fig.to_json())


def runs_table(runs: list[Path]):
    "Test and validation metrics of run folders (their metrics.json), or None"
    import pandas as pd
    rows = []
    for r in runs:
        try:
            m = json.loads((r / "metrics.json").read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(m.get("test"), dict):
            continue
        row = {"run": r.name, "best_epoch": m.get("best_epoch")}
        row.update({f"valid_{k}": v for k, v in (m.get("valid") or {}).items() if k in ("ndcg@10",)})
        row.update({f"test_{k}": v for k, v in m["test"].items() if k in ("ndcg@10", "hr@10", "mrr@10", "ndcg@5", "mrr@5")})
        rows.append(row)
    return pd.DataFrame(rows) if rows else None


def results_notebook(results: Path, out: Path, pages: list[dict]):
    "A notebook (markdown and HTML outputs) listing the result summaries, and the files to copy"
    import nbformat
    import pandas as pd
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_output
    from rodpo.report import study_of

    def html_cell(content_html: str = "", plot: dict | None = None):
        data = {PLOTLY_MIME: plot} if plot is not None else {"text/html": content_html}
        c = new_code_cell("", outputs=[new_output("display_data", data=data)])
        c.metadata["tags"] = ["remove_input"]
        return c

    cells = [new_markdown_cell(
        "# Results\n\n> Reproduction results committed under `results/`: each experiment's summary "
        "(mean ± standard deviation over seeds), a plot of its headline test metric, and its files.")]
    if pages:
        cells.append(new_markdown_cell("## Notebooks\n\n" + "\n".join(
            f"- [{p['title']}]({p['href']})" for p in pages)))
    copied: list[Path] = []
    for d in sorted(p for p in results.iterdir() if p.is_dir() and p.name not in SKIP_RESULTS):
        files = sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith("."))
        runs = sorted(f for f in d.iterdir() if f.is_dir())
        if not files and not runs:
            continue
        cells.append(new_markdown_cell(f"## {d.name}"))
        if (page := study_of(d.name)) is not None:
            cells.append(new_markdown_cell(f"What it shows: the study page [{page}](study_{page}.html)."))
        summary_csv, summary_md = d / "summary.csv", d / "summary.md"
        if summary_csv.exists():
            df = pd.read_csv(summary_csv)
            cells.append(html_cell(table_html(df)))
            fig = summary_figure(df, d.name)
            if fig is not None:
                cells.append(html_cell(plot=fig))
        elif summary_md.exists():
            cells.append(new_markdown_cell(_NAN.sub(DASH, summary_md.read_text())))
        elif (df := runs_table(runs)) is not None:  # no summary: one row per run folder
            cells.append(html_cell(table_html(df)))
            fig = summary_figure(df, d.name)
            if fig is not None:
                cells.append(html_cell(plot=fig))
        images = [f for f in files if f.suffix in (".png", ".svg", ".jpg") and f.stat().st_size <= MAX_COPIED_FILE]
        if images:
            copied += images
            cells.append(new_markdown_cell("\n\n".join(
                f"![{f.stem}](results/{f.relative_to(results).as_posix()})" for f in images)))
        listed = []
        for f in files:
            if f in images:
                continue
            if f.stat().st_size <= MAX_COPIED_FILE and f.suffix in (".csv", ".md", ".json", ".jsonl", ".txt"):
                copied.append(f)
                listed.append(f"[`{f.name}`](results/{f.relative_to(results).as_posix()})")
            elif f.suffix != ".ipynb":
                listed.append(f"`{f.name}`")
        if runs:
            listed.append(f"{len(runs)} run folders (configuration, per-epoch history, metrics)")
        if listed:
            cells.append(new_markdown_cell("Files: " + ", ".join(listed)))
    loose = sorted(f for f in results.iterdir() if f.is_file() and not f.name.startswith(".")
                   and f.suffix in (".csv", ".md", ".json", ".jsonl") and f.stat().st_size <= MAX_COPIED_FILE)
    if loose:
        cells.append(new_markdown_cell("## Other files\n\n" + "\n".join(
            f"- [`{f.name}`](results/{f.name})" for f in loose)))
        copied += loose
    for f in copied:
        dst = out / "results" / f.relative_to(results)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dst)
    nb = nbformat.v4.new_notebook(cells=cells)
    return nb


# ---------------------------------------------------------------------------------------
# Rendering

def _nav(entries: list[dict], current: str, title: str) -> str:
    out = [f'<nav class="site-nav"><a class="site-title" href="index.html">{html.escape(title)}</a>']
    section = None
    for e in entries:
        if e["section"] != section:
            if section is not None:
                out.append("</ul>")
            section = e["section"]
            out.append(f'<div class="site-section">{html.escape(section)}</div><ul>')
        cls = ' class="current"' if e["href"] == current else ""
        out.append(f'<li><a{cls} href="{e["href"]}">{html.escape(e["title"])}</a></li>')
    out.append("</ul></nav>")
    return "\n".join(out)


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:")


def _lower_ids(page: str) -> str:
    "Heading ids in lower case, as Quarto makes them and nbdev's symbol links expect"
    return re.sub(r'(<h[1-6][^>]*?\sid=")([^"]*)"', lambda m: m.group(1) + m.group(2).lower() + '"', page)


def _page_ids(page: str) -> set[str]:
    return set(re.findall(r'\sid="([^"]*)"', page)) | set(re.findall(r'<a\s[^>]*name="([^"]*)"', page))


def _fix_links(page: str, here: str, doc_url: str, nb_pages: dict[str, str], ids: dict[str, set[str]]) -> str:
    """Links to the hosted docs become relative, links to notebooks point at their pages, and
    an anchor missing from its page (nbdev links every method, documented or not) falls back
    to its class's anchor, else to the page."""
    def fix(m):
        attr, url = m.group(1), html.unescape(m.group(2))
        if doc_url and url.startswith(doc_url.rstrip("/") + "/"):
            url = url[len(doc_url.rstrip("/")) + 1:] or "index.html"
        path, sep, frag = url.partition("#")
        if _SCHEME.match(path) or path.startswith("//"):
            return m.group(0)
        if path.endswith(".ipynb"):
            path = nb_pages.get(Path(path).name, page_name(Path(path)))
        if path.endswith(".md") and path[:-3] + ".html" in nb_pages.values():
            path = path[:-3] + ".html"  # nbdev's markdown alternates of pages
        if frag:
            frag = frag.lower()
            known = ids.get(path or here)
            while known is not None and frag not in known and "." in frag:
                frag = frag.rsplit(".", 1)[0]
            if known is not None and frag not in known:
                sep = frag = ""
        return f'{attr}="{html.escape((path + sep + frag) or "#", quote=True)}"'
    return re.sub(r'(href)="([^"]*)"', fix, page)


def build(out: Path, nbs: Path, results: Path, execute: bool = True, force: bool = False) -> list[Path]:
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from nbdev.config import get_config

    t0 = time.time()
    cfg = get_config(ROOT)
    title = cfg.get("title") or cfg.lib_name
    doc_url = cfg.doc_url or ""
    # executed: cached beside the site, in `<out>/.proc/`; otherwise a temporary folder
    cache = out / ".proc" if execute else Path(tempfile.mkdtemp(prefix="rodpo-proc-"))
    cache = process_notebooks(nbs, cache, execute=execute, force=force)
    print(f"processed notebooks in {time.time() - t0:.1f}s")

    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # the previous site, not the processing cache
        if old.name != ".proc":
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    (out / "assets").mkdir(parents=True)
    shutil.copy2(HERE / "site.css", out / "assets" / "site.css")
    import plotly
    shutil.copy2(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", out / "assets" / "plotly.min.js")

    # pages: (section, source notebook node, page name)
    sources = sorted(nbs.glob("*.ipynb"))
    readme = cfg.get("readme_nb", "index.ipynb")
    names = {src: "index.html" if src.name == readme else page_name(src) for src in sources}
    for src, name in names.items():
        same = [o for o in sources if names[o] == name and o != src]
        if same and page_name(src) != src.name.lower().rsplit(".", 1)[0] + ".html":
            # two notebooks make one page (Quarto would write both to one file): the numbered one keeps its number
            print(f"warning: {src.name} and {same[0].name} both make {name}; {src.name} is published as "
                  f"{src.stem.lower()}.html", file=sys.stderr)
            names[src] = src.stem.lower() + ".html"
    pages = []
    from rodpo.report import STUDY_PAGES
    order = {f"study_{n}.ipynb": i for i, n in enumerate(STUDY_PAGES)}  # studies in reading order, then any other study page
    for src in sorted(sources, key=lambda p: (p.name != readme, not is_study(p), order.get(p.name, len(order)), p.name)):
        proc = cache / src.name
        nb = nbformat.read(proc if proc.exists() else src, as_version=4)
        name = names[src]
        section = "Documentation" if name == "index.html" else "Studies" if is_study(src) else "API"
        pages.append({"section": section, "nb": nb,
                      "href": name, "stem": Path(name).stem, "src": src.name})
    if not any(p["href"] == "index.html" for p in pages) and (ROOT / "README.md").exists():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell((ROOT / "README.md").read_text())])
        pages.insert(0, {"section": "Documentation", "nb": nb, "href": "index.html", "stem": "index", "src": "README.md"})
    result_pages = []
    if results.is_dir():
        for src in sorted(results.rglob("*.ipynb")):  # executed reproduction notebooks, outputs kept
            if ".ipynb_checkpoints" in src.parts or SKIP_RESULTS & set(src.relative_to(results).parts):
                continue
            nb = nbformat.read(src, as_version=4)
            name = "results_" + "_".join(src.relative_to(results).with_suffix("").parts).lower() + ".html"
            result_pages.append({"section": "Results", "nb": nb, "href": name, "stem": Path(name).stem, "src": src.name,
                                 "where": src.relative_to(results).parent.as_posix()})
    pages += result_pages
    if results.is_dir():
        pages.append({"section": "Results", "nb": None, "href": "results.html", "stem": "results", "src": None})

    for p in pages:  # the results page last: it lists the result notebooks by title
        if p["nb"] is None:
            p["nb"] = results_notebook(results, out, [{"title": r["title"], "href": r["href"]} for r in result_pages])
        p["info"] = prepare(p["nb"], p["stem"])
        p["title"] = "Home" if p["href"] == "index.html" else p["info"]["title"]
        if p.get("where") not in (None, "."):
            p["title"] += f" ({p['where']})"

    nb_pages = {p["src"]: p["href"] for p in pages if p["src"] and p["section"] != "Results"}
    tag_pp = TagRemovePreprocessor(remove_cell_tags={"remove_cell", "hide"}, remove_input_tags={"remove_input"},
                                   remove_all_outputs_tags={"remove_output"}, enabled=True)
    exporter = HTMLExporter(template_name="site", extra_template_basedirs=[str(HERE / "templates")],
                            exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(tag_pp, enabled=True)
    nav = [p for p in pages if p["section"] != "Results"] + [p for p in pages if p["href"] == "results.html"] \
        + result_pages
    bodies = {}
    for p in pages:
        site = {"root": "", "nav": _nav(nav, p["href"], title), "plotly": p["info"]["plotly"],
                "math": p["info"]["math"], "footer": html.escape(f"{title}: built from {p['src'] or 'results/'}")}
        body, _ = exporter.from_notebook_node(p["nb"], resources={"site": site, "metadata": {"name": p["title"]}})
        bodies[p["href"]] = _lower_ids(body)
    ids = {href: _page_ids(body) for href, body in bodies.items()}
    written = []
    for href, body in bodies.items():  # links last: they check anchors on every page
        (out / href).write_text(_fix_links(body, href, doc_url, nb_pages, ids), encoding="utf-8")
        written.append(out / href)
    if not execute:
        shutil.rmtree(cache, ignore_errors=True)
    (out / ".nojekyll").write_text("")
    (out / ".build.json").write_text(json.dumps({"executed": execute, "pages": [p["href"] for p in pages]}))
    print(f"wrote {len(written)} pages to {out} in {time.time() - t0:.1f}s")
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "_docs"), help="output folder (default: _docs/)")
    ap.add_argument("--nbs", default=None, help="notebooks folder (default: nbdev's nbs_path)")
    ap.add_argument("--results", default=str(ROOT / "results"), help="results folder listed on the results page")
    ap.add_argument("--no-exec", action="store_true", help="do not execute cells for show_doc (faster, no API signatures)")
    ap.add_argument("--force", action="store_true", help="reprocess every notebook (ignore _proc/ cache)")
    a = ap.parse_args(argv)
    from nbdev.config import get_config
    nbs = Path(a.nbs) if a.nbs else Path(get_config(ROOT).nbs_path)
    build(Path(a.out).resolve(), nbs.resolve(), Path(a.results).resolve(), execute=not a.no_exec, force=a.force)


if __name__ == "__main__":
    main()
