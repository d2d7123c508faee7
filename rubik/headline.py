"""The headline figures of a finished ``rubik reproduce`` run, redrawn from its records (no training).

    rubik figures data/results/imagenette --out figures      # part of `make figures`

The frontier figures come from the sweep's trial records, the tiny-vs-giant figure from every
seed's records, the formula figures from the run's committed tables (``tiny_formula_curve.csv``,
``tiny_formula_family.csv``: a Gaussian-process fit, which ``tests/test_committed_study.py``
re-derives from the records with the settings the study used) and the paper figures from
``data/paper/`` with our measured ImageNet points overlaid where a result exists. Each figure is
drawn with the same ``rubik.plots`` call and name as the notebooks use, so it matches the run's own
``figures/`` folder; figures/README.md says what each shows.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from rubik.frontier import pareto_frontier, pareto_layers
from rubik.paper import imagenet_overlay, label_trials, measured_results, paper_comparison, paper_table
from rubik.report import require_run_dir, tiny_vs_giant_runs
from rubik.sweep import finished, load_results
from rubik.tiny_vs_giant import TVG_LABELS, reference_dials

FIGURES = ("fig1_frontier", "fig3_frontier_dials", "fig_dial_importance", "fig_tiny_formula_gpr",
           "fig_tiny_formula_dials", "fig_tiny_vs_giant", "fig_paper_tinynet_imagenet", "fig_paper_appendix_ghostnet")
"""What ``headline_figures`` draws, in order (the notebooks' figure names)."""


def headline_figures(run_dir, out_dir, *, formats=("png",), results_dir=None, show=print) -> list[Path]:
    """Draw ``FIGURES`` for the run in ``run_dir`` into ``out_dir`` (``draw``); return the files written."""
    import matplotlib.pyplot as plt

    from rubik.plots import save_figure   # matplotlib: only when figures are drawn

    written = []
    for name, fig in draw(run_dir, results_dir=results_dir, show=show):
        written.extend(save_figure(fig, name, out_dir, formats=formats))
        plt.close(fig)
    return written


def draw(run_dir, *, results_dir=None, show=print):
    """``(name, Figure)`` for each of ``FIGURES`` of the run in ``run_dir``, one at a time.

    A figure whose table the run lacks (a preset that skips a notebook) is left out, with a note.
    ``results_dir``: where to look for measured ImageNet results to overlay on the paper figures
    (``rubik.paper.measured_results``; default ``data/results``)."""
    import matplotlib

    matplotlib.use("Agg")
    from rubik import plots   # matplotlib, after its backend is chosen

    run = require_run_dir(run_dir)
    cfg_file = run / "config.yaml"
    cfg = yaml.safe_load(cfg_file.read_text()) if cfg_file.is_file() else {}
    metric, preset = cfg.get("metric", "top1"), cfg.get("preset", run.name)

    def table(name):
        f = run / "tables" / f"{name}.csv"
        if not f.is_file():
            show(f"note: {f} not found: its figure is left out")
            return None
        return pd.read_csv(f)

    done = finished(label_trials(load_results(run / "sweep")), run / "sweep")
    random, giant = done[done["kind"] == "random"], done[done["kind"] == "giant"]
    frontier = pareto_frontier(done, x="flops", y=metric, dropna=True, kinds=("random",))
    yield "fig1_frontier", plots.plot_frontier(
        random, frontier, giant=giant, references=done[done["kind"] == "base"], y=metric,
        title=f"Figure 1: accuracy vs FLOPs ({preset}: {len(done)} models)")
    yield "fig3_frontier_dials", plots.plot_frontier_dials(
        frontier, giant=giant, title="Figure 3: resolution, depth and width of the frontier models")
    if (imp := table("dial_importance")) is not None:
        yield "fig_dial_importance", plots.plot_dial_importance(imp)

    refs = reference_dials()
    if (curve := table("tiny_formula_curve")) is not None:
        # the models the formula was fitted on (rubik.formula.fit_formula's points)
        points = pareto_layers(random, y=metric, min_points=int(cfg.get("formula_min_points", 4)))
        yield "fig_tiny_formula_gpr", plots.plot_formula_fit(
            curve, points.rename(columns={"flops_ratio": "c"}), marks=refs,
            title=f"Tiny formula: GP fits of r(c), d(c) on {len(points)} frontier models; w from the FLOPs constraint")
    if (family := table("tiny_formula_family")) is not None:
        yield "fig_tiny_formula_dials", plots.plot_frontier_dials(
            family[family["kind"] == "tiny"], label="our tiny formula",
            giant=refs[refs["family"] == "inversed giant formula"], tiny=refs[refs["family"] == "TinyNet (released)"],
            title="Dials of our tiny-formula models vs the released TinyNets and the giant formula (FLOPs at 224 px)")
    tvg = tiny_vs_giant_runs(run / "tiny_vs_giant")
    if len(tvg):
        seeds, px = tvg["seed"].nunique(), int(tvg["base_resolution"].iloc[0])
        yield "fig_tiny_vs_giant", plots.plot_tiny_vs_giant(
            tvg.assign(family=tvg["family"].map(TVG_LABELS)), y=metric,
            title=f"Tiny vs giant at matching FLOPs ({plots.seeds(seeds)}, base {px} px)")
    else:
        show(f"note: no tiny-vs-giant records under {run / 'tiny_vs_giant'}: fig_tiny_vs_giant is left out")

    overlay = imagenet_overlay(measured_results(results_dir, dataset="imagenet"))
    yield "fig_paper_tinynet_imagenet", plots.plot_accuracy_vs_flops(
        paper_comparison(), group="family", label="model", highlight=["TinyNet (tiny formula)"], overlay=overlay,
        title="TinyNets vs other small models on ImageNet (paper numbers)")
    yield "fig_paper_appendix_ghostnet", plots.plot_accuracy_vs_flops(
        paper_table("ghostnet_table1"), group="family", label="model", highlight=["GhostNet (tiny formula)"],
        label_groups=["GhostNet (tiny formula)", "GhostNet (width)", "MobileNetV3", "EfficientNet"], overlay=overlay,
        title="Appendix Fig. 1: GhostNet-A..D (tiny formula) vs width-scaled GhostNets")


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", metavar="RESULTS_DIR", help="a finished rubik reproduce output folder, e.g. "
                        "data/results/imagenette")
    parser.add_argument("--out", required=True, help="folder to write the figures to (e.g. figures)")
    parser.add_argument("--pdf", action="store_true", help="also write PDFs (default: PNG only)")


def main(args) -> int:
    formats = ("png", "pdf") if args.pdf else ("png",)
    paths = headline_figures(args.run_dir, args.out, formats=formats)
    print(f"{len(paths)} files -> {args.out}: " + ", ".join(p.name for p in paths))
    return 0
