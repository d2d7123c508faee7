"""Random twisted models for the study (``sample_twists``, re-exported by ``rubik.sweep``).

The paper samples 100 ``(r, d, w)`` from EfficientNet-B0 "with FLOPs no more than the base"
but gives neither ranges nor distribution. Our choices (all parameters):

* Ranges (``DEFAULT_RANGES``): ``r`` in [0.25, 1.25], ``d`` in [0.25, 1.5], ``w`` in [0.25, 1.25].
  Each dial may exceed 1 (TinyNet-A has d = 1.2) as long as the others pay for it; the lower
  ends reach below TinyNet-E (r 0.475, d 0.6, w 0.51 -> c = 0.063). With the FLOPs window
  ``c_min = 0.05 <= c <= 1``, the paper-like uniform mode puts (B0 at 224 px, real rounded
  FLOPs, 400 draws) ~15 % of the accepted samples in [0.05, 0.1), ~24 % in [0.1, 0.2), ~27 %
  in [0.2, 0.4), ~27 % in [0.4, 0.8) and ~8 % in the 1/3-octave [0.8, 1]: every FLOPs octave
  gets frontier candidates (~15 of 100 in the smallest). Wider upper ends (1.5) put more
  mass at large c and left only ~9 % in the smallest octave.
  At the proxy's ``base_resolution = 64`` the resolution floor (below) lifts ``r >= 0.5`` and the
  fixed stem/head weigh more, so uniform sampling gives only ~6 % in [0.05, 0.1): use
  ``mode="stratified"`` there (the ``cpu`` preset does).
* Modes. ``"uniform"`` (paper-like): each dial uniform in its range, candidates outside
  ``[c_min, 1]`` rejected. ``"stratified"``: the log-FLOPs window is cut into octave-wide strata
  (``ceil(log2(1 / c_min))`` of them, the last one narrower), each stratum receives an equal share
  of the ``n`` samples (the remainder goes to the largest-c strata), and candidates are drawn
  log-uniformly in each dial and kept only by the stratum that still needs them; the FLOPs
  distribution is then flat in log FLOPs.
* Resolution floor: ``Twist.image_size`` refuses inputs below ``rubik.cube.MIN_IMAGE_SIZE``
  (24 px), so ``r`` is clipped to ``rubik.cube.min_resolution(base_resolution)``: at the
  proxy's ``base_resolution = 64`` that is ``r >= 0.375`` (0.107 at 224). Reference models below the floor are skipped with a warning.
* Duplicates: different ``(r, d, w)`` often round to the same network (same px, blocks, channels);
  with ``unique=True`` (default) only the first is kept, so no compute is spent twice.

Every sample row has: ``id, kind ("random" | "base" | "giant"), base, base_resolution, r, d, w,
phi (giant only), resolution (input px), repeats, channels (comma-joined per stage), params,
flops (analytic MACs at that px), flops_ratio (vs the base at the same base_resolution),
sample_seed, arch``: ``arch`` is the model itself (``rubik.models.Arch.to_dict()``, rules
included), the columns before it are read off it (``arch_columns``) for tables. References come first: ``base`` (1, 1, 1) and the inversed giant formula
``giant_m1..giant_m4`` (phi = -1..-4), then ``r000, r001, ...``.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from rubik.cube import Twist, giant_twist, min_resolution
from rubik.models import BASES, Arch

DEFAULT_RANGES = {"r": (0.25, 1.25), "d": (0.25, 1.5), "w": (0.25, 1.25)}
DEFAULT_C_MIN = 0.05
GIANT_PHIS = (-1, -2, -3, -4)
MODES = ("uniform", "stratified")
_ALIASES = {"resolution": "r", "depth": "d", "width": "w"}
#: the columns ``arch_columns`` reads off an Arch (a sample row's, a study trial's)
ARCH_COLUMNS = ("base", "base_resolution", "r", "d", "w", "resolution", "repeats", "channels", "params", "flops",
                "flops_ratio")


def arch_columns(arch, *, num_classes: int, base_flops: float) -> dict:
    """The table columns of one Arch: dials, input px, blocks and channels per stage (comma-joined),
    params, FLOPs and FLOPs ratio (``base_flops``: the untwisted base's), and ``arch`` itself."""
    flops = arch.flops(num_classes)
    return dict(base=arch.base, base_resolution=arch.base_resolution, r=arch.twist.resolution,
                d=arch.twist.depth, w=arch.twist.width, resolution=arch.input_size,
                repeats=",".join(map(str, arch.repeats)), channels=",".join(map(str, arch.channels)),
                params=arch.params(num_classes), flops=flops, flops_ratio=flops / base_flops, arch=arch.to_dict())


def _check_ranges(ranges, base_resolution):
    rng = dict(DEFAULT_RANGES)
    if ranges:
        ranges = {_ALIASES.get(k, k): v for k, v in dict(ranges).items()}
        unknown = set(ranges) - set(rng)
        if unknown:
            raise ValueError(f"sample_twists: unknown dial(s) in ranges {sorted(unknown)}; use 'r', 'd', 'w' "
                             "(or 'resolution', 'depth', 'width')")
        rng.update({k: tuple(float(x) for x in v) for k, v in ranges.items()})
    for k, (lo, hi) in rng.items():
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi < lo:
            raise ValueError(f"sample_twists: range of {k!r} must satisfy 0 < lo <= hi, got ({lo}, {hi})")
    lo, hi = rng["r"]
    r_floor = min_resolution(base_resolution)
    if hi < r_floor:
        raise ValueError(f"sample_twists: the r range ({lo}, {hi}) is entirely below the {r_floor:.3g} floor "
                         f"(the smallest input size at base_resolution {base_resolution})")
    rng["r"] = (max(lo, r_floor), hi)
    return rng


def _check_sample_args(n, base, mode, c_min, c_max) -> None:
    if base not in BASES:
        raise ValueError(f"sample_twists: unknown base model {base!r}; expected one of {BASES}")
    if mode not in MODES:
        raise ValueError(f"sample_twists: unknown mode {mode!r}; expected one of {MODES}")
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"sample_twists: n must be a non-negative integer, got {n!r}")
    if c_max > 1 + 1e-9:
        raise ValueError(f"sample_twists: c_max={c_max} asks for FLOPs above the base (the study samples "
                         "models with FLOPs <= base, c_max <= 1)")
    if not (0 < c_min <= c_max):
        raise ValueError(f"sample_twists: need 0 < c_min <= c_max <= 1, got c_min={c_min}, c_max={c_max}")


