"""In a real browser: notebooks run in JupyterLab with their widgets and plots, and the docs site.

Chromium (Debian's `/usr/bin/chromium`, or the one named by `RODPO_CHROMIUM`) is driven by
Playwright's Python package through its executable path: no browser is downloaded. Outside
CI the tests are skipped when Chromium or Playwright is missing; in CI (`CI=true`, or
`RODPO_REQUIRE_BROWSER=1` as .ci/run sets) that is a failure. Everything is served on
localhost and every request elsewhere is blocked, so a page that passes renders offline.

Environment:
- `RODPO_SCREENSHOTS`: folder for the screenshots (default: the test's temporary folder).
- `RODPO_BROWSER_NOTEBOOKS`: more notebooks to run in JupyterLab (paths separated by
  `os.pathsep`, relative to the repository root); each must show an ipywidgets slider and a
  plotly figure once all its cells have run, as the generated notebook does.
- `RODPO_BROWSER_TIMEOUT`: seconds a notebook may take to run all its cells (default 90).
- `RODPO_DOCS_SITE`: a built docs site to check instead of building one with `docs/build.py`.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("CI", "RODPO_REQUIRE_BROWSER"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-gpu"]
SLIDER = ".jp-OutputArea .widget-slider"
PLOT_SVG = ".jp-OutputArea .plotly .main-svg"


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (required in CI: .ci/run installs it)")
    pytest.skip(reason)


def _chromium() -> str:
    named = os.environ.get("RODPO_CHROMIUM")
    for c in [named] if named else ["/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")]:
        if c and Path(c).exists():
            return c
    _unavailable(f"RODPO_CHROMIUM={named} does not exist: point it at a Chromium binary, or unset it and install "
                 "Chromium (sudo apt-get install -y chromium)" if named else
                 "Chromium not found: install it (sudo apt-get install -y chromium) or set RODPO_CHROMIUM to a Chromium binary")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _is_local(url: str) -> bool:
    u = urlparse(url)
    return u.scheme in ("data", "blob", "about") or u.hostname in ("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    d = Path(os.environ["RODPO_SCREENSHOTS"]) if os.environ.get("RODPO_SCREENSHOTS") else tmp_path / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def new_page(browser, width=1280, height=900):
    "A page that may load only from localhost, recording page errors and blocked requests"
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    page.errors, page.blocked = [], []
    page.on("pageerror", lambda e: page.errors.append(str(e)))

    def route(r):
        if _is_local(r.request.url):
            r.continue_()
        else:
            page.blocked.append(r.request.url)
            r.abort()
    page.route("**/*", route)
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        ctx.close()


def drawn(png: bytes, min_colours: int = 8) -> bool:
    "A screenshot shows something drawn: more than a few distinct colours"
    from PIL import Image
    im = Image.open(io.BytesIO(png)).convert("RGB")
    return len(im.getcolors(maxcolors=1 << 24) or []) >= min_colours


# ---------------------------------------------------------------------------------------
# JupyterLab

def widget_notebook(path: Path) -> Path:
    "A small notebook with an ipywidgets slider and a plotly FigureWidget that follows it"
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    nb = new_notebook(cells=[
        new_markdown_cell("# Widgets and plots"),
        new_code_cell("import ipywidgets as widgets\nimport plotly.graph_objects as go\n"
                      "slider = widgets.IntSlider(value=3, min=1, max=10, description='power')\nslider"),
        new_code_cell("xs = list(range(10))\n"
                      "fig = go.FigureWidget(go.Scatter(x=xs, y=[x ** slider.value for x in xs], mode='lines+markers'))\n"
                      "fig.update_layout(width=600, height=350, margin=dict(l=40, r=20, t=30, b=30))\n"
                      "slider.observe(lambda ch: fig.data[0].update(y=[x ** ch['new'] for x in xs]), names='value')\n"
                      "fig"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, path)
    return path


@contextlib.contextmanager
def jupyterlab(root_dir: Path, tmp: Path):
    "JupyterLab serving `root_dir` on a free localhost port, no token; yields its base URL"
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
           "JUPYTER_PLATFORM_DIRS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("JUPYTER_TOKEN", None)
    news = tmp / "lab-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false"}')  # no news prompt over the screenshots
    docmanager = tmp / "lab-settings" / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings"
    docmanager.parent.mkdir(parents=True, exist_ok=True)
    docmanager.write_text('{"autosave": false}')  # a notebook under test is never written back
    tracker = tmp / "lab-settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text('{"autoStartDefaultKernel": true}')  # no kernel dialog for a notebook without kernelspec
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={root_dir}", "--allow-root", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(tmp / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, cwd=root_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {(tmp / 'jupyterlab.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"JupyterLab did not start: {(tmp / 'jupyterlab.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run_in_lab(browser, nb_path: Path, shots: Path, tmp: Path, timeout_s: float | None = None,
               interact: bool = False) -> dict:
    """Open `nb_path` in JupyterLab, run all its cells, and check that a slider widget and a
    plotly figure render; screenshots go to `shots`. With `interact`, the first slider is moved
    to its maximum and whether the first plotted line changed is reported. Returns what was found."""
    nb_path = nb_path.resolve()
    stem = nb_path.stem
    timeout_s = timeout_s or float(os.environ.get("RODPO_BROWSER_TIMEOUT", 90))  # seconds for all cells to run
    with jupyterlab(nb_path.parent, tmp) as url, new_page(browser, 1400, 1000) as page:
        try:
            return _run_in_lab(page, url, nb_path, shots, timeout_s, interact)
        except Exception:
            page.screenshot(path=str(shots / f"lab-{stem}-failed.png"), full_page=True)
            raise


def _run_in_lab(page, url: str, nb_path: Path, shots: Path, timeout_s: float, interact: bool) -> dict:
    stem = nb_path.stem
    page.goto(f"{url}/lab/tree/{nb_path.name}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=60_000)
    # a started kernel, idle, before anything runs
    page.wait_for_function("""() => { const s = window.jupyterapp.shell.currentWidget.sessionContext;
        return s.session && s.session.kernel && s.session.kernel.status === 'idle'; }""", timeout=60_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function("""() => { const w = window.jupyterapp.shell.currentWidget;
        const k = w.sessionContext.session.kernel;
        const cells = w.content.widgets.filter(c => c.model.type === 'code');
        const failed = cells.some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));
        return k.status === 'idle' && (failed || cells.every(c => c.model.executionCount !== null)); }""",
                           timeout=timeout_s * 1000)
    tracebacks = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
        .flatMap(c => c.model.type === 'code' ? c.model.outputs.toJSON() : [])
        .filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)""")
    if tracebacks:
        page.screenshot(path=str(shots / f"lab-{stem}-error.png"), full_page=True)
        return {"tracebacks": tracebacks}
    slider = page.locator(SLIDER).first
    slider.wait_for(state="visible", timeout=30_000)
    plot = page.locator(PLOT_SVG).first
    plot.wait_for(state="visible", timeout=30_000)
    plot.scroll_into_view_if_needed()
    page.wait_for_timeout(500)  # let plotly finish its first draw
    page.screenshot(path=str(shots / f"lab-{stem}.png"), full_page=True)
    plot_png = page.locator(".jp-OutputArea .plotly").first.screenshot(path=str(shots / f"lab-{stem}-plot.png"))
    slider_png = slider.screenshot(path=str(shots / f"lab-{stem}-slider.png"))
    box = plot.bounding_box()
    traces = page.locator(".jp-OutputArea .plotly .scatterlayer .trace, .jp-OutputArea .plotly .barlayer .trace").count()
    found = {"tracebacks": tracebacks, "plot_box": box, "plot_png": plot_png, "slider_png": slider_png,
             "traces": traces, "page_errors": page.errors}
    if interact:  # the kernel hears the slider and the figure redraws
        line = page.locator(".jp-OutputArea .plotly .scatterlayer .trace path.js-line").first
        before = line.get_attribute("d")
        slider.locator(".noUi-handle").first.focus()
        page.keyboard.press("End")
        with contextlib.suppress(Exception):
            page.wait_for_function("([el, d]) => el.getAttribute('d') !== d", arg=[line.element_handle(), before],
                                   timeout=15_000)
        found["line_changed"] = line.get_attribute("d") != before
        page.screenshot(path=str(shots / f"lab-{stem}-moved.png"), full_page=True)
    return found


