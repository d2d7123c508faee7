"""One twisted architecture as a value: :class:`Arch` = base family + twist + base resolution + rules (+ conv).

Everything the study needs to know about a model follows from these four, computed here and
nowhere else: the input side in px (``int(base_resolution * r)``, at least
``rubik.cube.MIN_IMAGE_SIZE``), the stage plan (blocks and output channels per stage), the
analytic FLOPs and params, and the module itself (``build(num_classes)``). An ``Arch`` is checked
once, when it is made (unknown base, rules that do not apply, a dial out of range, an input below
the floor, a width that empties a layer), so anything holding one holds a buildable model.

Samples, sweep specs, ``TrainConfig`` and the study designs store it as :meth:`Arch.to_dict`
(``{"base", "twist": [r, d, w], "base_resolution", "rules"}``, plus ``"conv"`` when the dense 3x3s are
swapped for SPConv) and read it back with :meth:`Arch.from_dict`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Mapping

import numpy as np

from ..cube import Twist
from .registry import BASE_RESOLUTION, BASES, ModelSpec, get_family, get_model_spec, resolve_conv, resolve_rules

_KEYS = ("base", "twist", "base_resolution", "rules", "conv")


@dataclass(frozen=True)
class Arch:
    """A base (``rubik.models.BASES``) twisted by ``twist``, fed ``input_size`` px images.

    ``base_resolution`` (px at r = 1) defaults to the family's (``BASE_RESOLUTION``: 224, GhostNet-A
    240); ``rules`` (EfficientNet family only) to the family's default rule set (TinyNet's). ``conv``
    (ResNet and VGG families): the 3x3 convolution, None or ``"dense"``, ``"spconv"`` or
    ``{"kind": "spconv", "alpha": 0.5, "groups": 2}`` (:class:`~rubik.models.spconv.ConvSpec`).
    """

    base: str
    twist: Twist = field(default_factory=Twist)
    base_resolution: int | None = None
    rules: Any = None
    conv: Any = None
    input_size: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if self.base not in BASES:
            raise ValueError(f"unknown base {self.base!r}; expected one of {BASES}")
        set_ = object.__setattr__
        set_(self, "twist", Twist.from_any(self.twist))
        br = BASE_RESOLUTION[self.base] if self.base_resolution is None else self.base_resolution
        if isinstance(br, bool) or not float(br).is_integer() or br <= 0:
            raise ValueError(f"base_resolution must be a positive integer, got {self.base_resolution!r}")
        set_(self, "base_resolution", int(br))
        set_(self, "rules", resolve_rules(self.base, self.rules))
        set_(self, "conv", resolve_conv(self.base, self.conv))
        set_(self, "input_size", self.twist.image_size(self.base_resolution))
        self.plan  # noqa: B018 - a width that rounds a layer to nothing fails here, not later

    # -- making one --------------------------------------------------------------------------
    @classmethod
    def named(cls, name: str, *, twist=None, base_resolution: int | None = None, rules=None, conv=None) -> "Arch":
        """A registered model (``tinynet_c``) or a base; ``twist`` / ``rules`` / ``conv`` replace its own
        (a twist is always relative to the base: ``Arch.named("tinynet_a", twist=(1, 1, 1))`` is B0)."""
        if name in BASES:
            return cls(name, Twist() if twist is None else twist, base_resolution, rules, conv)
        return cls.from_spec(get_model_spec(name), twist=twist, base_resolution=base_resolution, rules=rules, conv=conv)

    @classmethod
    def from_spec(cls, spec: ModelSpec, *, twist=None, base_resolution: int | None = None, rules=None,
                  conv=None) -> "Arch":
        """A registered :class:`~rubik.models.registry.ModelSpec` as an Arch (its own twist, rules and conv
        unless given)."""
        return cls(spec.base, spec.twist if twist is None else twist, base_resolution,
                   spec.rules if rules is None else rules, spec.conv if conv is None else conv)

    @classmethod
    def from_dict(cls, d: Mapping) -> "Arch":
        """The inverse of :meth:`to_dict` (missing keys take their defaults)."""
        unknown = set(d) - set(_KEYS)
        if unknown:
            raise ValueError(f"unknown Arch field(s) {sorted(unknown)}; expected {_KEYS}")
        if "base" not in d:
            raise ValueError("an Arch needs a 'base'")
        return cls(d["base"], d.get("twist"), d.get("base_resolution"), d.get("rules"), d.get("conv"))

    @classmethod
    def from_any(cls, x) -> "Arch":
        """An Arch, its dict, or a registered name."""
        if isinstance(x, Arch):
            return x
        if isinstance(x, Mapping):
            return cls.from_dict(x)
        if isinstance(x, str):
            return cls.named(x)
        raise ValueError(f"cannot make an Arch from {x!r}")

    def replace(self, **changes) -> "Arch":
        """A copy with some of ``base, twist, base_resolution, rules, conv`` changed (checked again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready: ``{"base", "twist": [r, d, w], "base_resolution", "rules"}``; ``rules`` is the
        rule set's name (or its fields if it has none; None for families without rule sets); ``conv``
        (``{"kind", "alpha", "groups"}``) only when it is not dense, so dense records keep their four keys."""
        rules = self.rules
        if rules is not None:
            rules = rules.name or {k: getattr(rules, k) for k in rules.__dataclass_fields__}
        d = {"base": self.base, "twist": list(self.twist.as_tuple()), "base_resolution": self.base_resolution,
             "rules": rules}
        if not self.conv.dense:
            d["conv"] = self.conv.to_dict()
        return d

    @property
    def rules_name(self) -> str | None:
        return None if self.rules is None else self.rules.name

    # -- what follows from it ----------------------------------------------------------------
    @cached_property
    def plan(self):
        """The family's plan (plain integers: stem, stages, head)."""
        family = get_family(self.base)
        if family.convs:
            return family.plan(self.twist, self.rules, self.conv)
        return family.plan(self.twist, self.rules)

    @property
    def repeats(self) -> tuple[int, ...]:
        """Blocks per stage."""
        return tuple(self.plan.repeats)

    @property
    def channels(self) -> tuple[int, ...]:
        """Output channels per stage."""
        return tuple(self.plan.channels)

    @property
    def blocks(self) -> int:
        return sum(self.repeats)

    def flops(self, num_classes: int = 1000, resolution: int | None = None) -> int:
        """MACs of one image at ``input_size`` (conv + linear; ``rubik.flops`` convention), or at
        ``resolution`` px: the same weights fed another input size (DRNet's candidate resolutions)."""
        size = self.input_size if resolution is None else int(resolution)
        return int(get_family(self.base).count(self.plan, size, num_classes).flops)

    def params(self, num_classes: int = 1000) -> int:
        return int(get_family(self.base).count(self.plan, None, num_classes).params)

    def num_classes_from_params(self, params: int) -> int | None:
        """The head size that gives this architecture ``params`` parameters (the count is affine in
        the number of classes: only the classifier depends on it), or None if none does."""
        p1, p2 = self.params(1), self.params(2)
        k = 1 + (int(params) - p1) / (p2 - p1)
        return int(k) if k == round(k) and k >= 1 else None

    def build(self, num_classes: int = 1000, **kwargs):
        """The torch module (``kwargs``: builder options, e.g. ``drop_rate``, ``act="hswish"``),
        carrying ``.arch``, ``.twist``, ``.base``, ``.resolution`` (= ``input_size``) and ``.rules``."""
        family = get_family(self.base)
        if family.convs:
            model = family.build(self.twist, num_classes, self.rules, self.conv, **kwargs)
        else:
            model = family.build(self.twist, num_classes, self.rules, **kwargs)
        model.arch = self
        model.twist = self.twist
        model.base = self.base
        model.resolution = self.input_size
        model.rules = self.rules_name
        return model

    def __str__(self) -> str:
        rules = f", rules={self.rules_name}" if self.rules is not None and self.rules_name != "tinynet" else ""
        conv = "" if self.conv.dense else f", {self.conv}"
        return f"{self.base}{self.twist} @ {self.input_size} px (base {self.base_resolution}{rules}{conv})"


__all__ = ["Arch"]


# ----------------------------------------------------------------------------- depth in blocks
# round(n * d) with at least one block per stage: many d give one network; these say which.

def total_blocks(base: str, d: float, rules: str | None = None) -> int:
    """Blocks of ``base`` at depth dial ``d`` (summed over stages; independent of r and w)."""
    return Arch(base, Twist(1.0, d, 1.0), rules=rules).blocks


def _depth_steps(base: str, rules=None, d_max: float = 3.0, step: float = 1e-3):
    """``[(d_lo, d_hi, blocks)]``: the d intervals (on a ``step`` grid) that build each block count."""
    ds = np.round(np.arange(step, d_max + step / 2, step), 6)
    counts = [total_blocks(base, float(d), rules) for d in ds]
    out, lo = [], 0
    for i in range(1, len(ds) + 1):
        if i == len(ds) or counts[i] != counts[lo]:
            out.append((float(ds[lo]), float(ds[i - 1]), counts[lo]))
            lo = i
    return out


def depth_for_blocks(base: str, n_blocks: int, rules: str | None = None) -> float:
    """A depth dial that builds exactly ``n_blocks`` blocks: the middle of the d interval that does
    (rounded to 4 decimals), so the count does not hinge on a rounding edge. ValueError naming the
    reachable counts if none does (round(n * d) skips some totals)."""
    steps = _depth_steps(base, rules)
    for lo, hi, n in steps:
        if n == int(n_blocks):
            return round(0.5 * (lo + hi), 4)
    reach = sorted({n for _, _, n in steps})
    raise ValueError(f"no depth dial of {base!r} builds {n_blocks} blocks; reachable: {reach}")


def depth_floor(base: str, rules: str | None = None) -> tuple[int, float]:
    """``(fewest blocks, largest d that still builds only that many)``: below that d every depth
    dial gives the same network (B0: 7 blocks, one per stage, for d < ~0.375)."""
    lo, hi, n = _depth_steps(base, rules)[0]
    return n, hi
