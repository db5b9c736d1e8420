"The inspectors driven headlessly: widget values and plotly click events in, figure data out, checked against the run files and the model."
import json
import shutil

import numpy as np
import pytest
import torch

from rodpo.data import SeqDataset, load_dataset
from rodpo.inspect import (COLORS, NegativeInspector, RoutingInspector, attribute_breakdown, expert_load, item_routing,
                           false_negative_lines, modality_ablation, modality_contributions, negatives_table, pool_table,
                           popular_items)


@pytest.fixture(scope="module")
def experiment(shared_data, tmp_path_factory):
    "Two strategies, one seed, a sparse-MoE item encoder over ID, text and image on Scientific (about 20 s on two CPU cores)."
    import os
    os.environ["RODPO_DATA"] = str(shared_data)
    torch.set_num_threads(1)
    from rodpo.experiment import ExperimentConfig, run_experiment
    d = tmp_path_factory.mktemp("exp")
    cfg = ExperimentConfig("scientific", str(d), strategies=("hard", "topk_stochastic"), seeds=(0,),
                           model=dict(modalities=("id", "text", "image"), fusion="sparse_moe"),
                           stage1=dict(max_epochs=2), dpo=dict(max_epochs=1, eval_every=5), sampler=dict(K=20))
    run_experiment(cfg, log=lambda *a: None)
    return d


@pytest.fixture(scope="module")
def scientific(experiment):
    return load_dataset("scientific")


def probes(d, run): return json.loads((d / run / "probes.json").read_text())


def click(fig, trace_index, point_index):
    "The message the plotly front end sends when a point is clicked."
    t = fig.data[trace_index]
    fig._js2py_pointsCallback = dict(event_type="plotly_click", device_state=None,
                                     points=dict(xs=[t.x[point_index]], ys=[t.y[point_index]], point_indexes=[point_index], trace_indexes=[trace_index]))


def check_bars(ins, p, user, step):
    rec = {r["step"]: r for r in p["records"]}[step]
    j = p["users"].index(user)
    assert list(ins.bars.customdata) == rec["pool"][j]
    assert list(ins.bars.x) == [str(i) for i in rec["pool"][j]]
    np.testing.assert_allclose(ins.bars.y, rec["pool_scores"][j])
    neg, fut = set(rec["negatives"][j]), rec["pool_future"][j]
    want = [COLORS["false_negative"] if i in neg and f else COLORS["negative"] if i in neg else COLORS["future"] if f else COLORS["other"]
            for i, f in zip(rec["pool"][j], fut)]
    assert list(ins.bars.marker.color) == want


def test_widgets_drive_the_pool_and_the_step_marker(experiment, scientific):
    ins = NegativeInspector(experiment, scientific)
    assert ins.strategy.options == ("hard", "topk_stochastic")
    p = probes(experiment, "hard-seed0")
    assert list(ins.user.options) == p["users"] and list(ins.step.options) == [r["step"] for r in p["records"]]
    check_bars(ins, p, ins.user.value, ins.step.value)
    # hard: the negative is the top of the pool, shown as a sampled negative
    assert ins.bars.marker.color[0] in (COLORS["negative"], COLORS["false_negative"])
    user, step = p["users"][5], p["records"][-1]["step"]
    ins.user.value = user
    ins.step.value = step
    check_bars(ins, p, user, step)
    assert f"user {user} at step {step}" in ins.pool_fig.layout.title.text
    marker = ins.fn_fig.data[-1]
    assert marker.x == (step,)
    x, y = ins._lines["hard"]
    assert marker.y[0] == pytest.approx(float(y[list(x).index(step)]))
    assert ins.fn_fig.layout.shapes[0].x0 == step
    assert {t.name for t in ins.fn_fig.data[:-1]} == {"hard", "topk_stochastic"}
    # history and target of this user at their last training position
    seq = scientific.sequences[user]
    assert f"<b>target</b>: {int(seq[len(seq) - 3])} " in ins.history.value
    assert scientific.item_text[int(seq[len(seq) - 4]) - 1][:30] in ins.history.value.replace("&amp;", "&")
    # another run: its probes, the same user and step
    ins.strategy.value = "topk_stochastic"
    check_bars(ins, probes(experiment, "topk_stochastic-seed0"), user, step)
    assert ins.fn_fig.data[-1].x == (step,)
    assert ins.fn_fig.data[-1].y[0] == pytest.approx(float(np.interp(step, *ins._lines["topk_stochastic"])))
    ins.step.value = 0
    assert ins.fn_fig.data[-1].x == (0,) and ins.fn_fig.layout.shapes[0].x0 == 0
    check_bars(ins, probes(experiment, "topk_stochastic-seed0"), user, 0)


