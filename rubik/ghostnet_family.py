"""GhostNet-B/C/D reconstructed from the TinyNet appendix, and their peers at the same FLOPs.

**These are reconstructions.** The appendix (Table 1) shrinks GhostNet-A (591M FLOPs, 11.9M params,
240 px; appendix Table 2) "by the tiny formula" into GhostNet-B/C/D and prints two numbers per model,
params and FLOPs; the authors never released the dials (r, d, w), the input sizes or the weights.
``rubik`` recovers a model per level from those two numbers alone:

* **Candidates.** Params do not depend on the input size, so for every depth (block count, d up to
  ``SearchSpace.d_max``) and every width step (a run of w that builds the same rounded channels,
  ``SearchSpace.w_min`` .. ``w_max``, found exactly by bisection on the built plan: channel counts are
  non-decreasing in w) the real architecture's params (1000 classes) are counted; those within
  ``tol`` (2 %) of the appendix's params are kept, and for each the input size in px (24 .. 240)
  whose real FLOPs are nearest the appendix's FLOPs is found (FLOPs are non-decreasing in px). A
  candidate is a (blocks, width step, px) whose params *and* FLOPs are within 2 %.
* **The rule (fixed before any accuracy existed):**

  1. every candidate within 2 % on both numbers is eligible. (Requiring the printed figures
     exactly -- params to 0.1M, FLOPs to 1M -- would over-read them: the paper's own rounding does
     not follow rubik's exact counts to the last digit, e.g. TinyNet-B's real 200.7M is printed
     "202M"; the column ``rounds_to_paper`` still says which candidates do.)
  2. take the one nearest the tiny formula's (r*, d*) at the same FLOPs ratio
     ``c = FLOPs / 591M``: ``TinyFormula`` (rubik's GP, default kernel, random_state 0) fitted on
     TinyNet-A..E's released (r, d) against their real FLOPs ratio to EfficientNet-B0 (224 px, 1000
     classes) -- the paper's own formula is not released, TinyNet's dials are its only published
     output. "Nearest" is the Euclidean distance in (ln r, ln d) from (r*, d*) to the *box* of dials
     that build the candidate: ``int(240 r) == px`` gives r in [px/240, (px+1)/240), its block count
     an interval of d; a distance of 0 means the formula's point itself builds that network;
  3. ties (the same px and blocks, several widths) go to the smallest ``|params residual| + |FLOPs
     residual|`` (relative), then to the smallest width.

  The registered dials are then ``r`` = the smallest 4-decimal r with ``int(240 r) == px``, ``d`` = the
  middle of the block count's d interval (``rubik.models.arch.depth_for_blocks``), ``w`` = the
  smallest 4-decimal w of the width step (more decimals only if the step is narrower).

:func:`reconstruct` runs this for one (params, FLOPs) pair; :func:`reconstruct_all` for the three
appendix rows (``APPENDIX_TABLE1``); the registry's ``ghostnet_b/c/d`` (``RECONSTRUCTED`` in
``rubik.models.registry``) hold its result and ``tests/test_ghostnet_family.py`` re-derives them.
Provenance: ``data/paper/ghostnet_reconstruction.csv`` (:func:`write_provenance`).

Peers at each reconstruction's *real* FLOPs (:func:`peers`):

* ``ghostnet_a_giant_{b,c,d}``: EfficientNet's inversed giant formula on GhostNet-A,
  ``r, d, w = 1.15^phi, 1.2^phi, 1.1^phi`` with phi solved so the real FLOPs match
  (``rubik.formula.matched_giant_phi``);
* ``ghostnet_width_{b,c,d}``: the appendix's comparison, the original GhostNet (1.0x base, 224 px)
  changing width only, with w solved to the same real FLOPs (``rubik.flops.solve_width``; the
  paper's own peers 0.5x/1.0x/1.5x are at 42M/141M/300M);
* ``ghostnet_a_width_{b,c,d}``: width only on GhostNet-A itself (r = d = 1, w solved), the
  controlled comparison (same base, only the dials differ).

Everything is analytic (rounded plans, integer counts): :func:`reconstruct_all` takes a few seconds.
"""
from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from rubik.cube import MIN_IMAGE_SIZE, Twist, giant_twist
from rubik.errors import ConfigError
from rubik.models import Arch, BASE_RESOLUTION
from rubik.models.arch import _depth_steps

