"""rubik.plots: every figure function on small frames, the writers, the paper CSVs."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from rubik import plots  # noqa: E402
from rubik.paper import PAPER_DIR, paper_table  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def sweep_df():
    rng = np.random.default_rng(0)
    n = 30
    r, d, w = rng.uniform(0.5, 1, n), rng.uniform(0.3, 1, n), rng.uniform(0.35, 1, n)
    c = r ** 2 * d * w ** 2
    top1 = 70 + 5 * np.log2(c) + 2 * np.log2(r) + rng.normal(0, 0.5, n)
    kind = ["random"] * (n - 2) + ["giant", "giant"]
    return pd.DataFrame(dict(id=[f"r{i:03d}" for i in range(n)], kind=kind, r=r, d=d, w=w, flops=c * 387e6,
                             flops_ratio=c, top1=top1, name=[f"m{i}" for i in range(n)]))


def _check(fig):
    assert isinstance(fig, matplotlib.figure.Figure)
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_xlabel() or ax.get_ylabel(), "every panel has an axis label"
    return fig


def test_column_aliases_and_units():
    df = pd.DataFrame({"resolution": [1.0], "flops_m": [24.0], "acc": [0.5]})
    assert plots.col(df, "r") == "resolution"
    assert plots.col(df, "top1") == "acc"
    assert plots.mflops(df).iloc[0] == 24.0
    assert plots.mflops(pd.DataFrame({"flops": [387e6]})).iloc[0] == pytest.approx(387.0)
    with pytest.raises(KeyError, match="no column for 'w'"):
        plots.col(df, "w")


def test_sampling_and_histogram(sweep_df):
    refs = pd.DataFrame(dict(name=["TinyNet-E"], r=[0.475], d=[0.6], w=[0.51]))
    _check(plots.plot_sampling(sweep_df, references=refs))
    fig = _check(plots.plot_flops_histogram(sweep_df, reference_flops=387e6))
    assert fig.axes[0].get_xscale() == "log"


def test_frontier_figures(sweep_df):
    from rubik.frontier import dial_importance, pareto_frontier

    front = pareto_frontier(sweep_df)
    giant = sweep_df[sweep_df.kind == "giant"]
    fig = _check(plots.plot_frontier(sweep_df[sweep_df.kind == "random"], front, giant=giant,
                                     references=sweep_df.iloc[:1]))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    colors = {matplotlib.colors.to_hex(line.get_color()) for line in ax.get_lines()}
    assert plots.COLORS["frontier"] in colors and plots.COLORS["giant"] in colors
    labels = ax.get_legend_handles_labels()[1]
    assert any("frontier" in s for s in labels) and any("giant" in s for s in labels)
    _check(plots.plot_frontier_dials(front, giant=giant))
    imp = dial_importance(sweep_df, n_boot=20)
    _check(plots.plot_dial_importance(imp))
    _check(plots.plot_dial_scatter(sweep_df))


def test_formula_fit_and_comparisons(sweep_df):
    cs = np.geomspace(0.05, 1, 20)
    curve = pd.DataFrame(dict(c=cs, r=0.5 + 0.5 * cs ** 0.5, d=0.4 + 0.6 * cs ** 0.4, w=cs ** 0.3,
                              r_std=0.05, d_std=0.05))
    pts = sweep_df.rename(columns={"flops_ratio": "c"})
    marks = pd.DataFrame(dict(name=["E", "B^-4"], family=["TinyNet (released)", "inversed giant formula"],
                              c=[0.063, 0.108], r=[0.475, 0.57], d=[0.6, 0.48], w=[0.51, 0.68]))
    fig = _check(plots.plot_formula_fit(curve, pts, marks))
    assert len(fig.axes) == 3
    runs = pd.DataFrame([dict(family=f, level=l, flops=fl * 1e6, top1=60 + l + s, seed=s)
                         for f in ("tiny", "giant") for l, fl in ((1, 200), (2, 100)) for s in range(2)])
    _check(plots.plot_tiny_vs_giant(runs))
    hist = pd.DataFrame(dict(run=["a", "a", "b", "b"], epoch=[1, 2, 1, 2], top1=[10, 20, 15, 25]))
    _check(plots.plot_training_curves(hist))


def test_training_curves_fall_back_to_loss_when_evaluated_once():
    # one top-1 per run (evaluated at the end only): the curve is the training loss
    hist = pd.DataFrame(dict(run=["a"] * 3 + ["b"] * 3, epoch=[1, 2, 3] * 2, train_loss=[2.0, 1.5, 1.2, 2.1, 1.7, 1.4],
                             top1=[None, None, 40.0, None, None, 45.0]))
    ax = plots.plot_training_curves(hist).axes[0]
    assert ax.get_ylabel() == "train loss" and [len(line.get_xdata()) for line in ax.lines] == [3, 3]
    ax = plots.plot_training_curves(hist.assign(top1=[10.0, 20, 40, 15, 25, 45])).axes[0]
    assert "accuracy" in ax.get_ylabel()


def test_paper_figures_from_csv():
    t1 = paper_table("ghostnet_table1")
    _check(plots.plot_accuracy_vs_flops(t1, group="family", label="model", highlight=["GhostNet (tiny formula)"],
                                        overlay=t1.iloc[:1]))
    _check(plots.plot_latency(paper_table("latency_p40")))
    chk = pd.DataFrame(dict(name=["B0"], paper_flops_m=[387], flops=[385.8e6]))
    _check(plots.plot_flops_check(chk, paper="paper_flops_m"))


def test_save_figure_and_table(tmp_path, sweep_df):
    fig = plots.plot_flops_histogram(sweep_df)
    paths = plots.save_figure(fig, "fig_x", tmp_path / "figs")
    assert [p.name for p in paths] == ["fig_x.png", "fig_x.pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert (tmp_path / "figs" / "fig_x.png").read_bytes()[:4] == b"\x89PNG"
    df = pd.DataFrame({"model": ["a|b", "c"], "top1": [1.23456, np.nan]})
    csv, md = plots.save_table(df, "tab", tmp_path)
    assert pd.read_csv(csv).shape == (2, 2)
    text = md.read_text().splitlines()
    assert text[0] == "| model | top1 |" and text[1] == "|---|---:|"
    assert text[2] == "| a\\|b | 1.235 |" and text[3] == "| c |  |"


def test_paper_csvs_have_sources_and_match_the_appendix():
    for p in PAPER_DIR.glob("*.csv"):
        df = pd.read_csv(p)
        assert "source" in df.columns, p.name
        assert df["source"].notna().all() and (df["source"].str.len() > 5).all(), p.name
        assert not df["source"].str.contains("FACTS").any(), f"{p.name}: cite the paper, not a fact sheet"
    t1 = paper_table("ghostnet_table1").set_index("model")
    assert len(t1) == 19  # appendix Table 1 has 19 rows
    assert t1.loc["GhostNet-A", ["params_m", "flops_m", "top1", "top5"]].tolist() == [11.9, 591, 78.7, 94.2]
    assert t1.loc["GhostNet-D + HSwish + RA", "top1"] == 68.6
    assert np.isnan(t1.loc["MobileNetV3 Small 0.75x", "top5"])  # a blank in the paper stays blank
    lat = paper_table("latency_p40").set_index("name")["latency_ms"]
    assert lat.to_dict() == {"EfficientNet-B0": 99.85, "TinyNet-A": 81.30, "TinyNet-E": 9.18,
                             "EfficientNet-B^-4": 11.54}


# ----------------------------------------------------------------------------- labels that do not collide

def every_figure():
    """Every figure the presets write (the notebooks' calls), on the paper's CSVs and on a
    synthetic 17-model sweep like the cpu preset's: ``{name: Figure}``."""
    from rubik.formula import TinyFormula, derive_levels, formula_curve
    from rubik.frontier import dial_importance, pareto_frontier, pareto_layers
    from rubik.paper import TINYNETS, label_trials, paper_comparison, registry_table
    from rubik.sweep import sample_twists
    from rubik.tiny_vs_giant import TVG_LABELS, reference_dials

    samples = label_trials(sample_twists(12, "efficientnet_b0", seed=0, mode="stratified",
                                         base_resolution=64, num_classes=10))
    rng = np.random.default_rng(0)
    done = samples.assign(top1=25 + 4 * np.log2(samples.flops_ratio) + rng.normal(0, 2, len(samples)),
                          time_s=60.0)
    random, giant = done[done.kind == "random"], done[done.kind == "giant"]
    frontier = pareto_frontier(random, x="flops", y="top1")
    figs = {"fig_sampling_rdw": plots.plot_sampling(random, references=samples[samples.kind != "random"]),
            "fig_sampling_flops_hist": plots.plot_flops_histogram(random, reference_flops=float(
                samples.loc[samples.kind == "base", "flops"].iloc[0]))}
    hist = pd.DataFrame([dict(run=i, epoch=e, top1=10 + e * f * 5) for i, f in zip(done.id, done.flops_ratio)
                         for e in range(1, 7)])
    figs["fig_sweep_curves"] = plots.plot_training_curves(hist, color_by=done.set_index("id").flops / 1e6)
    figs["fig1_frontier"] = plots.plot_frontier(random, frontier, giant=giant, references=done[done.kind == "base"])
    figs["fig3_frontier_dials"] = plots.plot_frontier_dials(frontier, giant=giant)
    figs["fig_dial_importance"] = plots.plot_dial_importance(dial_importance(done, n_boot=20))
    figs["fig_dial_scatter"] = plots.plot_dial_scatter(done)
    formula = TinyFormula(base_resolution=64, num_classes=10).fit(pareto_layers(random, min_points=4))
    refs = reference_dials()
    curve = formula_curve(formula, c_min=refs.c.min(), c_max=1.0, n=12)
    figs["fig_tiny_formula_gpr"] = plots.plot_formula_fit(curve, frontier.rename(columns={"flops_ratio": "c"}),
                                                          marks=refs)
    family = derive_levels(formula, dict(zip(TINYNETS, refs.c[:5].clip(upper=1.0))), base_resolution=224)
    figs["fig_tiny_formula_dials"] = plots.plot_frontier_dials(
        family[family.kind == "tiny"], label="our tiny formula", giant=refs[refs.family == "inversed giant formula"],
        tiny=refs[refs.family == "TinyNet (released)"])
    runs = pd.DataFrame([dict(family=TVG_LABELS[f], level=lv, flops=fl * 1e6, top1=30 + lv + s, seed=s)
                         for f in ("tiny", "giant") for lv, fl in ((1, 20), (3, 9)) for s in range(2)])
    figs["fig_tiny_vs_giant"] = plots.plot_tiny_vs_giant(runs)
    main, t1 = paper_comparison(), paper_table("ghostnet_table1")
    figs["fig_paper_tinynet_imagenet"] = plots.plot_accuracy_vs_flops(
        main, group="family", label="model", highlight=["TinyNet (tiny formula)"])
    figs["fig_paper_appendix_ghostnet"] = plots.plot_accuracy_vs_flops(
        t1, group="family", label="model", highlight=["GhostNet (tiny formula)"],
        label_groups=["GhostNet (tiny formula)", "GhostNet (width)", "MobileNetV3", "EfficientNet"])
    figs["fig_paper_latency_p40"] = plots.plot_latency(paper_table("latency_p40"))
    chk = registry_table().dropna(subset=["paper_flops_m"]).assign(label=lambda x: x.model)
    figs["fig_flops_check"] = plots.plot_flops_check(chk, paper="paper_flops_m", ours="flops", label="label")
    return figs


def test_text_overlaps_finds_colliding_labels():
    fig, ax = plt.subplots()
    ax.text(0.5, 0.5, "TinyNet-A")
    ax.text(0.51, 0.5, "EfficientNet-B0")
    ax.text(0.1, 0.1, "alone")
    assert plots.text_overlaps(fig) == [("TinyNet-A", "EfficientNet-B0")]
    fig, ax = plt.subplots(figsize=(2.5, 2))   # minor tick labels that run into each other count too
    ax.set_xscale("log")
    ax.set_xlim(0.35, 1)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    assert any("0.9" in pair for pair in plots.text_overlaps(fig))


def test_place_labels_separates_crowded_point_labels():
    fig, ax = plt.subplots(figsize=(4, 3))
    xs, ys = [5, 5.3, 5.6], [5, 5.1, 5]
    ax.plot(xs, ys, "o")
    ax.set(xlim=(0, 10), ylim=(0, 10))
    plots._annotate(ax, xs, ys, ["TinyNet-A", "EfficientNet-B0", "GhostNet-1.5x"])
    assert plots.text_overlaps(fig)          # where _annotate puts them, they collide
    assert plots.text_overlaps(plots.place_labels(fig)) == []


def test_no_figure_has_overlapping_labels():
    figs = every_figure()
    from tests.test_reproduce import FIGURES

    assert set(FIGURES) <= set(figs)
    bad = {name: hits for name, fig in figs.items() if (hits := plots.text_overlaps(fig))}
    assert not bad, bad


# ----------------------------------------------------------------------------- layout: texts, legends, axes vs data

def test_layout_problems_finds_text_over_markers_legends_over_data_and_clipping():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2, 3], [1, 2, 3], "o")
    ax.set(xlim=(0, 4), ylim=(0, 4))
    assert plots.layout_problems(fig) == []
    ax.annotate("label of 1", (1, 1), xytext=(4, 3), textcoords="offset points")   # beside its own point: fine
    assert plots.layout_problems(fig) == []
    ax.text(1.9, 1.95, "hides 2")                                                   # over another point
    assert any("'hides 2' covers 1 data point" in p for p in plots.layout_problems(fig))

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.errorbar([1, 2], [1, 2], yerr=[0.5, 1.5], fmt="o", capsize=4, label="runs")
    ax.set(xlim=(0, 3), ylim=(0, 3))                                                # 2 + 1.5 runs out at the top
    assert any("outside the axes (clipped)" in p for p in plots.layout_problems(fig))
    ax.set_ylim(0, 4)
    assert plots.layout_problems(fig) == []
    ax.plot([1.5], [2], "s", label="in the middle")
    ax.legend(loc="center")                                                         # over that point
    assert any("the legend covers" in p for p in plots.layout_problems(fig))

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1], [1], "o")
    plots._annotate(ax, [1, 1], [1, 1], ["GhostNet-A", "GhostNet-A + HSwish"])
    assert any("name the same point" in p for p in plots.layout_problems(plots.place_labels(fig)))