def test_negatives_table_lists_false_negatives(experiment, scientific):
    ins = NegativeInspector(experiment, scientific)
    p = probes(experiment, "hard-seed0")
    for step in [r["step"] for r in p["records"]]:
        for j, u in enumerate(p["users"]):
            n = negatives_table(p, u, step)
            rec = {r["step"]: r for r in p["records"]}[step]
            assert n.item.tolist() == rec["negatives"][j] and n.future.astype(int).tolist() == rec["negative_future"][j]
            assert (n.pool_rank == 1).all()  # hard negatives are the top of the pool
    ins.user.value = p["users"][2]
    n = negatives_table(p, p["users"][2], ins.step.value)
    assert f"of which {int(n.future.sum())} future items" in ins.negatives.value


def test_click_on_a_bar_selects_that_item(experiment, scientific):
    ins = NegativeInspector(experiment, scientific)
    p = probes(experiment, "hard-seed0")
    ins.user.value = p["users"][1]
    ins.step.value = p["records"][1]["step"]
    t = pool_table(p, p["users"][1], p["records"][1]["step"])
    click(ins.pool_fig, 0, 7)
    item = int(t.item.iloc[7])
    assert ins.selected == item
    widths = list(ins.bars.marker.line.width)
    assert widths[7] > 0 and sum(w > 0 for w in widths) == 1
    assert f"<b>item {item}</b>" in ins.details.value and "rank in pool 8" in ins.details.value
    assert f"score {t.score.iloc[7]:.3f}" in ins.details.value
    assert scientific.item_text[item - 1][:30] in ins.details.value.replace("&amp;", "&")
    # the documented callback path: the trace's own dispatch with plotly Points
    from plotly.callbacks import Points
    ins.bars._dispatch_on_click(Points(point_inds=[2], xs=[ins.bars.x[2]], ys=[ins.bars.y[2]], trace_name="pool", trace_index=0), None)
    assert ins.selected == int(t.item.iloc[2]) and list(ins.bars.marker.line.width).index(3) == 2
    # a click on a legend-only trace selects nothing; a new user clears the selection
    click(ins.pool_fig, 1, 0)
    assert ins.selected == int(t.item.iloc[2])
    ins.user.value = p["users"][4]
    assert ins.selected is None and max(ins.bars.marker.line.width) == 0


def test_random_user_button(experiment, scientific):
    ins = NegativeInspector(experiment, scientific, seed=3)
    p = probes(experiment, "hard-seed0")
    seen = set()
    for _ in range(5):
        before = ins.user.value
        ins.random_user.click()
        assert ins.user.value != before and ins.user.value in p["users"]
        check_bars(ins, p, ins.user.value, ins.step.value)
        seen.add(ins.user.value)
    assert len(seen) > 1


def test_works_from_the_json_files_alone(experiment, tmp_path, scientific):
    d = tmp_path / "results"
    shutil.copytree(experiment, d, ignore=shutil.ignore_patterns("*.pt"))
    assert not list(d.rglob("*.pt"))
    ins = NegativeInspector(d)  # the dataset is loaded by the name in experiment.json
    assert ins.ds is not None and ins.ds.n_items == scientific.n_items
    p = probes(d, "hard-seed0")
    ins.user.value = p["users"][-1]
    check_bars(ins, p, p["users"][-1], ins.step.value)
    # without a dataset the pool and negatives still show; the history says why it is missing
    ins = NegativeInspector(d, dataset=str(tmp_path / "missing.txt"))
    assert ins.ds is None and "could not be loaded" in ins.message.value and "no dataset" in ins.history.value
    check_bars(ins, p, ins.user.value, ins.step.value)
    # a dataset of another catalogue is refused
    other = SeqDataset("other", [np.array([1, 2, 3, 4])], 4)
    with pytest.raises(ValueError, match="4 items"):
        NegativeInspector(d, other)
    with pytest.raises(ValueError, match="no DPO run"):
        NegativeInspector(tmp_path)


