"""FLOPs and params in the paper's convention, measured (ptflops) and analytic (from the config).

Convention: FLOPs = multiply-accumulates of convolutions and linear layers (bias adds included,
as ptflops counts them; BatchNorm, activations, pooling and elementwise ops are not counted).
This gives EfficientNet-B0 385.8M (paper 387M) and GhostNet 1.0x 141.2M (paper 141M).

* :func:`count_flops` runs one forward pass under ptflops, restricted to conv/linear modules.
* :func:`analytic_flops` / :func:`analytic_params` walk the family's plan (integers only, no
  module is built): ~10^4 candidates per second, for sampling and for :func:`solve_width`.
  They agree with :func:`count_flops` / :func:`count_params` exactly (tests check every
  registered model).
"""
from __future__ import annotations

import io
import math

import torch
from torch import nn

from .cube import MAX_DIAL, Twist
from .models.arch import Arch
from .models.registry import BASES, get_model_spec

# modules ptflops would count besides convolutions and linear layers
_COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers such as BN running stats excluded)."""
    return int(sum(p.numel() for p in model.parameters()))


def count_flops(model: nn.Module, resolution: int | None = None) -> int:
    """MACs of one image (batch 1) through ``model``'s convolutions and linear layers (ptflops).

    ``resolution`` defaults to ``model.resolution`` (set by :func:`rubik.create_model`).
    """
    from ptflops import get_model_complexity_info
    from ptflops.pytorch_ops import MODULES_MAPPING

    if resolution is None:
        resolution = getattr(model, "resolution", None)
        if resolution is None:
            raise ValueError("resolution is required for a model without a .resolution attribute")
    resolution = int(resolution)
    ignore = [m for m in MODULES_MAPPING if not issubclass(m, _COUNTED)]
    was_training = model.training
    # ptflops binds helper methods and counters onto the modules: remember what was there
    before = {mod: set(mod.__dict__) for mod in model.modules()}
    try:
        with torch.no_grad():
            macs, _ = get_model_complexity_info(
                model, (3, resolution, resolution), print_per_layer_stat=False, as_strings=False,
                ost=io.StringIO(), ignore_modules=ignore, backend="pytorch",
                backend_specific_config={"count_functional": False},
            )
    finally:
        model.train(was_training)
        for mod, keys in before.items():
            for attr in set(mod.__dict__) - keys:
                del mod.__dict__[attr]
    if macs is None:
        raise RuntimeError("ptflops could not count this model (see the message printed above)")
    return int(macs)


def _arch(base: str, twist, *, base_resolution: int | None = None, rules=None) -> Arch:
    """The Arch of a base or a registered name (its own twist and rules when those are None)."""
    return Arch.named(base, twist=twist, base_resolution=base_resolution, rules=rules)


def analytic_flops(base: str, twist=None, *, num_classes: int = 1000, base_resolution: int | None = None,
                   rules: str | None = None) -> int:
    """FLOPs (MACs, conv + linear) of ``base`` twisted by ``twist``, from the config alone.

    ``base`` is a base (``rubik.models.BASES``) or a registered name; a registered name's own
    twist and rules are used when ``twist`` / ``rules`` are None. A given twist is always
    relative to the *base* (so ``analytic_flops("tinynet_a", (1, 1, 1))`` is B0's FLOPs).
    """
    return _arch(base, twist, base_resolution=base_resolution, rules=rules).flops(num_classes)


def analytic_params(base: str, twist=None, *, num_classes: int = 1000, rules: str | None = None) -> int:
    """Parameter count of ``base`` twisted by ``twist``, from the config alone."""
    return _arch(base, twist, rules=rules).params(num_classes)


def flops_ratio(base: str, twist, **kw) -> float:
    """``analytic_flops(base, twist) / analytic_flops(base, (1, 1, 1))`` (same options for both)."""
    num_classes = kw.pop("num_classes", 1000)
    arch = _arch(base, twist, **kw)
    return arch.flops(num_classes) / arch.replace(twist=Twist()).flops(num_classes)


def solve_width(base: str, r: float, d: float, target_flops: float, *, num_classes: int = 1000,
                base_resolution: int | None = None, rules: str | None = None, min_width: float | None = None,
                max_width: float = MAX_DIAL, tol: float = 1e-6) -> float:
    """Width whose *rounded, real* architecture at (r, d) has FLOPs closest to ``target_flops``.

    FLOPs are a non-decreasing step function of ``w`` (channels are rounded to multiples of 8,
    the head has a floor, the stem may be fixed), so the naive ``w = sqrt(c / (r^2 d))`` misses
    the released TinyNet widths. We bisect for the last width whose FLOPs are <= target and
    compare that architecture with the next one up; the one closer to the target wins (paper
    FLOPs are rounded to 1M and TinyNet-E's real 24.36M is *above* its nominal 24M). Within the
    winning step every width builds the same network; we return the smallest such width, rounded
    up to 4 decimals (so it is not always the released number, e.g. 0.75, but it builds the same
    channels: see tests/test_flops.py).

    TinyNet-B..E from their r, d and *paper* FLOPs: C (100M) and D (52M) give exactly the released
    channels. B (202M) and E (24M) differ in the last stage only, by one 8-channel step: B solves
    to 248 channels (201.3M) instead of 240 (200.7M), E to 152 (24.12M) instead of 160 (24.36M).
    That step of the 320-channel stage moves FLOPs by 0.6M / 0.24M, less than the 1M rounding of
    the paper's figures (and than the ~0.3% convention gap, B0 385.8M vs 387M), so the paper's
    FLOPs cannot tell the two apart; the released widths are the authors' rounded choices inside
    that tolerance. Given the released architecture's exact FLOPs as target, the solver returns
    its channels for all four.

    Raises ValueError for an unknown base, a target above what ``w <= max_width`` reaches, or
    below the FLOPs of the narrowest network (every channel count at its minimum).
    """
    if base not in BASES:
        spec = get_model_spec(base)  # raises for unknown names
        base = spec.base
        rules = spec.rules if rules is None else rules
    rules = Arch(base, base_resolution=base_resolution, rules=rules).rules   # checks them
    if not (isinstance(target_flops, (int, float)) and math.isfinite(target_flops) and target_flops > 0):
        raise ValueError(f"target_flops must be a positive number, got {target_flops!r}")
    Twist(r, d, 1.0)  # validates r and d (naming the dial)

    def arch(w: float) -> Arch:
        return Arch(base, Twist(r, d, w), base_resolution, rules)

    def flops(w: float) -> int:
        return arch(w).flops(num_classes)

    lo = _narrowest_width(flops, base, max_width) if min_width is None else min_width
    hi = float(max_width)
    f_lo, f_hi = flops(lo), flops(hi)
    if target_flops > f_hi:
        raise ValueError(f"target {target_flops / 1e6:.1f}M FLOPs is above what width <= {max_width:g} reaches "
                         f"at r={r:g}, d={d:g} ({f_hi / 1e6:.1f}M) for {base!r}")
    if target_flops < f_lo:
        raise ValueError(f"target {target_flops / 1e6:.1f}M FLOPs is below the narrowest {base!r} at r={r:g}, "
                         f"d={d:g} ({f_lo / 1e6:.1f}M at width {lo:g})")
    # invariant: flops(a) <= target < flops(b)   (if flops(hi) == target, hi itself is fine)
    if f_hi <= target_flops:
        a = hi
    else:
        a, b = lo, hi
        while b - a > tol:
            mid = 0.5 * (a + b)
            if flops(mid) <= target_flops:
                a = mid
            else:
                b = mid
    below = flops(a)
    best = a
    if a < hi:
        up = min(hi, a + 2 * tol)
        while flops(up) <= below and up < hi:
            up = min(hi, up + tol)
        if abs(flops(up) - target_flops) < abs(below - target_flops):
            best = up
    return _smallest_same_network(arch, lo, best, tol)


def _narrowest_width(flops, base: str, max_width: float) -> float:
    """The smallest width that still gives every layer at least one real channel."""
    lo = 1e-3
    while True:
        try:
            flops(lo)
            return lo
        except ValueError:
            lo *= 1.25
            if lo > max_width:
                raise ValueError(f"no valid width for base {base!r}") from None


def _smallest_same_network(arch, lo: float, best: float, tol: float) -> float:
    """The smallest width (4 decimals, rounded up) that builds the same network as ``best``."""
    target_plan = arch(best).plan
    a, b = lo, best
    if arch(a).plan == target_plan:
        b = a
    while b - a > tol:
        mid = 0.5 * (a + b)
        if arch(mid).plan == target_plan:
            b = mid
        else:
            a = mid
    w = math.ceil(b * 1e4) / 1e4
    while arch(w).plan != target_plan and w < best:
        w = round(w + 1e-4, 4)
    if arch(w).plan != target_plan:
        w = best
    return float(w)


__all__ = ["count_flops", "count_params", "analytic_flops", "analytic_params", "flops_ratio", "solve_width"]