__all__ = ["APPENDIX_TABLE1", "LEVELS", "SOURCE", "SearchSpace", "Reconstruction", "width_steps", "r_for_px",
           "candidates", "tinynet_formula", "choose", "reconstruct", "reconstruct_all", "giant_peer", "width_peer",
           "peers", "summary", "write_provenance", "add_arguments", "main"]

BASE = "ghostnet_a"
#: GhostNet-A's FLOPs as the appendix prints them: the denominator of the FLOPs ratio c
GHOSTNET_A_PAPER_FLOPS = 591e6
#: appendix Table 1 (Han et al. 2020, TinyNet): params and FLOPs of GhostNet-B/C/D (ReLU rows)
APPENDIX_TABLE1 = {
    "ghostnet_b": dict(params=8.0e6, flops=300e6),
    "ghostnet_c": dict(params=5.0e6, flops=141e6),
    "ghostnet_d": dict(params=2.6e6, flops=52e6),
}
LEVELS = tuple(APPENDIX_TABLE1)
SOURCE = "reconstructed by rubik from Appendix Table 1 params and FLOPs (rubik.ghostnet_family)"


@dataclass(frozen=True)
class SearchSpace:
    """Where :func:`reconstruct` looks (GhostNet-A's cube at its 240-px base, 1000 classes)."""

    d_max: float = 2.0          # TinyNet-A/B have d = 1.2 / 1.1: shrinking can deepen
    w_min: float = 0.2
    w_max: float = 1.0          # every released TinyNet has w <= 1
    px_min: int = MIN_IMAGE_SIZE
    px_max: int = 240           # r <= 1: the tiny formula shrinks; every released TinyNet has r < 1
    tol: float = 0.02           # params and FLOPs within 2 % of the appendix
    base_resolution: int = 240
    num_classes: int = 1000


def _check_level(level: str) -> str:
    if level not in APPENDIX_TABLE1:
        raise ConfigError(f"unknown GhostNet level {level!r}; expected one of {', '.join(LEVELS)} "
                          "(appendix Table 1)")
    return level


def _check_base(base: str) -> str:
    if base != BASE:
        raise ConfigError(f"the GhostNet-B/C/D reconstruction is defined on base {BASE!r} only (appendix "
                          f"Table 2), got {base!r}")
    return base


# ----------------------------------------------------------------------------- width steps

@lru_cache(maxsize=8)
def width_steps(base: str = BASE, w_min: float = 0.2, w_max: float = 1.0, tol: float = 1e-7):
    """``[(w_lo, w_hi, w)]``: the runs of width that build the same rounded channels (on ``[w_min,
    w_max]``), each with a representative ``w`` (smallest 4-decimal width of the run). Exact up to
    ``tol``: every channel count is a non-decreasing step function of w, so a plan equal at both ends
    of an interval is equal inside it, and bisection finds every change."""
    from rubik.models.registry import get_family

    family = get_family(base)

    def plan(w):
        return family.plan(Twist(1.0, 1.0, w), None)

    bounds = []

    def split(a, b, pa, pb):
        if pa == pb:
            return
        if b - a < tol:
            bounds.append(b)
            return
        m = 0.5 * (a + b)
        pm = plan(m)
        split(a, m, pa, pm)
        split(m, b, pm, pb)

    split(w_min, w_max, plan(w_min), plan(w_max))
    edges = [w_min] + bounds + [w_max + tol]
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        target = plan(0.5 * (lo + hi)) if hi - lo > 2 * tol else plan(lo)
        w = None
        for decimals in (4, 5, 6, 7):
            q = math.ceil(lo * 10 ** decimals) / 10 ** decimals
            if q < hi and q <= w_max and plan(q) == target:
                w = round(q, decimals)
                break
        out.append((float(lo), float(min(hi, w_max)), float(w if w is not None else lo)))
    return tuple(out)