def test_routing_heatmap_rows_are_router_probabilities(experiment, scientific):
    from rodpo.runs import load_checkpoint
    from rodpo.train import routing_stats
    ref = experiment / "reference-seed0"
    ins = RoutingInspector(ref, scientific)
    model = load_checkpoint(ref / "best.pt").eval()
    model.item_table()  # the MoE layer records its router probabilities for the whole catalogue
    direct = model.items.fuse.stats["probs"].numpy()
    ids = [5, 1, 1585, 300]
    ins.items.value = "5, 1 1585,300"
    assert ins.chosen == ids and list(ins.heat.y) == [str(i) for i in ids]
    z = np.asarray(ins.heat.z)
    np.testing.assert_allclose(z, direct[np.array(ids) - 1], atol=1e-5)
    np.testing.assert_allclose(z.sum(1), 1, atol=1e-5)
    # top-N popular
    ins.n_popular.value = 7
    ins.popular.click()
    pop = popular_items(scientific, 7).tolist()
    assert ins.chosen == pop and len(set(pop)) == 7 and 0 not in pop
    np.testing.assert_allclose(np.asarray(ins.heat.z), direct[np.array(pop) - 1], atol=1e-5)
    # a bad id is refused with the reason, the heatmap stays
    ins.items.value = "3, x7"
    assert ins.chosen == pop and "x7" in ins.message.value
    # catalogue load equals what training records
    assert list(ins.load_fig.data[0].y) == routing_stats(model)["item_expert_load"]
    assert float(ins.routing["entropy"].mean()) == pytest.approx(routing_stats(model)["item_router_entropy"], abs=1e-4)
    hist = json.loads((ref / "history.json").read_text())
    assert list(ins.train_fig.data[0].y) == [h["item_expert_load"][0] for h in hist]
    assert list(ins.train_fig.data[-1].y) == [h["item_router_entropy"] for h in hist]


def test_modality_split_is_exact(experiment):
    from rodpo.runs import load_checkpoint
    r = item_routing(load_checkpoint(experiment / "reference-seed0" / "best.pt"))
    assert r["modalities"] == ["id", "text", "image"]
    np.testing.assert_allclose(r["contributions"].sum(0), r["logits"], atol=1e-4)
    assert expert_load(r).sum() == r["probs"].shape[0]
    mc = modality_contributions(r)
    assert mc.shape == (3, r["n_experts"])
    ab = modality_ablation(r)
    assert ((ab >= 0) & (ab <= 1)).all()
    # replacing a modality by itself changes nothing: a zero contribution everywhere moves no item
    r0 = dict(r, contributions=np.zeros_like(r["contributions"]))
    assert (modality_ablation(r0) == 0).all()


def toy_dataset(n_items=30, n_attr=6, seed=0):
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(1, n_items + 1, size=rng.integers(4, 9)) for _ in range(40)]
    attrs = [[]] + [sorted(set(rng.integers(1, n_attr + 1, size=rng.integers(0, 3)).tolist())) for _ in range(n_items)]
    return SeqDataset("toy", seqs, n_items, attributes=attrs, n_attributes=n_attr)


def test_attribute_breakdown_and_a_model_source():
    from rodpo.model import SASRec
    torch.manual_seed(0)
    ds = toy_dataset()
    model = SASRec.for_dataset(ds, modalities=("id", "attributes"), fusion="sparse_moe", n_experts=3)
    ins = RoutingInspector(model, ds, attribute_names={1: "Hunting"}, top_attributes=4)
    r = ins.routing
    first = r["experts"][:, 0]
    table = attribute_breakdown(r, ds.attributes, top=4, names={1: "Hunting"})
    freq = np.bincount([a for x in ds.attributes for a in x], minlength=7)
    keep = np.argsort(-freq, kind="stable")[:4]
    for a, row in zip(keep, table.to_numpy()[:-1]):
        items = [i for i in range(1, ds.n_items + 1) if a in ds.attributes[i]]
        np.testing.assert_allclose(row, np.bincount(first[np.array(items) - 1], minlength=3) / len(items))
    np.testing.assert_allclose(table.to_numpy()[-1], np.bincount(first, minlength=3) / ds.n_items)
    assert any(s.startswith("Hunting (") for s in table.index) == (1 in keep)
    np.testing.assert_allclose(ins.attr_fig.data[0].z, table.to_numpy())
    assert ins.train_fig is not None and not ins.history  # a model has no training history
    np.testing.assert_allclose(np.asarray(ins.heat.z).sum(1), 1, atol=1e-5)


def test_refuses_a_model_without_router():
    from rodpo.model import SASRec
    ds = toy_dataset()
    with pytest.raises(ValueError, match="no MoE router"):
        RoutingInspector(SASRec.for_dataset(ds), ds)
    with pytest.raises(KeyError, match="not a probe user"):
        pool_table(dict(users=[1], records=[]), 2, 0)