def _lab_notebooks() -> list[str]:
    extra = [p for p in os.environ.get("RODPO_BROWSER_NOTEBOOKS", "").split(os.pathsep) if p]
    return ["generated"] + extra


@pytest.mark.parametrize("notebook", _lab_notebooks())
def test_notebook_widgets_and_plots_render_in_jupyterlab(browser, shots, tmp_path, notebook):
    if notebook == "generated":
        pytest.importorskip("anywidget", reason="plotly's FigureWidget needs anywidget in JupyterLab 4")
        (tmp_path / "nb").mkdir()
        nb = widget_notebook(tmp_path / "nb" / "widgets.ipynb")
    else:
        nb = (ROOT / notebook) if not Path(notebook).is_absolute() else Path(notebook)
        assert nb.exists(), nb
    found = run_in_lab(browser, nb, shots, tmp_path, interact=notebook == "generated")
    assert not found["tracebacks"], found["tracebacks"]
    assert found["plot_box"] and found["plot_box"]["width"] > 100 and found["plot_box"]["height"] > 100, found["plot_box"]
    assert found["traces"] >= 1, "the plotly figure has no drawn trace"
    assert drawn(found["plot_png"]), "the plotly figure's screenshot is blank"
    assert drawn(found["slider_png"], min_colours=3), "the slider's screenshot is blank"
    assert (shots / f"lab-{nb.stem}.png").stat().st_size > 0
    if "line_changed" in found:
        assert found["line_changed"], "moving the slider did not redraw the figure"


