"""The tiny formula: resolution and depth as smooth functions of the FLOPs ratio.

``TinyFormula`` (scikit-learn style) fits two Gaussian process regressions on the
frontier models of a sweep: ``r(c)`` and ``d(c)``, ``c`` = FLOPs / base FLOPs.
The width then follows from the FLOPs constraint, solved against the real,
rounded architecture (``rubik.solve_width``), not from ``c = r^2 d w^2``,
which ignores the fixed stem/head and channel rounding (see ``rubik.flops.solve_width``).

Kernel (the paper does not give one): on ``log c``::

    ConstantKernel(1.0, (1e-2, 1e2)) * RBF(1.0, (0.5, 20)) + WhiteKernel(1e-3, (1e-6, 2))

with ``normalize_y=True`` (targets standardised, so the constant kernel only
needs to be O(1)) and 10 optimizer restarts (the likelihood of r(c) on the
Imagenette frontier has two optima; 3 restarts found the worse one once the
bounds changed). Why:

* ``log c``: the frontier spans ~1.5 decades of FLOPs with points spaced
  roughly evenly in log FLOPs, and r, d vary smoothly per octave, not per MFLOP.
* RBF: r(c), d(c) are expected smooth and monotone-ish; a squared-exponential
  with a length-scale floor of 0.5 (in natural-log units, ~0.7 octave) can't
  chase the noise of single frontier points, whose dials jump because several
  (r, d, w) give the same FLOPs.
* WhiteKernel: frontier dials are noisy (training noise decides which of
  several near-equal models lands on the front); the noise level is learned,
  so the predictive std includes it (``predict(..., return_std=True)``) and
  is honest about that scatter. Its upper bound is 2, i.e. twice the
  standardised targets' variance: "all of it is noise" (noise ~1) must be
  reachable. The earlier bound, 0.5, capped d(c)'s noise on the Imagenette
  frontier (sklearn warned that it sat at the bound; the fit wanted ~1), which
  made d(c)'s predictive std too small (0.055 instead of 0.075). When a dial
  does not vary with c at all, the constant kernel goes to its lower bound
  instead and sklearn says so: that warning means "no trend in c", and the
  fit is then a constant plus noise.

``predict`` and ``twist`` refuse ``c`` outside ``(0, 1]`` (FLOPs above the base);
extrapolating below the smallest fitted ``c`` is allowed but the std grows.
"""
from __future__ import annotations

import warnings

import copy
import dataclasses
import math
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from rubik import cube
from rubik.config import TrainConfig
from rubik.cube import Twist, giant_twist, min_resolution
from rubik.frontier import pareto_layers
from rubik.models import BASES, Arch
from rubik.sampling import arch_columns

#: GhostNet-B/C/D FLOPs targets from GhostNet-A (paper appendix: 591M -> 300M/141M/52M).
GHOSTNET_FAMILY = {"ghostnet_b": 300 / 591, "ghostnet_c": 141 / 591, "ghostnet_d": 52 / 591}
#: the TinyNet-like family derived from B0 (c = 1/2 .. 1/16, the inversed giant phi = -1..-4).
TINY_FAMILY = {"tiny_c0.5": 0.5, "tiny_c0.25": 0.25, "tiny_c0.125": 0.125, "tiny_c0.0625": 0.0625}


def default_kernel():
    """The documented default: ``C * RBF(log c) + White``."""
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    return (ConstantKernel(1.0, (1e-2, 1e2)) * RBF(1.0, (0.5, 20.0))
            + WhiteKernel(1e-3, (1e-6, 2.0)))


def _as_c(c, what="c"):
    arr = np.atleast_1d(np.asarray(c, dtype=float))
    if arr.size == 0:
        raise ValueError(f"{what}: empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: FLOPs ratio must be finite, got {arr[~np.isfinite(arr)][:5]}")
    if (arr <= 0).any():
        raise ValueError(f"{what}: FLOPs ratio must be > 0, got {arr[arr <= 0][:5]}")
    if (arr > 1 + 1e-9).any():
        raise ValueError(f"{what}: target FLOPs above the base (ratio {arr[arr > 1 + 1e-9][:5]} > 1); "
                         "the tiny formula only shrinks models")
    return arr