def fake_experiment(d, ds, strategies=("random", "topk_stochastic"), users=(0, 1, 2), steps=(0, 10, 20), K=8, seed=0):
    "An experiment folder of JSON files only, with known false negatives and negatives outside the pool."
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    (d / "experiment.json").write_text(json.dumps(dict(dataset=ds.name, strategies=list(strategies), seeds=[0])))
    for s in strategies:
        run = d / f"{s}-seed0"
        run.mkdir()
        (run / "config.json").write_text(json.dumps(dict(dpo=dict(sampler=dict(strategy=s, K=K)), data=dict(n_items=ds.n_items))))
        records = []
        for step in steps:
            pool = [rng.choice(np.arange(1, ds.n_items), K, replace=False).tolist() for _ in users]  # item n_items is never in a pool
            fut = [rng.integers(0, 2, K).tolist() for _ in users]
            neg = [[p[0], p[1], int(ds.n_items)] for p in pool]  # the last one lies outside the pool
            records.append(dict(step=step, pool=pool, pool_scores=[sorted(rng.normal(size=K).round(3).tolist(), reverse=True) for _ in users],
                                negatives=neg, pool_future=fut, negative_future=[[f[0], f[1], 1] for f in fut], target_rank=[3] * len(users)))
        (run / "probes.json").write_text(json.dumps(dict(users=list(users), records=records)))
        diag = [dict(step=k, epoch=1, loss=0.69, false_negative_rate=float(rng.uniform(0, 0.5)), false_negative_grad_share=0.0,
                     negative_rank=1.0, reward_margin=0.0) for k in range(1, max(steps) + 1)]
        (run / "diagnostics.json").write_text(json.dumps(diag))
    return d


def test_colors_and_negatives_outside_the_pool(tmp_path):
    ds = toy_dataset(n_items=300)
    d = fake_experiment(tmp_path / "exp", ds)
    ins = NegativeInspector(d, ds, window=3)
    p = probes(d, "random-seed0")
    for user in p["users"]:
        for step in (20, 0):
            ins.user.value, ins.step.value = user, step
            check_bars(ins, p, user, step)
            rec = {r["step"]: r for r in p["records"]}[step]
            fut = rec["pool_future"][p["users"].index(user)]
            c = ins.bars.marker.color
            assert c[0] == (COLORS["false_negative"] if fut[0] else COLORS["negative"])
            assert all(c[k] == (COLORS["future"] if fut[k] else COLORS["other"]) for k in range(2, len(fut)))
            n = negatives_table(p, user, step)
            assert n.pool_rank.tolist() == [1, 2, 0] and n.future.tolist()[2]
            assert f"of which {int(n.future.sum())} future items" in ins.negatives.value
    # the moving average of the FN-rate line
    diag = json.loads((d / "random-seed0" / "diagnostics.json").read_text())
    x, y = ins._lines["random"]
    fnr = [r["false_negative_rate"] for r in diag]
    assert y[5] == pytest.approx(np.mean(fnr[3:6])) and y[0] == pytest.approx(fnr[0])
    np.testing.assert_allclose(ins.fn_fig.data[0].y, y)


def test_reproduction_curves_are_the_inspector_lines_averaged_over_seeds(tmp_path):
    "rodpo.reproduce.false_negative_curves smooths through rodpo.inspect.false_negative_lines: one seed, the same numbers"
    from rodpo.reproduce import false_negative_curves
    d = fake_experiment(tmp_path / "exp", toy_dataset(n_items=300))
    shutil.copytree(d / "random-seed0", d / "random-seed1")  # a second seed of one strategy, with other rates
    diag = json.loads((d / "random-seed1" / "diagnostics.json").read_text())
    (d / "random-seed1" / "diagnostics.json").write_text(json.dumps([dict(r, false_negative_rate=r["false_negative_rate"] + 0.1) for r in diag]))
    c = false_negative_curves(d, window=3)
    lines = [false_negative_lines(d, seed, window=3) for seed in (0, 1)]
    for strategy in ("random", "topk_stochastic"):
        got = c[c.strategy == strategy]
        ys = [ln[strategy][1] for ln in lines if strategy in ln]
        np.testing.assert_array_equal(got.step, lines[0][strategy][0])
        np.testing.assert_allclose(got.false_negative_rate, np.mean(ys, axis=0))
    assert sorted(c.strategy.unique()) == ["random", "topk_stochastic"] and len(lines[1]) == 1
    assert false_negative_curves(tmp_path / "empty").empty


