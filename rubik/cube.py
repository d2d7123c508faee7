"""The model Rubik's cube: three dials (resolution, depth, width) relative to a base model.

A :class:`Twist` ``(r, d, w)`` says how a base network (EfficientNet-B0, GhostNet-A, ResNet-50)
is shrunk or grown:

* ``r`` scales the input resolution: ``image size = int(base_resolution * r)``;
* ``d`` scales the number of blocks of every stage;
* ``w`` scales the number of channels of every layer.

The exact rounding of ``d`` and ``w`` is family specific and lives in ``rubik.models``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_DIAL = 8.0
"""Largest accepted value of any dial (an 8x wider/deeper/larger model is already absurd)."""

# EfficientNet "giant formula" coefficients: depth alpha, width beta, resolution gamma
# (alpha * beta**2 * gamma**2 ~= 2, so each phi step roughly doubles the FLOPs).
GIANT_ALPHA, GIANT_BETA, GIANT_GAMMA = 1.2, 1.1, 1.15

MIN_IMAGE_SIZE = 24
"""Smallest input side (px) a twist may ask for. EfficientNet's last stage still sees a 1x1 map
at 24 px (five stride-2 layers, padded), and CPU proxies at ``base_resolution = 64`` need it:
TinyNet-E's r = 0.475 gives 30 px there, and the inversed giant model matched to its FLOPs 28-30 px."""

_DIALS = ("resolution", "depth", "width")


@dataclass(frozen=True)
class Twist:
    """One position of the cube, relative to the base model (1, 1, 1)."""

    resolution: float = 1.0
    depth: float = 1.0
    width: float = 1.0

    def __post_init__(self) -> None:
        for dial in _DIALS:
            value = getattr(self, dial)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                try:
                    value = float(value)  # numpy scalars, strings of numbers
                except (TypeError, ValueError):
                    raise ValueError(f"{dial} must be a number, got {value!r}") from None
            value = float(value)
            if math.isnan(value) or math.isinf(value):
                raise ValueError(f"{dial} must be finite, got {value}")
            if value <= 0:
                raise ValueError(f"{dial} must be > 0, got {value}")
            if value > MAX_DIAL:
                raise ValueError(f"{dial} must be <= {MAX_DIAL}, got {value}")
            object.__setattr__(self, dial, value)

    # -- shortcuts ---------------------------------------------------------------------------
    @property
    def r(self) -> float:
        return self.resolution

    @property
    def d(self) -> float:
        return self.depth

    @property
    def w(self) -> float:
        return self.width

    def as_tuple(self) -> tuple[float, float, float]:
        """``(r, d, w)``."""
        return (self.resolution, self.depth, self.width)

    def image_size(self, base_resolution: int) -> int:
        """Input side in pixels: ``int(base_resolution * r)`` (the TinyNet convention). The one
        place it is computed (``rubik.models.Arch.input_size`` calls it).

        Raises ValueError if it falls below ``MIN_IMAGE_SIZE`` (24 px).
        """
        if base_resolution is None or base_resolution <= 0:
            raise ValueError(f"base_resolution must be a positive integer, got {base_resolution!r}")
        size = int(base_resolution * self.resolution)
        if size < MIN_IMAGE_SIZE:
            raise ValueError(
                f"resolution {self.resolution:g} x {base_resolution} px rounds to {size} px < {MIN_IMAGE_SIZE}"
            )
        return size

    def __str__(self) -> str:
        return f"(r={self.resolution:g}, d={self.depth:g}, w={self.width:g})"

    @classmethod
    def from_any(cls, x: Any) -> "Twist":
        """Twist | (r, d, w) | {"resolution": .., "depth": .., "width": ..} (also "r", "d", "w")."""
        if x is None:
            return cls()
        if isinstance(x, Twist):
            return x
        if isinstance(x, dict):
            keys = {"r": "resolution", "d": "depth", "w": "width"}
            kwargs = {keys.get(k, k): v for k, v in x.items()}
            unknown = set(kwargs) - set(_DIALS)
            if unknown:
                raise ValueError(f"unknown dial(s) {sorted(unknown)}; expected {_DIALS}")
            return cls(**kwargs)
        if isinstance(x, str):
            raise ValueError(f"cannot make a Twist from the string {x!r}")
        try:
            values = tuple(x)
        except TypeError:
            raise ValueError(f"cannot make a Twist from {x!r}") from None
        if len(values) != 3:
            raise ValueError(f"a twist has 3 dials (r, d, w), got {len(values)}: {x!r}")
        return cls(*values)


def min_resolution(base_resolution: int) -> float:
    """Smallest resolution dial ``r`` that :meth:`Twist.image_size` accepts at ``base_resolution``:
    ``MIN_IMAGE_SIZE / base_resolution`` (``int(b * r) >= m`` iff ``b * r >= m`` for integer m)."""
    if base_resolution is None or base_resolution <= 0:
        raise ValueError(f"base_resolution must be a positive integer, got {base_resolution!r}")
    return MIN_IMAGE_SIZE / base_resolution


def giant_twist(phi: float) -> Twist:
    """EfficientNet's compound ("giant") formula: r = 1.15^phi, d = 1.2^phi, w = 1.1^phi.

    Negative ``phi`` gives the *inversed* giant formula models B^-1 .. B^-4 of the paper.
    """
    phi = float(phi)
    if math.isnan(phi) or math.isinf(phi):
        raise ValueError(f"phi must be finite, got {phi}")
    return Twist(GIANT_GAMMA**phi, GIANT_ALPHA**phi, GIANT_BETA**phi)


__all__ = ["Twist", "giant_twist", "min_resolution", "MIN_IMAGE_SIZE", "MAX_DIAL", "GIANT_ALPHA", "GIANT_BETA", "GIANT_GAMMA"]