# ---------------------------------------------------------------------------------------
# The docs site

@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if os.environ.get("RODPO_DOCS_SITE"):
        d = Path(os.environ["RODPO_DOCS_SITE"])
        d = d if d.is_absolute() else ROOT / d
        assert (d / "index.html").exists(), f"RODPO_DOCS_SITE={d} holds no index.html"
        return d
    d = tmp_path_factory.mktemp("site") / "_docs"
    r = subprocess.run([sys.executable, str(ROOT / "docs/build.py"), "--no-exec", "--out", str(d)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return d


@contextlib.contextmanager
def serve(folder: Path):
    handler = functools.partial(_QuietHandler, directory=str(folder))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/"
    finally:
        srv.shutdown()
        srv.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _relative_links(page) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    return [h for h in hrefs if h and not urlparse(h).scheme and not h.startswith(("//", "#"))]


def test_docs_site_pages_load_and_internal_links_resolve(browser, site, shots):
    """Crawl the site from its home page: every page loads with its navigation, every relative
    link resolves, every page is reachable; on a site built with show_doc output (executed),
    every link to an anchor finds it."""
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert "index.html" in pages and "results.html" in pages, pages
    build = json.loads((site / ".build.json").read_text()) if (site / ".build.json").exists() else {}
    with serve(site) as base, new_page(browser) as page:
        seen, queue, broken, failed = set(), deque([base + "index.html"]), [], []
        checked_files, ids, anchors = {}, {}, []
        while queue:
            url = queue.popleft()
            if url in seen:
                continue
            seen.add(url)
            resp = page.goto(url, wait_until="load")
            if resp is None or resp.status != 200:
                failed.append((url, resp and resp.status))
                continue
            if not page.locator("nav.site-nav").count() or not page.locator("main").inner_text().strip():
                failed.append((url, "no navigation or empty page"))
            ids[url] = set(page.eval_on_selector_all("[id], a[name]", "els => els.map(e => e.id || e.name)"))
            for href in _relative_links(page) + [h for h in page.eval_on_selector_all(
                    "a[href^='#']", "els => els.map(e => e.getAttribute('href'))") if len(h) > 1]:
                target, _, frag = urljoin(url, href).partition("#")
                if frag:
                    anchors.append((url, href, target, frag))
                if target.endswith(".html") or target.endswith("/"):
                    if target not in seen:
                        queue.append(target)
                elif target not in checked_files:
                    with contextlib.suppress(Exception):
                        checked_files[target] = page.request.get(target).status
                    if checked_files.get(target) != 200:
                        broken.append((url, href))
        visited = {u[len(base):] for u in seen}
        missing = [(u, h) for u, h, t, f in anchors if t in ids and unquote(f) not in ids[t]]
        assert not failed, failed
        assert not broken, f"broken internal links: {broken}"
        assert set(pages) <= visited, f"pages not linked from the site: {sorted(set(pages) - visited)}"
        assert not page.errors, page.errors
        if build.get("executed"):
            assert not missing, f"links to missing anchors: {missing}"


def test_docs_site_plotly_figure_renders_offline(browser, site, shots):
    with serve(site) as base, new_page(browser) as page:
        page.goto(base + "results.html", wait_until="load")
        svg = page.locator(".plotly .main-svg").first
        svg.wait_for(state="visible", timeout=20_000)
        assert page.locator(".plotly .barlayer .trace, .plotly .scatterlayer .trace").count() >= 1
        plot = page.locator(".js-plotly-plot").first
        plot.scroll_into_view_if_needed()
        png = plot.screenshot(path=str(shots / "docs-results-plot.png"))
        page.screenshot(path=str(shots / "docs-results.png"), full_page=False)
        assert drawn(png), "the plotly figure's screenshot is blank"
        assert "NaN" not in page.locator("main").inner_text(), "the results page shows NaN: empty cells should be blank or an em dash"
        assert not page.errors, page.errors
        assert not [u for u in page.blocked if "plot" in u], page.blocked  # plotly.js came from the site itself


def test_docs_site_study_pages_draw_their_figures_and_tables(browser, site, shots):
    """Each study page (rodpo.report.STUDY_PAGES) draws its plotly figures and shows its tables, with no NaN and no error;
    the home page shows the README's tables. Screenshots of the home page and of each study page go to `shots`."""
    from rodpo.report import STUDY_PAGES
    with serve(site) as base, new_page(browser, 1400, 1000) as page:
        page.goto(base + "index.html", wait_until="load")
        assert page.locator("main table").count() >= 4, "the home page lacks the README's tables of findings"
        page.screenshot(path=str(shots / "docs-home.png"), full_page=False)
        for name in STUDY_PAGES:
            page.goto(base + f"study_{name}.html", wait_until="load")
            page.locator(".plotly .main-svg").first.wait_for(state="visible", timeout=20_000)
            plots = page.locator(".js-plotly-plot")
            assert plots.count() >= 1 and page.locator(".plotly .main-svg .trace").count() >= 1, name
            png = plots.first.screenshot(path=str(shots / f"docs-study_{name}-plot.png"))
            assert drawn(png), f"study_{name}: the figure's screenshot is blank"
            assert page.locator("main table").count() >= 1, f"study_{name}: no table"
            text = page.locator("main").inner_text()
            assert all(h in text for h in ("Question", "Setup", "Answer", "Commands")), f"study_{name}: a section is missing"
            assert "NaN" not in text and "Traceback" not in text, f"study_{name} shows NaN or an error"
            page.screenshot(path=str(shots / f"docs-study_{name}.png"), full_page=False)
        assert not page.errors, page.errors