def test_a_click_in_jupyterlab_reaches_the_kernel(tmp_path):
    "In a real JupyterLab with Chromium: clicking a bar of the pool chart shows that item's details (skipped where test_browser.py skips)."
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    tb = pytest.importorskip("test_browser")
    exe = tb._chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        tb._unavailable("the playwright Python package is not installed (pip install -e '.[dev]')")
    ds = toy_dataset(n_items=300)
    d = fake_experiment(tmp_path / "exp", ds, users=(0, 1), steps=(0, 10), K=10)
    (tmp_path / "nb").mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell(f"from rodpo.inspect import NegativeInspector\nins = NegativeInspector({str(d)!r})\nins")],
                                metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}), tmp_path / "nb" / "inspect.ipynb")
    p = probes(d, "random-seed0")
    item = p["records"][0]["pool"][0][5]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=tb.CHROMIUM_ARGS)
        try:
            with tb.jupyterlab(tmp_path / "nb", tmp_path) as url, tb.new_page(browser, 1400, 1000) as page:
                page.goto(f"{url}/lab/tree/inspect.ipynb")
                page.wait_for_function("""() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                    const s = w && w.sessionContext; return s && s.session && s.session.kernel && s.session.kernel.status === 'idle'; }""", timeout=60_000)
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                bars = page.locator(".jp-OutputArea .plotly").first.locator(".barlayer .trace").first.locator("path")
                bars.nth(9).wait_for(state="attached", timeout=60_000)
                page.wait_for_timeout(500)
                box = bars.nth(5).bounding_box()  # bars start below the visible range: click just under the bar's top
                page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 4)
                page.mouse.click(box["x"] + box["width"] / 2, box["y"] + 4)
                page.wait_for_function("t => [...document.querySelectorAll('.jp-OutputArea .widget-html-content')].some(e => e.innerText.includes(t))",
                                       arg=f"item {item}\n", timeout=20_000)
                assert "rank in pool 6" in " ".join(page.locator(".jp-OutputArea .widget-html-content").all_inner_texts())
                assert not page.errors, page.errors
        finally:
            browser.close()


@pytest.mark.parametrize("align", ["dense", "sparse"])
def test_routing_of_an_hm4sr_models_alignment_gates(align):
    "On an HM4SR model the inspector shows one modality's gate of its alignment MoE: its probabilities over every item, checked directly."
    from rodpo.hm4sr import HM4SR
    from rodpo.model import SASRec, SASRecConfig
    torch.manual_seed(0)
    ds = toy_dataset()
    ds.features = {"text": np.random.default_rng(1).normal(size=(ds.n_items + 1, 5)).astype(np.float32)}
    ds.features["text"][0] = 0
    model = HM4SR(SASRecConfig.for_dataset(ds, backbone="hm4sr", modalities=("id", "text"), hidden=8, n_experts=3, align_moe=align), ds.features, ds.attributes)
    for gate in ("id", "text"):
        r = item_routing(model, gate)
        model.eval()
        with torch.no_grad(): logits = model.align.gates[gate](model.tables[gate]()[1:])
        p = torch.softmax(logits, -1).numpy()
        np.testing.assert_allclose(r["probs"].sum(1), 1, atol=1e-6)
        np.testing.assert_array_equal(r["experts"][:, 0], p.argmax(1))
        if align == "dense": np.testing.assert_allclose(r["probs"], p, atol=1e-6)
        assert r["gate"] == gate and r["modalities"] == [gate] and r["experts"].shape == (ds.n_items, 1)
    assert item_routing(model)["gate"] == "id"
    ins = RoutingInspector(model, ds, gate="text")
    assert ins.routing["gate"] == "text" and "the text gate" in ins.load_fig.layout.annotations[0].text
    with pytest.raises(ValueError, match="gate='image': the alignment MoE gates the modalities"):
        item_routing(model, "image")
    with pytest.raises(ValueError, match="no alignment MoE"):
        item_routing(HM4SR(SASRecConfig.for_dataset(ds, backbone="hm4sr", modalities=("id", "text"), hidden=8, align_moe="none"), ds.features, ds.attributes))
    with pytest.raises(ValueError, match="this model has one item router"):
        item_routing(SASRec.for_dataset(ds, modalities=("id", "attributes"), fusion="sparse_moe"), "text")
