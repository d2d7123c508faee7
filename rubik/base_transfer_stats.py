"""The pre-registered analysis of the tiny formula on other bases (issue 33): the GhostNet appendix
study (``data/results/ghostnet_appendix/README.md``) and the ResNet row
(``data/results/resnet_row/README.md``), written before either has a record.

Every estimand is a difference of two *cells* (one model trained for 20 epochs; ``mu`` its mean
top-1 on the held-out ``test`` half over seeds 0, 1, 2), with the three intervals, the conservative
union and p of ``rubik.study_stats.estimate``, Holm over each study's primary family, the plan's
decision words (``rubik.study_stats.decide``) and the smallest difference the design detects
(``rubik.study_stats.detectable_difference``). Cells are read by trial ``name``, the names
``rubik study init`` gives them (``rubik.ghostnet_study.LABELS``, ``rubik.resnet_study.LABELS``).

GhostNet (per level L = B, C, D): primary family A (9 tests): A_width = recon - width,
A_giant = recon - giant, A_ours = ours - giant; secondary (unadjusted): S_dials = recon - width_a,
S_base = width_a - width, S_ours = ours - recon.
ResNet row (per level 1, 2): primary family R (6 tests): R_giant = tiny - giant, R_width = tiny -
width, R_ours = ours - giant; secondary: S_ours = ours - tiny, S_giant = giant - width.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rubik.ghostnet_study import GHOSTNET_LEVELS
from rubik.ghostnet_study import LABELS as GHOSTNET_NAMES
from rubik.resnet_study import LABELS as RESNET_NAMES
from rubik.study_stats import (ALPHA, N_BOOT, Bootstrap, Cells, decide, detectable_difference, estimate, holm,
                               load_cells, pooled_variance)

__all__ = ["EPOCHS", "PLANNING_SD", "PLANNED_SEEDS", "GHOSTNET_CONTRASTS", "RESNET_CONTRASTS", "RESNET_LEVELS",
           "ghostnet_cell", "resnet_cell", "ghostnet_estimands", "resnet_estimands", "base_transfer_estimands",
           "analyse_base_transfer"]

#: the schedule both studies train, the seeds a cell is planned with
EPOCHS = 20
PLANNED_SEEDS = 3
#: the planning seed std: the 20-epoch seed std of the B0 studies' CPU cells on the test half (points);
#: once this study's cells have 2+ seeds, ``mdd_measured`` uses their own pooled std instead
PLANNING_SD = 0.81
RESNET_LEVELS = (1, 2)

def _words(subject: str, peer: str, plural: bool = False) -> dict:
    """The decision words of ``subject - peer``: "<subject> beats <peer>", "... loses to ...", "not decided"
    (neither; not "equal": each row's ``mdd`` says what the design could have detected)."""
    beat, lose = ("beat", "lose") if plural else ("beats", "loses")
    return dict(positive=f"{subject} {beat} {peer}", negative=f"{subject} {lose} to {peer}", neutral="not decided")


# (estimand id, family, a, b, words): theta = mu_a - mu_b; family "" = secondary (no decision)
GHOSTNET_CONTRASTS = (("A_width", "A", "recon", "width", _words("the reconstruction", "width-only")),
                      ("A_giant", "A", "recon", "giant", _words("the reconstruction", "the giant")),
                      ("A_ours", "A", "ours", "giant", _words("our formula", "the giant")),
                      ("S_dials", "", "recon", "width_a", None), ("S_base", "", "width_a", "width", None),
                      ("S_ours", "", "ours", "recon", None))
RESNET_CONTRASTS = (("R_giant", "R", "tiny", "giant", _words("the TinyNet dials", "the giant", plural=True)),
                    ("R_width", "R", "tiny", "width", _words("the TinyNet dials", "width-only", plural=True)),
                    ("R_ours", "R", "ours", "giant", _words("our formula", "the giant")),
                    ("S_ours", "", "ours", "tiny", None), ("S_giant", "", "giant", "width", None))


def ghostnet_cell(family: str, level: str) -> tuple[str, int]:
    """The cell key ``(name, epochs)`` of a GhostNet study family at level ``b``/``c``/``d``."""
    return GHOSTNET_NAMES[family].format(L=level.upper()), EPOCHS


def resnet_cell(family: str, level: int) -> tuple[str, int]:
    """The cell key ``(name, epochs)`` of a ResNet-row family at level 1 or 2."""
    return RESNET_NAMES[family].format(lv=int(level)), EPOCHS


def _measured_sd(cells: Cells, keys) -> float:
    """The pooled seed std of ``keys``' cells (those with 2+ seeds), NaN without any."""
    s, df = 0.0, 0
    for k in keys:
        if k in cells.correct and cells.n(k) >= 2:
            s += np.var(cells.correct[k].mean(axis=1) * 100, ddof=1) * (cells.n(k) - 1)
            df += cells.n(k) - 1
    return math.sqrt(s / df) if df else float("nan")


def _estimands(cells: Cells, boot, pooled, contrasts, levels, cell, primary: str, level_label, *,
               planning_sd: float, power: float) -> pd.DataFrame:
    n_primary = sum(1 for c in contrasts if c[1]) * len(levels)
    sd_study = _measured_sd(cells, [cell(f, lv) for lv in levels for f in {c[2] for c in contrasts} |
                                    {c[3] for c in contrasts}])
    rows = []
    for lv in levels:
        for est, fam, a, b, _words in contrasts:
            coef = {cell(a, lv): 1.0, cell(b, lv): -1.0}
            row = estimate(f"{est}({level_label(lv)}): {a} - {b}", coef, cells, boot, pooled, family=fam,
                           contrast=est, level=level_label(lv), a=a, b=b, epochs=EPOCHS)
            # the smallest difference the design detects: at Holm's first-step level (alpha / n) for the
            # primary family, alpha for the rest; planned seeds and std, and the measured ones once there
            alpha = ALPHA / n_primary if fam else ALPHA
            planned = {k: (x, PLANNED_SEEDS) for k, x in coef.items()}
            row.update(detectable_difference(planned, planning_sd, alpha=alpha, power=power))
            measured = {k: (x, cells.n(k) if k in cells.correct else PLANNED_SEEDS) for k, x in coef.items()}
            row["mdd_measured"] = detectable_difference(measured, sd_study, alpha=alpha, power=power)["mdd"] \
                if all(n >= 2 for _, n in measured.values()) else float("nan")
            rows.append(row)
    out = pd.DataFrame(rows)
    fam = out["family"] == primary
    out["holm_p"] = np.nan
    out.loc[fam, "holm_p"] = holm(out.loc[fam, "cons_p"])
    words = {c[0]: c[4] for c in contrasts}
    out["decision"] = [decide(r, **words[r["contrast"]]) if r["family"] == primary else ""
                       for _, r in out.iterrows()]
    return out


def ghostnet_estimands(cells: Cells, boot, pooled, *, planning_sd: float = PLANNING_SD,
                       power: float = 0.8) -> pd.DataFrame:
    """The GhostNet appendix plan: per level B, C, D the primary A_width, A_giant, A_ours (Holm over
    the 9) and the secondary S_dials, S_base, S_ours, each with its ``mdd`` (planned: 3 seeds a cell,
    ``planning_sd``) and ``mdd_measured`` (this study's pooled seed std and seeds)."""
    return _estimands(cells, boot, pooled, GHOSTNET_CONTRASTS, GHOSTNET_LEVELS, ghostnet_cell, "A",
                      str.upper, planning_sd=planning_sd, power=power)


def resnet_estimands(cells: Cells, boot, pooled, *, planning_sd: float = PLANNING_SD,
                     power: float = 0.8) -> pd.DataFrame:
    """The ResNet row's plan: per level 1, 2 the primary R_giant, R_width, R_ours (Holm over the 6)
    and the secondary S_ours, S_giant, each with ``mdd`` and ``mdd_measured``."""
    return _estimands(cells, boot, pooled, RESNET_CONTRASTS, RESNET_LEVELS, resnet_cell, "R", str,
                      planning_sd=planning_sd, power=power)


def base_transfer_estimands(cells: Cells, boot, pooled) -> dict:
    """``{"ghostnet": table, "resnet": table}`` for the studies that have at least one cell in ``cells``."""
    out = {}
    gh = {ghostnet_cell(f, lv) for f in GHOSTNET_NAMES for lv in GHOSTNET_LEVELS}
    rn = {resnet_cell(f, lv) for f in RESNET_NAMES for lv in RESNET_LEVELS}
    if gh & set(cells.correct):
        out["ghostnet"] = ghostnet_estimands(cells, boot, pooled)
    if rn & set(cells.correct):
        out["resnet"] = resnet_estimands(cells, boot, pooled)
    return out


def analyse_base_transfer(sweep_dirs, *, half: str = "test", cpu_only: bool = False, n_boot: int = N_BOOT) -> dict:
    """The plan's tables of the GhostNet and ResNet studies found in ``sweep_dirs`` (``ghostnet``,
    ``resnet``: only those with records) and ``pooled``, the seed std per schedule of the cells read."""
    cells = load_cells(sweep_dirs, half=half, cpu_only=cpu_only)
    pooled = pooled_variance(cells)
    boot = Bootstrap(cells, n=n_boot)
    out = base_transfer_estimands(cells, boot, pooled)
    out["pooled"] = pd.DataFrame([dict(epochs=e, seed_std=math.sqrt(v), df=df) for e, (v, df) in pooled.items()
                                  if not isinstance(e, tuple)])
    return out