def _reference_rows(describe, br: int) -> tuple[list, set]:
    """The base and the giants B^-1..B^-4 (a giant below the resolution floor is skipped, with a warning)."""
    key, row = describe(Twist(1.0, 1.0, 1.0), "base", "base")
    rows, seen = [row], {key}
    for phi in GIANT_PHIS:
        t = giant_twist(phi)
        try:
            t.image_size(br)
        except ValueError as e:
            warnings.warn(f"giant phi={phi} skipped: {e}", stacklevel=3)
            continue
        key, row = describe(t, "giant", f"giant_m{-phi}", float(phi))
        rows.append(row)
        seen.add(key)
    return rows, seen


def _strata(n: int, lc_lo: float, lc_hi: float):
    """``(n_strata, edges, need)``: the log-FLOPs strata of the stratified mode (one per halving of
    FLOPs, the last one shorter) and how many samples each still needs (as even as n allows)."""
    n_strata = max(1, math.ceil((lc_hi - lc_lo) / math.log(2) - 1e-9))
    edges = np.linspace(lc_lo, lc_hi, n_strata + 1) if n_strata == 1 else \
        np.array([lc_lo + k * math.log(2) for k in range(n_strata)] + [lc_hi])
    need = np.full(n_strata, n // n_strata)
    need[n_strata - n % n_strata:] += 1 if n % n_strata else 0
    return n_strata, edges, need


def sample_twists(n: int = 100, base: str = "efficientnet_b0", *, seed: int = 0, mode: str = "uniform",
                  ranges: dict | None = None, base_resolution: int | None = None, num_classes: int = 1000,
                  include_references: bool = True, c_min: float = DEFAULT_C_MIN, c_max: float = 1.0,
                  unique: bool = True, rules: str | None = None, max_draws: int | None = None,
                  conv=None) -> pd.DataFrame:
    """``n`` random twists of ``base`` with ``c_min <= FLOPs / base FLOPs <= c_max`` (+ references).

    See the module docstring for the ranges, the two modes and the resolution floor. Seeded and
    reproducible: the same arguments give the same table. ``max_draws`` caps the number of
    candidates tried (default ``2000 * n + 10000``); a ValueError names the unreachable FLOPs band.
    ``conv`` (ResNet and VGG families: ``"spconv"`` ...) is every sample's convolution, so their
    ``arch``, FLOPs and params are those of the network that will be trained.
    """
    _check_sample_args(n, base, mode, c_min, c_max)
    try:
        reference = Arch(base, Twist(), base_resolution, rules, conv)
    except ValueError as e:
        raise ValueError(f"sample_twists: {e}") from None
    br = reference.base_resolution
    rng_ = _check_ranges(ranges, br)
    f0 = float(reference.flops(num_classes))

    def describe(twist, kind, idx, phi=np.nan):
        arch = reference.replace(twist=twist)
        row = dict(id=idx, kind=kind, phi=phi, sample_seed=seed,
                   **arch_columns(arch, num_classes=num_classes, base_flops=f0))
        return (arch.input_size, arch.repeats, arch.channels), row

    rows, seen = _reference_rows(describe, br) if include_references else ([], set())
    gen = np.random.default_rng(seed)
    lo = np.array([rng_[k][0] for k in "rdw"])
    hi = np.array([rng_[k][1] for k in "rdw"])
    max_draws = max_draws or 2000 * n + 10000
    lc_lo, lc_hi = math.log(c_min), math.log(c_max)
    if mode == "stratified":
        n_strata, edges, need = _strata(n, lc_lo, lc_hi)
    draws, picked = 0, []
    while len(picked) < n:
        if draws >= max_draws:
            msg = f"sample_twists: only {len(picked)}/{n} samples after {draws} draws"
            if mode == "stratified":
                empty = [f"[{math.exp(edges[i]):.3g}, {math.exp(edges[i + 1]):.3g}]" for i in range(n_strata)
                         if need[i] > 0]
                msg += f"; FLOPs-ratio band(s) {empty} not reachable with ranges {rng_}"
            else:
                msg += f"; widen the ranges {rng_} or the FLOPs window [{c_min}, {c_max}]"
            raise ValueError(msg)
        draws += 1
        u = gen.random(3)
        if mode == "uniform":
            v = lo + u * (hi - lo)
        else:
            v = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
        try:
            twist = Twist(*(round(float(x), 4) for x in v))
            key, row = describe(twist, "random", None)
        except ValueError:  # e.g. a width that rounds a layer to zero channels
            continue
        lc = math.log(row["flops_ratio"])
        if not (lc_lo - 1e-12 <= lc <= lc_hi + 1e-12):
            continue
        if unique and key in seen:
            continue
        if mode == "stratified":
            s = int(np.clip(np.searchsorted(edges, lc, side="right") - 1, 0, n_strata - 1))
            if need[s] <= 0:
                continue
            need[s] -= 1
        seen.add(key)
        picked.append(row)
    for i, row in enumerate(picked):
        row["id"] = f"r{i:03d}"
    cols = ["id", "kind", "base", "base_resolution", "r", "d", "w", "phi", "resolution", "repeats", "channels",
            "params", "flops", "flops_ratio", "sample_seed", "arch"]
    return pd.DataFrame(rows + picked, columns=cols)
