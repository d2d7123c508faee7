"""rubik.plots: every figure function on small frames, the writers, the paper CSVs."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from rubik import plots  # noqa: E402
from rubik.reproduce import PAPER_DIR, paper_table  # noqa: E402


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
    t1 = paper_table("ghostnet_table1").set_index("model")
    assert len(t1) == 19  # appendix Table 1 has 19 rows
    assert t1.loc["GhostNet-A", ["params_m", "flops_m", "top1", "top5"]].tolist() == [11.9, 591, 78.7, 94.2]
    assert t1.loc["GhostNet-D + HSwish + RA", "top1"] == 68.6
    assert np.isnan(t1.loc["MobileNetV3 Small 0.75x", "top5"])  # a blank in the paper stays blank
    lat = paper_table("latency_p40").set_index("name")["latency_ms"]
    assert lat.to_dict() == {"EfficientNet-B0": 99.85, "TinyNet-A": 81.30, "TinyNet-E": 9.18,
                             "EfficientNet-B^-4": 11.54}