def _study_figures():
    """The decisive study's two figures, from its committed records (as `rubik study report`)."""
    from rubik.study import load_study, schedule_table

    done = load_study(STUDY_SWEEP)
    lad = done[done["experiment"] == "ladder"]
    refs = schedule_table(done, "top1_test")
    refs = refs[(refs["level"] == int(lad["level"].iloc[0])) & (refs["epochs"] == int(lad["epochs"].iloc[0]))]
    from rubik.study_stats import analyse

    depth = analyse([STUDY_SWEEP], n_boot=200)["depth"]
    return {"fig_study_schedule": plots.plot_schedule_sensitivity(done, y="top1_test"),
            "fig_study_ladders": plots.plot_dial_ladders(done, y="top1_test", references=refs),
            "fig_study_depth_trend": plots.plot_depth_trend(depth)}


STUDY_SWEEP = PAPER_DIR.parents[1] / "data" / "results" / "imagenette_long" / "sweep"


def test_no_figure_hides_data_or_cuts_it_off():
    """Every figure the presets and `rubik study report` draw: no text over another point's marker,
    no legend over data, nothing cut off by the axes (with the code before issue 26: the B0 panel's
    legend on its error bar, the ladders' w labels on the next markers, two labels on GhostNet-A)."""
    figs = {**every_figure(), **_study_figures()}
    bad = {name: probs for name, fig in figs.items() if (probs := plots.layout_problems(fig))}
    assert not bad, bad