def _bound_note(message: str) -> str:
    """sklearn's "The optimal value found for dimension 0 of parameter k1__k2__length_scale is close
    to the specified lower bound 0.5 ..." as "length_scale at its lower bound 0.5"."""
    import re

    m = re.search(r"parameter (\S+) is close to the specified (lower|upper) bound ([0-9.e+-]+)", message)
    if not m:
        return message.split(". ")[0]
    name = {"k1__k2__length_scale": "length_scale", "k1__k1__constant_value": "constant",
            "k2__noise_level": "noise_level"}.get(m.group(1), m.group(1))
    return f"{name} at its {m.group(2)} bound {m.group(3).rstrip('.')}"


class TinyFormula(BaseEstimator):
    """GP regressions of resolution ``r`` and depth ``d`` on the FLOPs ratio ``c``.

    A scikit-learn estimator: ``fit(frontier)`` (a table with columns ``c_col, r_col, d_col``) or,
    symmetric with ``predict``, ``fit(c, y)`` with ``y`` the ``(n, 2)`` array of ``(r, d)``;
    ``predict(c)`` takes a scalar or ``(n,)`` / ``(n, 1)`` FLOPs ratios; ``predict`` before ``fit``
    raises sklearn's ``NotFittedError``; ``clone``, ``get_params``, ``set_params`` as usual.

    Parameters (all stored as given):
      base: base model family the width is solved for (``"efficientnet_b0"``,
        ``"ghostnet_a"``, ``"resnet50"``).
      kernel: sklearn kernel, or None for ``default_kernel()``.
      n_restarts_optimizer, random_state: passed to ``GaussianProcessRegressor``.
      log_target: fit ``log r``/``log d`` instead of ``r``/``d`` (keeps
        predictions positive when extrapolating); default False, as the paper.
      c_col, r_col, d_col: column names in the frontier table.
      width_solver: None -> ``rubik.solve_width`` on the real architecture.
        A callable ``(r, d, c) -> w`` replaces it (tests, other cost models).
      base_resolution, rules, num_classes: passed to the FLOPs model when solving
        the width (None = the family's own).

    After ``fit``: ``gp_r_``, ``gp_d_`` (fitted regressors), ``c_range_``,
    ``n_points_``.
    """

    def __init__(self, base: str = "efficientnet_b0", kernel=None, *, n_restarts_optimizer: int = 10,
                 random_state: int | None = 0, log_target: bool = False, c_col: str = "flops_ratio",
                 r_col: str = "r", d_col: str = "d", width_solver: Callable | None = None,
                 base_resolution: int | None = None, rules: str | None = None, num_classes: int = 1000):
        self.base = base
        self.kernel = kernel
        self.n_restarts_optimizer = n_restarts_optimizer
        self.random_state = random_state
        self.log_target = log_target
        self.c_col = c_col
        self.r_col = r_col
        self.d_col = d_col
        self.width_solver = width_solver
        self.base_resolution = base_resolution
        self.rules = rules
        self.num_classes = num_classes

    # -- fitting -----------------------------------------------------------------------
    def fit(self, frontier, y=None) -> "TinyFormula":
        """Fit on a frontier table with columns ``c_col, r_col, d_col`` (one row per model), or on
        FLOPs ratios ``frontier`` (``(n,)`` or ``(n, 1)``) with ``y`` = ``(n, 2)`` columns ``(r, d)``."""
        from sklearn.gaussian_process import GaussianProcessRegressor

        if frontier is None:
            raise ValueError("TinyFormula.fit: frontier is None")
        if y is not None:   # the sklearn form: X = c, y = (r, d)
            c_in = np.asarray(frontier, dtype=float)
            y_in = np.asarray(y, dtype=float)
            if c_in.ndim == 2 and c_in.shape[1] == 1:
                c_in = c_in[:, 0]
            if c_in.ndim != 1 or y_in.ndim != 2 or y_in.shape != (len(c_in), 2):
                raise ValueError(f"TinyFormula.fit(c, y): c must be (n,) or (n, 1) and y (n, 2) = (r, d); "
                                 f"got {np.shape(frontier)} and {np.shape(y)}")
            frontier = pd.DataFrame({self.c_col: c_in, self.r_col: y_in[:, 0], self.d_col: y_in[:, 1]})
        if self.width_solver is None:
            if self.base not in BASES:
                raise ValueError(f"TinyFormula: unknown base model {self.base!r}; expected one of {BASES}")
        df = frontier if isinstance(frontier, pd.DataFrame) else pd.DataFrame(frontier)
        cols = [self.c_col, self.r_col, self.d_col]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"TinyFormula.fit: frontier lacks column(s) {missing}; have {list(df.columns)}")
        if len(df) < 2:
            raise ValueError(f"TinyFormula.fit: need at least 2 frontier points to fit r(c), d(c); got {len(df)}")
        vals = df[cols].astype(float).to_numpy()
        if not np.isfinite(vals).all():
            raise ValueError("TinyFormula.fit: NaN/inf in the frontier's "
                             f"{cols} (rows {df.index[~np.isfinite(vals).all(1)].tolist()[:10]})")
        c, r, d = vals.T
        _as_c(c, "TinyFormula.fit")
        if (r <= 0).any() or (d <= 0).any():
            raise ValueError("TinyFormula.fit: r and d must be > 0")
        if np.unique(c).size < 2:
            raise ValueError("TinyFormula.fit: need at least 2 distinct FLOPs ratios")
        X = np.log(c)[:, None]
        # A hyperparameter at a bound is a fact about the fit, not a fault (module docstring: a
        # length scale at its 0.5 floor means the dial wants to wiggle faster than the floor allows,
        # a constant at its floor means no trend in c). sklearn warns once per fit; keep the facts in
        # ``bounds_hit_`` instead, {"r": [...], "d": [...]}, for the caller to show and explain.
        from sklearn.exceptions import ConvergenceWarning

        self.bounds_hit_ = {}
        for dial, y_dial in (("r", r), ("d", d)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                gp = GaussianProcessRegressor(self._kernel(), normalize_y=True,
                                              n_restarts_optimizer=self.n_restarts_optimizer,
                                              random_state=self.random_state).fit(X, self._fwd(y_dial))
            for w in caught:
                if not issubclass(w.category, ConvergenceWarning):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            self.bounds_hit_[dial] = sorted({_bound_note(str(w.message)) for w in caught
                                             if issubclass(w.category, ConvergenceWarning)})
            setattr(self, f"gp_{dial}_", gp)
        self.c_range_ = (float(c.min()), float(c.max()))
        self.n_points_ = len(c)
        return self

    def _kernel(self):
        from sklearn.base import clone

        return clone(self.kernel) if self.kernel is not None else default_kernel()

    def _fwd(self, v):
        return np.log(v) if self.log_target else v

    def _check_fitted(self):
        check_is_fitted(self, ("gp_r_", "gp_d_"), msg="TinyFormula is not fitted yet: call fit(frontier) first")

    # -- prediction --------------------------------------------------------------------
    def predict(self, c, return_std: bool = False):
        """Predicted ``(r, d)`` for FLOPs ratio(s) ``c`` in (0, 1].

        Returns ``mean`` of shape ``(n, 2)`` (columns r, d), or ``(2,)`` for a
        scalar ``c``; with ``return_std=True`` returns ``(mean, std)`` of the same
        shape (std of the GP posterior incl. the learned noise; with
        ``log_target`` the delta-method std of ``exp``).
        """
        self._check_fitted()
        scalar = np.ndim(c) == 0
        if np.ndim(c) == 2 and np.shape(c)[1] == 1:   # sklearn's X shape
            c = np.asarray(c)[:, 0]
        cs = _as_c(c, "TinyFormula.predict")
        X = np.log(cs)[:, None]
        mr, sr = self.gp_r_.predict(X, return_std=True)
        md, sd = self.gp_d_.predict(X, return_std=True)
        if self.log_target:
            mr, md = np.exp(mr), np.exp(md)
            sr, sd = sr * mr, sd * md
        mean, std = np.column_stack([mr, md]), np.column_stack([sr, sd])
        if scalar:
            mean, std = mean[0], std[0]
        return (mean, std) if return_std else mean

    def curve(self, cs=None, *, n: int = 60, with_width: bool = True) -> pd.DataFrame:
        """The fitted curves on a grid: columns ``c, r, d, r_std, d_std`` (+ ``w`` solved per c).

        ``cs`` default: ``n`` points log-spaced over the fitted range of ``c`` (for plotting with
        ``rubik.plots.plot_formula_fit``).
        """
        self._check_fitted()
        if cs is None:
            cs = np.exp(np.linspace(np.log(self.c_range_[0]), np.log(self.c_range_[1]), n))
        cs = _as_c(cs, "TinyFormula.curve")
        mean, std = self.predict(cs, return_std=True)
        df = pd.DataFrame(dict(c=cs, r=mean[:, 0], d=mean[:, 1], r_std=std[:, 0], d_std=std[:, 1]))
        if with_width:
            df["w"] = [self.solve_width(a, b, c) for a, b, c in zip(df.r, df.d, df.c)]
        return df

    def solve_width(self, r: float, d: float, c: float) -> float:
        """Width giving FLOPs ratio ``c`` at dials ``r, d`` (real rounded architecture)."""
        if self.width_solver is not None:
            return float(self.width_solver(r, d, c))
        from rubik.flops import analytic_flops, solve_width   # torch (rubik.flops): fitting a formula needs none

        kw = dict(base_resolution=self.base_resolution, num_classes=self.num_classes, rules=self.rules)
        target = c * analytic_flops(self.base, (1.0, 1.0, 1.0), **kw)
        return float(solve_width(self.base, r, d, target, **kw))

    def twist(self, c):
        """The full ``Twist(r, d, w)`` for FLOPs ratio ``c`` (w solved for the real FLOPs)."""
        cs = _as_c(c, "TinyFormula.twist")
        if cs.size != 1:
            raise ValueError("TinyFormula.twist: takes one FLOPs ratio; use derive_family for several")
        r, d = self.predict(float(cs[0]))
        return Twist(float(r), float(d), self.solve_width(float(r), float(d), float(cs[0])))

    def arch(self, c):
        """The model for FLOPs ratio ``c``: ``Arch(base, twist(c), base_resolution, rules)``."""
        return Arch(self.base, self.twist(c), self.base_resolution, self.rules)


def fit_formula(results, *, metric: str = "top1", min_points: int = 4, kinds=("random",), **formula_kw):
    """The tiny formula of a sweep, one way for every caller: ``(formula, points)``.

    ``points`` are the finished trials of ``kinds`` on the Pareto frontier of ``metric`` against
    FLOPs, plus the next Pareto layers while there are fewer than ``min_points``
    (``rubik.frontier.pareto_layers``; the presets' ``formula_min_points``); ``formula`` is
    ``TinyFormula(**formula_kw).fit(points)``. Notebooks 04 (the formula) and 05 (tiny vs giant)
    both call this, so they cannot fit different formulas.
    """
    done = results[(results["status"] == "done") & results["kind"].isin(list(kinds))]
    points = pareto_layers(done, x="flops", y=metric, min_points=min_points)
    return TinyFormula(**formula_kw).fit(points), points


def giant_phi(c: float) -> float:
    """The inversed giant formula's *nominal* phi for FLOPs ratio ``c``: ``log2 c`` (c=1/2 -> phi=-1).

    EfficientNet's convention treats alpha*beta^2*gamma^2 (= 1.92) as 2, so phi = -k is the
    model "at 1/2^k of the FLOPs". With real rounded networks this is far off at small c (B0's
    stem and 1280-channel head do not shrink: phi = -4 has c = 0.108, not 1/16), hence
    ``matched_giant_phi``.
    """
    return math.log2(c)


def matched_giant_phi(base: str, c: float, *, base_resolution: int | None = None, num_classes: int = 1000,
                      rules: str | None = None, tol: float = 1e-5) -> float:
    """The (continuous) phi whose inversed-giant network has real FLOPs closest to ``c`` x base.

    FLOPs are a non-decreasing step function of phi (r, d and w all grow with it); we bisect
    for the last phi at or below the target and take the closer of that network and the next
    one up. ValueError if the target is below what phi reaches before the input drops under
    ``rubik.cube.MIN_IMAGE_SIZE`` px at ``base_resolution``.
    """
    (c,) = _as_c(c, "matched_giant_phi")
    reference = Arch(base, base_resolution=base_resolution, rules=rules)
    target = c * reference.flops(num_classes)

    def flops(phi):
        return reference.replace(twist=giant_twist(phi)).flops(num_classes)

    # smallest phi with a valid input size: r = GIANT_GAMMA ** phi >= min_resolution
    lo = math.log(min_resolution(reference.base_resolution)) / math.log(cube.GIANT_GAMMA) + 1e-6
    lo = max(lo, -30.0)
    while True:  # move up past widths that round a layer to nothing
        try:
            f_lo = flops(lo)
            break
        except ValueError:
            lo += 0.05
            if lo >= 0:
                raise
    if target < f_lo:
        raise ValueError(f"matched_giant_phi: FLOPs ratio {c:g} is below the smallest inversed-giant "
                         f"{base} at >= {reference.replace(twist=giant_twist(lo)).input_size} px "
                         f"(phi={lo:.2f}, ratio {f_lo / (target / c):.3g})")
    a, b = lo, 0.0
    if flops(b) <= target:
        return 0.0
    while b - a > tol:
        mid = 0.5 * (a + b)
        if flops(mid) <= target:
            a = mid
        else:
            b = mid
    return a if abs(flops(a) - target) <= abs(flops(b) - target) else b


def derive_family(formula: TinyFormula, cs: Sequence[float] | Mapping[str, float] | None = None,
                  base: str | None = None, *, giant: str | None = "matched",
                  base_resolution: int | None = None, num_classes: int = 1000,
                  include_giant: bool | None = None) -> pd.DataFrame:
    """Models of the tiny formula (and the matching inversed giant formula) at FLOPs ratios ``cs``.

    ``cs``: ratios, or ``{name: ratio}``; None -> ``TINY_FAMILY`` for EfficientNet-B0
    and ``GHOSTNET_FAMILY`` (GhostNet-B/C/D at 300M/141M/52M of GhostNet-A's 591M)
    for ``ghostnet_a``. For each ratio: one ``kind="tiny"`` row (r, d from the GP,
    w solved) and one ``kind="giant"`` row (EfficientNet's inversed giant formula): with
    ``giant="matched"`` (default) phi is solved so the real FLOPs match ``c`` (a fair
    comparison at equal FLOPs, as the paper's B^-4 at 24M), with ``"nominal"`` it is
    ``log2 c`` (phi = -1..-4 for c = 1/2..1/16; real FLOPs then much higher, see ``giant_phi``),
    None: no giant rows (``include_giant=False`` is the same). Giant rows are named ``<name>_giant``.

    Columns: ``name, kind, target_c, r, d, w, r_std, d_std, phi, resolution (px),
    flops, params, flops_ratio, train_kwargs`` where ``train_kwargs`` is a dict for
    ``TrainConfig(**template_fields, **train_kwargs)``: ``arch`` is the row's ``Arch`` (its dict:
    base, twist, base resolution and rules); see ``family_configs``.
    """

    formula._check_fitted()
    if include_giant is not None and not include_giant:
        giant = None
    base = base or formula.base
    if base != formula.base:  # e.g. the B0 study's r(c), d(c) applied to GhostNet-A
        formula = copy.copy(formula)
        formula.base = base
    if base_resolution is None:
        base_resolution = formula.base_resolution
    if cs is None:
        cs = GHOSTNET_FAMILY if base.startswith("ghostnet") else TINY_FAMILY
    items = list(cs.items()) if isinstance(cs, Mapping) else [(f"tiny_c{c:g}", c) for c in cs]
    if not items:
        raise ValueError("derive_family: no FLOPs ratios given")
    _as_c([c for _, c in items], "derive_family")
    if giant not in ("matched", "nominal", None, False):
        raise ValueError(f"derive_family: giant must be 'matched', 'nominal' or None, got {giant!r}")
    rows = []
    for name, c in items:
        (r, d), (sr, sd) = formula.predict(float(c), return_std=True)
        w = formula.solve_width(float(r), float(d), float(c))
        rows.append(dict(name=name, kind="tiny", target_c=float(c), r=float(r), d=float(d), w=w,
                         r_std=float(sr), d_std=float(sd), phi=np.nan))
        if giant:
            phi = (matched_giant_phi(base, float(c), base_resolution=base_resolution, num_classes=num_classes,
                                     rules=formula.rules) if giant == "matched" else giant_phi(float(c)))
            g = giant_twist(phi)
            rows.append(dict(name=f"{name}_giant", kind="giant", target_c=float(c), r=g.resolution,
                             d=g.depth, w=g.width, r_std=np.nan, d_std=np.nan, phi=phi))
    df = pd.DataFrame(rows)
    reference = Arch(base, base_resolution=base_resolution, rules=formula.rules)
    arches = [reference.replace(twist=Twist(a, b, c)) for a, b, c in zip(df.r, df.d, df.w)]
    if formula.width_solver is None:  # real FLOPs / params / px (skipped with a custom cost model)
        f0 = reference.flops(num_classes)
        cols = [arch_columns(a, num_classes=num_classes, base_flops=f0) for a in arches]
        for k in ("flops", "params", "flops_ratio", "resolution"):
            df[k] = [x[k] for x in cols]
    df["train_kwargs"] = [dict(arch=a.to_dict()) for a in arches]
    return df


def family_configs(family: pd.DataFrame, template=None) -> dict:
    """``{name: TrainConfig}`` for a ``derive_family`` table, copying the rest from ``template``."""

    template = template or TrainConfig()
    return {row.name: dataclasses.replace(template, **row.train_kwargs) for row in family.itertuples()}


def synthetic_frontier(n: int = 25, *, r_fn=None, d_fn=None, noise: float = 0.02,
                       c_range=(0.05, 1.0), seed: int = 0) -> pd.DataFrame:
    """A frontier with known smooth answers, for validating the fit.

    Defaults: ``r(c) = 0.5 + 0.5 * c^0.5`` and ``d(c) = 0.45 + 0.55 * c^0.4`` (both 1 at
    c = 1, TinyNet-like at small c), ``c`` log-uniform in ``c_range``, Gaussian noise
    of std ``noise`` on r and d. Columns ``flops_ratio, r, d, r_true, d_true``.
    """
    r_fn = r_fn or (lambda c: 0.5 + 0.5 * np.sqrt(c))
    d_fn = d_fn or (lambda c: 0.45 + 0.55 * c ** 0.4)
    rng = np.random.default_rng(seed)
    c = np.sort(np.exp(rng.uniform(np.log(c_range[0]), np.log(c_range[1]), n)))
    rt, dt = r_fn(c), d_fn(c)
    return pd.DataFrame(dict(flops_ratio=c, r=rt + rng.normal(0, noise, n), d=dt + rng.normal(0, noise, n),
                             r_true=rt, d_true=dt))


# ----------------------------------------------------------------------------- a fitted formula's curve and family

def formula_curve(formula, c_min: float, c_max: float = 1.0, n: int = 40, solve_w: bool = True):
    """The GP means/stds of r and d on a log grid of FLOPs ratios, and the solved width."""
    cs = np.geomspace(c_min, c_max, n)
    mean, std = formula.predict(cs, return_std=True)
    df = pd.DataFrame({"c": cs, "r": mean[:, 0], "d": mean[:, 1], "r_std": std[:, 0], "d_std": std[:, 1]})
    if solve_w:
        ws = []
        for c, r, d in zip(cs, df.r, df.d):
            try:
                ws.append(formula.solve_width(float(r), float(d), float(c)) if r > 0 and d > 0 else np.nan)
            except (ValueError, ArithmeticError):
                ws.append(np.nan)
        df["w"] = ws
    return df


def derive_levels(formula, levels, **kw):
    """``rubik.formula.derive_family`` one FLOPs level at a time, skipping (with a printed
    note) levels where the width cannot be solved: a formula fitted on a short, noisy
    frontier can ask for r and d that alone exceed the FLOPs budget. With
    ``base_resolution`` the widths are solved at that resolution too (r(c) and d(c)
    are ratios; the rounding of the real network depends on the px)."""
    if "base_resolution" in kw:  # solve the widths at the resolution the costs are reported at
        formula = copy.copy(formula).set_params(base_resolution=kw["base_resolution"],
                                                num_classes=kw.get("num_classes", 1000))
    parts = []
    for name, c in dict(levels).items():
        try:
            parts.append(derive_family(formula, {name: c}, **kw))
        except ValueError as e:
            print(f"{name} (c={c:.3g}) skipped: {e}")
    if not parts:
        raise ValueError("the tiny formula gives no model at any of the FLOPs levels (see the notes above)")
    return pd.concat(parts, ignore_index=True)