def r_for_px(px: int, base_resolution: int = 240) -> float:
    """The smallest 4-decimal r with ``int(base_resolution * r) == px``."""
    r = math.ceil(px / base_resolution * 1e4) / 1e4
    while int(base_resolution * r) < px:
        r = round(r + 1e-4, 4)
    if int(base_resolution * r) != px:
        raise ValueError(f"no 4-decimal r gives {px} px at base {base_resolution}")
    return r


def _nearest_px(arch: Arch, target: float, lo: int, hi: int, num_classes: int) -> int:
    """The px in [lo, hi] whose FLOPs (non-decreasing in px) are nearest ``target``."""
    f = lambda px: arch.flops(num_classes, resolution=px)  # noqa: E731
    a, b = lo, hi
    if f(a) >= target:
        return a
    if f(b) <= target:
        return b
    while b - a > 1:   # f(a) < target <= f(b)
        m = (a + b) // 2
        if f(m) < target:
            a = m
        else:
            b = m
    return a if abs(f(a) - target) <= abs(f(b) - target) else b


# ----------------------------------------------------------------------------- the search

def candidates(params: float, flops: float, space: SearchSpace = SearchSpace(), base: str = BASE) -> pd.DataFrame:
    """Every (blocks, width step, px) on ``base``'s cube whose real params and FLOPs are within
    ``space.tol`` of ``params`` and ``flops``. Columns: ``blocks, d, d_lo, d_hi, w, w_lo, w_hi, px, r,
    params, flops, params_resid, flops_resid, rounds_to_paper, repeats, channels``."""
    _check_base(base)
    if not (params > 0 and flops > 0):
        raise ValueError(f"params and FLOPs must be positive, got {params!r}, {flops!r}")
    nc, br = space.num_classes, space.base_resolution
    steps_w = width_steps(base, space.w_min, space.w_max)
    rows = []
    # the d interval of each block count as ``depth_for_blocks`` sees it (d up to 3), for counts
    # that some d <= d_max builds; d = the interval's middle, as depth_for_blocks gives it
    for d_lo, d_hi, blocks in (s for s in _depth_steps(base) if s[0] <= space.d_max):
        d = round(0.5 * (d_lo + d_hi), 4)
        # params are non-decreasing in w (every channel count is): bisect for the first width step
        # within tol, then walk up until the params leave it
        arches = {}

        def params_at(i):
            if i not in arches:
                arches[i] = Arch(base, Twist(1.0, d, steps_w[i][2]), br)
            return arches[i].params(nc)

        a, b = 0, len(steps_w)
        while a < b:
            m = (a + b) // 2
            if params_at(m) < (1 - space.tol) * params:
                a = m + 1
            else:
                b = m
        i = a
        while i < len(steps_w) and params_at(i) <= (1 + space.tol) * params:
            w_lo, w_hi, w = steps_w[i]
            arch, p = arches[i], params_at(i)
            i += 1
            px = _nearest_px(arch, flops, space.px_min, space.px_max, nc)
            f = arch.flops(nc, resolution=px)
            if abs(f - flops) > space.tol * flops:
                continue
            rows.append(dict(blocks=blocks, d=d, d_lo=d_lo, d_hi=d_hi, w=w, w_lo=w_lo, w_hi=w_hi, px=px,
                             r=r_for_px(px, br), params=p, flops=f, params_resid=p / params - 1,
                             flops_resid=f / flops - 1,
                             rounds_to_paper=bool(round(p / 1e5) == round(params / 1e5)
                                                  and round(f / 1e6) == round(flops / 1e6)),
                             repeats=",".join(map(str, arch.repeats)), channels=",".join(map(str, arch.channels))))
    return pd.DataFrame(rows, columns=["blocks", "d", "d_lo", "d_hi", "w", "w_lo", "w_hi", "px", "r", "params",
                                       "flops", "params_resid", "flops_resid", "rounds_to_paper", "repeats",
                                       "channels"])


