"""Figures and tables for the study.

Every ``plot_*`` function takes pandas DataFrames and returns a matplotlib
``Figure`` (nothing is shown or written here). ``save_figure`` writes it as PNG
and PDF under stable names; ``save_table`` writes a DataFrame as CSV and
Markdown. The notebooks only glue these together. Modules, one idea each:

* :mod:`~rubik.plots.style`: colours, column and unit lookups (``col``, ``mflops``), axis helpers;
* :mod:`~rubik.plots.labels`: point labels placed clear of the data (``place_labels``) and the
  layout checks (``text_overlaps``, ``layout_problems``);
* :mod:`~rubik.plots.output`: ``save_figure``, ``save_table``, ``to_markdown``;
* :mod:`~rubik.plots.frontier`: the sampled cloud, the frontier and its dials, the tiny formula's fit;
* :mod:`~rubik.plots.comparisons`: tiny vs giant, accuracy vs FLOPs of model families, latency,
  the FLOPs check, training curves;
* :mod:`~rubik.plots.study`: the decisive study's figures (``rubik.study``).

Conventions (as in the paper's Figure 1): random models grey, inversed giant
formula models green, the accuracy/FLOPs frontier red, TinyNets / our formula
blue; FLOPs on a log x axis, in millions of multiply-accumulates ("MFLOPs").
Column names are looked up flexibly (``resolution`` or ``r``, ``flops`` or
``flops_m``...) so the same functions work on sweep results and on the
transcribed paper tables.
"""
from .comparisons import (plot_accuracy_vs_flops, plot_flops_check, plot_latency, plot_latency_frontier,
                          plot_tiny_vs_giant, plot_training_curves)
from .frontier import (plot_dial_importance, plot_dial_scatter, plot_flops_histogram, plot_formula_fit,
                       plot_frontier, plot_frontier_dials, plot_sampling)
from .labels import _annotate, _figure_texts, layout_problems, place_labels, text_overlaps
from .output import save_figure, save_table, to_markdown
from .study import plot_base_accuracy_flops, plot_depth_trend, plot_dial_ladders, plot_schedule_sensitivity
from .style import COLORS, DIAL_COLORS, DIAL_NAMES, col, mflops, seeds, value_label

__all__ = [
    "COLORS", "save_figure", "save_table", "to_markdown", "mflops",
    "plot_sampling", "plot_flops_histogram", "plot_frontier", "plot_frontier_dials",
    "plot_dial_importance", "plot_dial_scatter", "plot_formula_fit", "plot_accuracy_vs_flops",
    "plot_tiny_vs_giant", "plot_latency", "plot_latency_frontier", "plot_flops_check", "plot_training_curves",
    "plot_schedule_sensitivity", "plot_dial_ladders", "plot_base_accuracy_flops", "place_labels", "text_overlaps", "layout_problems",
    "seeds", "value_label",
]