def _texts(fig):
    fig.canvas.draw()
    return [t.get_text() for t in plots._figure_texts(fig, fig.canvas.get_renderer())]


def test_figures_explain_themselves():
    figs = {**every_figure(), **_study_figures()}
    for name, fig in figs.items():
        assert not [t for t in _texts(fig) if "(s)" in t], name            # "3 seeds", not "3 seed(s)"
    # the legend of the GP figure names every curve: two GP fits and the solved width
    labels = [t.get_text() for t in figs["fig_tiny_formula_gpr"].legends[0].get_texts()]
    assert "r(c): GP mean" in labels and "d(c): GP mean" in labels and any(s.startswith("w(c): solved") for s in labels)
    # every legend swatch has the colour of the artist it names (the GP bands: each in its dial's colour)
    fig = figs["fig_tiny_formula_gpr"]
    drawn = {}
    for ax in fig.axes:
        for artist in [*ax.lines, *ax.collections]:
            drawn.setdefault(artist.get_label(), []).append(artist)

    def rgb(artist):
        c = artist.get_color() if hasattr(artist, "get_xdata") else np.atleast_2d(artist.get_facecolor())[0]
        return tuple(round(v, 3) for v in matplotlib.colors.to_rgb(c))

    legend = fig.legends[0]
    pairs = list(zip(legend.legend_handles, [t.get_text() for t in legend.get_texts()]))
    assert any("σ band" in lab for _, lab in pairs)
    for handle, lab in pairs:
        assert {rgb(a) for a in drawn[lab]} == {rgb(handle)}, lab
    # the frontier is the random models' (a giant model may lie above it), and the legend says so
    assert any("frontier of the random models" in s for s in figs["fig1_frontier"].axes[0].get_legend_handles_labels()[1])
    # both ends of the log FLOPs axis of the dial panels have a labelled tick
    ax = figs["fig_tiny_formula_dials"].axes[0]
    lo, hi = ax.get_xlim()
    shown = [t.get_position()[0] for t in ax.get_xticklabels()
             if t.get_text() and lo * 0.999 <= t.get_position()[0] <= hi * 1.001]
    assert min(shown) == pytest.approx(lo) and max(shown) == pytest.approx(hi)
    # latency bars: a legend for the colours, the grid behind the bars, no empty axis
    fig = figs["fig_paper_latency_p40"]
    ax = fig.axes[0]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "TinyNet (tiny formula)", "inversed giant formula", "EfficientNet-B0 (base)"]
    assert ax.get_axisbelow() is True and ax.get_xlim()[1] <= 1.1 * 99.85
    # the study figures' y axis says what was measured, not the column name
    for name in ("fig_study_schedule", "fig_study_ladders"):
        assert figs[name].axes[0].get_ylabel() == "top-1 (%) on the held-out test half of val"
    # GhostNet-A and GhostNet-A + HSwish have the same FLOPs: one label
    assert "GhostNet-A / GhostNet-A + HSwish" in _texts(figs["fig_flops_check"])