def tinynet_formula():
    """``rubik.formula.TinyFormula`` (default kernel, random_state 0) fitted on the released
    TinyNet-A..E: their (r, d) against their real FLOPs ratio to EfficientNet-B0 (224 px, 1000 classes)."""
    from rubik.formula import TinyFormula
    from rubik.paper import TINYNETS, registry_table

    reg = registry_table(list(TINYNETS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # sklearn's convergence notes on five points
        return TinyFormula(base="efficientnet_b0").fit(reg[["flops_ratio", "r", "d"]])


def _box_distance(x: float, lo: float, hi: float) -> float:
    """|ln x - ln [lo, hi]|: 0 inside the interval."""
    if x < lo:
        return math.log(lo / x)
    if x > hi:
        return math.log(x / hi)
    return 0.0


def choose(cands: pd.DataFrame, r_star: float, d_star: float, base_resolution: int = 240) -> pd.DataFrame:
    """``cands`` with the rule's columns (``distance``, ``residual``) in the rule's order:
    the first row is the choice (see the module docstring)."""
    if not len(cands):
        return cands
    df = cands.copy()
    df["distance"] = [math.hypot(_box_distance(r_star, px / base_resolution, (px + 1) / base_resolution),
                                 _box_distance(d_star, lo, hi))
                      for px, lo, hi in zip(df.px, df.d_lo, df.d_hi)]
    df["residual"] = df.params_resid.abs() + df.flops_resid.abs()
    # distances equal up to float noise are ties (same px and block count)
    df["_dist"] = df.distance.round(9)
    return df.sort_values(["_dist", "residual", "w"], kind="mergesort").drop(columns="_dist").reset_index(drop=True)


@dataclass(frozen=True)
class Reconstruction:
    level: str
    params_paper: float
    flops_paper: float
    c: float                  # FLOPs / 591M
    r_star: float             # the tiny formula's r, d at c
    d_star: float
    candidates: pd.DataFrame  # all within tol
    ranked: pd.DataFrame      # the same, in the rule's order (first: the choice)
    twist: Twist              # the chosen dials

    @property
    def arch(self) -> Arch:
        return Arch(BASE, self.twist)

    @property
    def chosen(self) -> dict:
        return self.ranked.iloc[0].to_dict()


def reconstruct(level: str, *, space: SearchSpace = SearchSpace(), formula=None, base: str = BASE,
                params: float | None = None, flops: float | None = None) -> Reconstruction:
    """GhostNet-B/C/D (``level``) from the appendix's params and FLOPs (or the given ones) by the
    committed rule (module docstring). ValueError for an unknown level or base, or when no
    candidate comes within ``space.tol``."""
    _check_level(level)
    _check_base(base)
    params = APPENDIX_TABLE1[level]["params"] if params is None else float(params)
    flops = APPENDIX_TABLE1[level]["flops"] if flops is None else float(flops)
    formula = formula or tinynet_formula()
    c = flops / GHOSTNET_A_PAPER_FLOPS
    r_star, d_star = (float(x) for x in formula.predict(c))
    cands = candidates(params, flops, space, base)
    if not len(cands):
        raise ValueError(f"{level}: no GhostNet-A (r, d, w) has params {params / 1e6:.2f}M and FLOPs "
                         f"{flops / 1e6:.0f}M within {space.tol:.0%}")
    ranked = choose(cands, r_star, d_star, space.base_resolution)
    best = ranked.iloc[0]
    twist = Twist(float(best.r), float(best.d), float(best.w))
    arch = Arch(base, twist, space.base_resolution)
    assert arch.input_size == best.px and arch.params(space.num_classes) == best.params
    return Reconstruction(level, params, flops, c, r_star, d_star, cands, ranked, twist)


def reconstruct_all(space: SearchSpace = SearchSpace()) -> dict[str, Reconstruction]:
    formula = tinynet_formula()
    return {level: reconstruct(level, space=space, formula=formula) for level in LEVELS}


# ----------------------------------------------------------------------------- peers at the same FLOPs

def giant_peer(twist, *, base_resolution: int | None = None, num_classes: int = 1000) -> float:
    """phi (4 decimals) of the inversed giant GhostNet-A whose real FLOPs match ``twist``'s."""
    from rubik.formula import matched_giant_phi

    ref = Arch(BASE, base_resolution=base_resolution)
    target = Arch(BASE, twist, base_resolution).flops(num_classes)
    phi = matched_giant_phi(BASE, target / ref.flops(num_classes), base_resolution=base_resolution,
                            num_classes=num_classes)
    exact = ref.replace(twist=giant_twist(phi))
    # the bisection ends on a step's edge: the nearest 4-decimal phi building the same network
    for k in sorted(range(-100, 101), key=abs):
        q = round(round(phi, 4) + k * 1e-4, 4)
        same = ref.replace(twist=giant_twist(q))
        if same.plan == exact.plan and same.input_size == exact.input_size:
            return q
    return phi


def width_peer(twist, base: str = "ghostnet_100", *, base_resolution: int | None = None,
               num_classes: int = 1000, source_resolution: int | None = None) -> float:
    """Width of ``base`` (r = d = 1) whose real FLOPs are nearest GhostNet-A at ``twist``'s
    (``source_resolution``: GhostNet-A's base px, default 240; ``base_resolution``: the peer's, default
    its family's, 224 for the original GhostNet)."""
    from rubik.flops import solve_width

    target = Arch(BASE, twist, source_resolution).flops(num_classes)
    return solve_width(base, 1.0, 1.0, target, base_resolution=base_resolution, num_classes=num_classes)


def peers(twists: dict[str, Twist] | None = None) -> pd.DataFrame:
    """For each level: the reconstruction and its three peers at its real FLOPs (registry names,
    base, dials, px, params, FLOPs)."""
    from rubik.models.registry import RECONSTRUCTED

    twists = twists or {k: Twist(*v) for k, v in RECONSTRUCTED.items()}
    rows = []
    for level, t in twists.items():
        k = level[-1]
        models = [(level, BASE, t), (f"ghostnet_a_giant_{k}", BASE, giant_twist(giant_peer(t))),
                  (f"ghostnet_width_{k}", "ghostnet_100", Twist(1, 1, width_peer(t))),
                  (f"ghostnet_a_width_{k}", BASE, Twist(1, 1, width_peer(t, BASE)))]
        for name, base, tw in models:
            a = Arch(base, tw)
            rows.append(dict(level=level, name=name, base=base, r=tw.resolution, d=tw.depth, w=tw.width,
                             px=a.input_size, blocks=a.blocks, params=a.params(), flops=a.flops()))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- provenance

def summary(recs: dict[str, Reconstruction]) -> pd.DataFrame:
    """One row per level: the appendix's numbers, the formula's (r*, d*), the number of candidates
    (within 2 %, and rounding to the printed figures), the chosen dials and its residuals."""
    rows = []
    for level, rec in recs.items():
        b = rec.chosen
        rows.append(dict(name=level, params_m_paper=rec.params_paper / 1e6, flops_m_paper=rec.flops_paper / 1e6,
                         c=round(rec.c, 6), r_formula=round(rec.r_star, 4), d_formula=round(rec.d_star, 4),
                         n_candidates=len(rec.candidates),
                         n_rounding_to_paper=int(rec.candidates.rounds_to_paper.sum()),
                         n_blocks_options=int(rec.candidates.blocks.nunique()),
                         r=rec.twist.resolution, d=rec.twist.depth, w=rec.twist.width, px=int(b["px"]),
                         blocks=int(b["blocks"]), repeats=b["repeats"], channels=b["channels"],
                         params=int(b["params"]), flops=int(b["flops"]),
                         params_resid_pct=round(100 * b["params_resid"], 3),
                         flops_resid_pct=round(100 * b["flops_resid"], 3),
                         rounds_to_paper=bool(b["rounds_to_paper"]), distance=round(float(b["distance"]), 4),
                         source=SOURCE))
    return pd.DataFrame(rows)


def write_provenance(recs: dict[str, Reconstruction], out_dir="data/paper") -> list[Path]:
    """``ghostnet_reconstruction.csv`` (the chosen dials, one row per level) and
    ``ghostnet_reconstruction_candidates.csv`` (every candidate within 2 %, with its rank)."""
    out = Path(out_dir)
    s = summary(recs)
    p1 = out / "ghostnet_reconstruction.csv"
    s.to_csv(p1, index=False, quoting=csv.QUOTE_MINIMAL, float_format="%.6g")
    parts = []
    for level, rec in recs.items():
        c = rec.candidates.copy()
        key = ["blocks", "px", "w"]
        rank = {tuple(r): i + 1 for i, r in enumerate(rec.ranked[key].itertuples(index=False))}
        c.insert(0, "name", level)
        c["rank"] = [rank.get(tuple(r)) for r in c[key].itertuples(index=False)]
        c["chosen"] = c["rank"] == 1
        c["source"] = SOURCE
        parts.append(c.drop(columns=["channels"]))
    p2 = out / "ghostnet_reconstruction_candidates.csv"
    pd.concat(parts, ignore_index=True).to_csv(p2, index=False, float_format="%.6g")
    return [p1, p2]


def add_arguments(parser) -> None:
    parser.add_argument("--level", action="append", default=None, metavar="NAME",
                        help=f"one of {', '.join(LEVELS)} (repeatable; default all three)")
    parser.add_argument("--base", default=BASE, help=f"the base the levels shrink (only {BASE!r}: appendix Table 2)")
    parser.add_argument("--candidates", type=int, default=5, metavar="N",
                        help="also list each level's first N candidates in the rule's order (default 5; 0: none)")
    parser.add_argument("--write", action="store_true",
                        help="write data/paper/ghostnet_reconstruction.csv and ..._candidates.csv")


def main(args) -> int:
    """``rubik ghostnet``: the reconstruction table (and the peers at the same FLOPs)."""
    levels = [_check_level(x) for x in (args.level or LEVELS)]
    _check_base(args.base)
    formula = tinynet_formula()
    recs = {level: reconstruct(level, formula=formula, base=args.base) for level in levels}
    cols = ["name", "params_m_paper", "flops_m_paper", "r_formula", "d_formula", "n_candidates", "r", "d", "w",
            "px", "blocks", "params", "flops", "params_resid_pct", "flops_resid_pct", "distance"]
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(summary(recs)[cols].to_string(index=False))
        for level, rec in recs.items():
            if args.candidates > 0:
                print(f"\n{level}: {len(rec.candidates)} candidates within 2 %, first {args.candidates} by the rule")
                show = ["blocks", "d", "w", "px", "r", "params", "flops", "params_resid", "flops_resid", "distance"]
                print(rec.ranked[show].head(args.candidates).to_string(index=False))
        print("\npeers at each reconstruction's real FLOPs")
        print(peers({k: r.twist for k, r in recs.items()}).to_string(index=False))
    if args.write:
        if set(levels) != set(LEVELS):
            raise ConfigError("--write needs all three levels (the CSVs hold GhostNet-B, C and D)")
        from rubik.reproduce import REPO_ROOT

        for p in write_provenance(recs, REPO_ROOT / "data" / "paper"):
            print(f"wrote {p}")
    return 0


if __name__ == "__main__":   # python -m rubik.ghostnet_family (same as `rubik ghostnet`)
    import argparse

    _parser = argparse.ArgumentParser(prog="python -m rubik.ghostnet_family")
    add_arguments(_parser)
    raise SystemExit(main(_parser.parse_args()))
