"""Registry of named models (timm-like): bases, TinyNets, inversed-giant models, GhostNets, ResNet-50 and ResNet-26, and the
SPConv paper's CIFAR-style ResNet-20/56 and VGG-16 (each also with SPConv, ``spconv_*``).

GhostNet-B/C/D (``ghostnet_b`` ...) are *reconstructions*: the appendix prints their params and FLOPs only,
and ``rubik.ghostnet_family`` recovers dials from those (``RECONSTRUCTED``); their peers at the same real
FLOPs are registered with them (``ghostnet_a_giant_*``, ``ghostnet_width_*``, ``ghostnet_a_width_*``).

A registered name is a :class:`ModelSpec`: a *base* family plus a :class:`~rubik.cube.Twist`
(and the rule set for the EfficientNet family). Paper numbers (params, FLOPs, top-1/5) are read
from ``data/paper/models.csv`` in the repository; when that file is not there (a non-editable
install) specs simply carry ``paper=None``.
"""
from __future__ import annotations

import csv
import fnmatch
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

from ..cube import Twist, giant_twist
from ..errors import ConfigError

BASES = ("efficientnet_b0", "ghostnet_a", "ghostnet_100", "resnet50", "resnet26", "resnet20", "vgg16_cifar")
BASE_RESOLUTION = {"efficientnet_b0": 224, "ghostnet_a": 240, "ghostnet_100": 224, "resnet50": 224, "resnet26": 224,
                   "resnet20": 32, "vgg16_cifar": 32}
"""Input side (px) of each untwisted base: the one place the default ``base_resolution`` comes from."""
PAPER_CSV_ENV = "RUBIK_PAPER_CSV"

#: GhostNet-B/C/D: *reconstructed* dials on GhostNet-A (240 px). The authors never released them;
#: ``rubik.ghostnet_family`` recovers them from appendix Table 1's params and FLOPs by a rule fixed
#: before any training (provenance: data/paper/ghostnet_reconstruction.csv; tests re-derive them).
RECONSTRUCTED = {"ghostnet_b": (0.8375, 1.0, 0.8062), "ghostnet_c": (0.7542, 0.7915, 0.6703),
                 "ghostnet_d": (0.6042, 0.6, 0.4929)}
"""GhostNet-B/C/D's (r, d, w) on GhostNet-A, *reconstructed* from appendix Table 1 (``rubik.ghostnet_family``)."""
#: their peers at each reconstruction's real FLOPs (``rubik.ghostnet_family.peers``): the inversed
#: giant formula on GhostNet-A (phi solved), the original GhostNet changing width only (224 px, w
#: solved), and GhostNet-A changing width only (240 px, w solved)
GHOSTNET_GIANT_PHI = {"b": -1.1279, "c": -2.8065, "d": -4.4421}
GHOSTNET_WIDTH_ONLY = {"b": 1.5149, "c": 1.0021, "d": 0.5544}
GHOSTNET_A_WIDTH_ONLY = {"b": 0.6941, "c": 0.4715, "d": 0.2536}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    base: str
    twist: Twist
    paper: dict | None = None
    rules: str | None = None          # EfficientNet family only: "tinynet" | "efficientnet"
    kwargs: dict = field(default_factory=dict)  # builder defaults (e.g. act="hswish")
    description: str = ""
    conv: Any = None                  # the 3x3 convolution (None: dense; {"kind": "spconv", "alpha": 0.5})

    # As an Arch: ``Arch.from_spec(spec)`` or ``Arch.named(name)`` (rubik.models.arch imports this module,
    # not the other way round).

    @property
    def resolution(self) -> int:
        """Input side in px at the family's base resolution (``Arch.from_spec(self).input_size``)."""
        return self.twist.image_size(BASE_RESOLUTION[self.base])


@dataclass(frozen=True)
class Family:
    """How to build and how to cost one base family (its module is imported by ``get_family``, on first use)."""

    build: Callable[..., Any]                  # (twist, num_classes, rules, **kwargs) -> nn.Module
    plan: Callable[..., Any]                   # (twist, rules, **kwargs) -> plan
    count: Callable[..., Any]                  # (plan, image_size, num_classes) -> Counter
    rules: Mapping[str, Any] = field(default_factory=dict)   # the named rule sets it accepts (none: no choice)
    default_rules: str | None = None           # the one used when none is asked for
    convs: bool = False                        # its dense 3x3s can be swapped (plan/build take conv=ConvSpec)
    no_conv_reason: str = ""                   # why not, for the error message


# The family modules build torch modules (they import torch and torchvision), so each is imported
# when its family is first used: ``import rubik.models`` (Arch, the registry) stays torch-free.
def _efficientnet_family() -> Family:
    from . import efficientnet as m

    return Family(
        build=lambda twist, num_classes, rules, **kw: m.build_efficientnet(twist, num_classes, rules=rules, **kw),
        plan=lambda twist, rules, **kw: m.efficientnet_plan(twist, rules),
        count=m.count_plan,
        rules=m.RULES,
        default_rules=m.DEFAULT_RULES,
        no_conv_reason="its MBConv blocks have no dense 3x3 convolution (depth-wise k x k and point-wise 1x1 only)",
    )


def _ghostnet_family(variant: str) -> Callable[[], Family]:
    def make() -> Family:
        from . import ghostnet as m

        return Family(
            build=lambda twist, num_classes, rules, **kw: m.build_ghostnet(twist, num_classes, variant=variant, **kw),
            plan=lambda twist, rules, se_ratio=None, **kw: m.ghostnet_plan(twist, variant, se_ratio=se_ratio),
            count=m.count_plan,
            no_conv_reason="its Ghost bottlenecks have no dense 3x3 convolution (point-wise primary convolutions, "
                           "depth-wise cheap operations and depth-wise strides only)",
        )

    return make


def _resnet_family(layers: str = "RESNET50_LAYERS") -> Callable[[], Family]:
    def make() -> Family:
        from . import resnet as m

        blocks = getattr(m, layers)
        return Family(
            build=lambda twist, num_classes, rules, conv, **kw: m.build_resnet(twist, num_classes, conv=conv,
                                                                               layers=blocks, **kw),
            plan=lambda twist, rules, conv, **kw: m.resnet_plan(twist, conv, blocks),
            count=m.count_plan,
            convs=True,
        )

    return make


def _cifar_resnet_family() -> Family:
    from . import cifar as m

    return Family(
        build=lambda twist, num_classes, rules, conv, **kw: m.build_cifar_resnet(twist, num_classes, conv=conv, **kw),
        plan=lambda twist, rules, conv, **kw: m.cifar_resnet_plan(twist, conv),
        count=m.count_cifar_resnet,
        convs=True,
    )


def _cifar_vgg_family() -> Family:
    from . import cifar as m

    return Family(
        build=lambda twist, num_classes, rules, conv, **kw: m.build_vgg(twist, num_classes, conv=conv, **kw),
        plan=lambda twist, rules, conv, **kw: m.vgg_plan(twist, conv),
        count=m.count_vgg,
        convs=True,
    )


_FAMILY_FACTORIES = {
    "efficientnet_b0": _efficientnet_family,
    "ghostnet_a": _ghostnet_family("ghostnet_a"),
    "ghostnet_100": _ghostnet_family("ghostnet_100"),
    "resnet50": _resnet_family("RESNET50_LAYERS"),
    "resnet26": _resnet_family("RESNET26_LAYERS"),
    "resnet20": _cifar_resnet_family,
    "vgg16_cifar": _cifar_vgg_family,
}


@lru_cache(maxsize=None)
def get_family(base: str) -> Family:
    if base not in _FAMILY_FACTORIES:
        raise ValueError(f"unknown base {base!r}; expected one of {BASES}")
    return _FAMILY_FACTORIES[base]()


def resolve_rules(base: str, rules=None):
    """The rule set ``base`` is built with: ``rules`` (a name, a rule object or its fields as a
    dict), or the family's default when None; None for families without rule sets. The one place
    rules are checked: ValueError for an unknown name, or rules given to a family that has none."""
    family = get_family(base)
    if rules is None:
        return family.rules[family.default_rules] if family.default_rules else None
    if not family.rules:
        raise ValueError(f"rules={rules!r} only applies to the efficientnet_b0 family, not {base!r}")
    if isinstance(rules, str):
        if rules not in family.rules:
            raise ValueError(f"unknown rules {rules!r}; expected one of {tuple(family.rules)}")
        return family.rules[rules]
    kind = type(family.rules[family.default_rules])
    if isinstance(rules, Mapping):
        return kind(**rules)
    if isinstance(rules, kind):
        return rules
    raise ValueError(f"rules must be a name {tuple(family.rules)}, a {kind.__name__} or a dict, got {rules!r}")


def resolve_conv(base: str, conv=None):
    """The :class:`~rubik.models.spconv.ConvSpec` ``base`` is built with (``conv``: None or ``"dense"``,
    ``"spconv"``, a dict of its fields or a ConvSpec). ConfigError, saying why, for a swap the family
    cannot make (EfficientNet and GhostNet have no dense 3x3 to swap)."""
    from .spconv import ConvSpec   # torch (rubik.models.spconv holds the SPConv module): not at import

    spec = ConvSpec.from_any(conv)
    family = get_family(base)
    if not spec.dense and not family.convs:
        raise ConfigError(f"conv={spec.kind!r} replaces dense 3x3 convolutions, and {base!r} has none to replace: "
                          f"{family.no_conv_reason}, and the RGB stem stays dense in every family; it applies to "
                          f"{', '.join(b for b in BASES if get_family(b).convs)}")
    return spec


# --------------------------------------------------------------------------------------------
# paper numbers
def _paper_csv_path() -> Path | None:
    env = os.environ.get(PAPER_CSV_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents[1:4]:  # rubik/, repo root, ...
        candidate = parent / "data" / "paper" / "models.csv"
        if candidate.is_file():
            return candidate
    return None


def _number(text: str):
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text else value


@lru_cache(maxsize=1)
def paper_table() -> dict[str, dict]:
    """``{name: {"params_m", "flops_m", "top1", "top5", "resolution", "source"}}`` ({} if no CSV)."""
    path = _paper_csv_path()
    if path is None or not path.is_file():
        return {}
    table = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            name = row.pop("name").strip()
            table[name] = {k: (v.strip() if k == "source" else _number(v)) for k, v in row.items()}
    return table


# --------------------------------------------------------------------------------------------
# the registered names
def _specs() -> dict[str, ModelSpec]:
    specs: list[tuple[str, str, Any, str | None, dict, str]] = [
        ("efficientnet_b0", "efficientnet_b0", (1, 1, 1), "tinynet", {}, "EfficientNet-B0 (the cube's origin)"),
        ("tinynet_a", "efficientnet_b0", (0.86, 1.2, 1.0), "tinynet", {}, "TinyNet-A"),
        ("tinynet_b", "efficientnet_b0", (0.84, 1.1, 0.75), "tinynet", {}, "TinyNet-B"),
        ("tinynet_c", "efficientnet_b0", (0.825, 0.85, 0.54), "tinynet", {}, "TinyNet-C"),
        ("tinynet_d", "efficientnet_b0", (0.68, 0.695, 0.54), "tinynet", {}, "TinyNet-D"),
        ("tinynet_e", "efficientnet_b0", (0.475, 0.6, 0.51), "tinynet", {}, "TinyNet-E"),
    ]
    # Inversed giant formula B^-1..B^-4 at their nominal dials, built with the TinyNet generator
    # (same rounding as the TinyNets, so only the dials differ; rules="efficientnet" gives the
    # EfficientNet rounding). Note: at phi = -4 the real network has 41.6M FLOPs (46.4M with
    # EfficientNet rules), not the paper's 24M for "EfficientNet-B^-4": the fixed stem/head and
    # min-1 depth keep the FLOPs well above 2^phi x B0; the paper's dials for it are unknown.
    for phi in (1, 2, 3, 4):
        t = giant_twist(-phi)
        specs.append((f"efficientnet_b0_giant_m{phi}", "efficientnet_b0", t.as_tuple(), "tinynet", {},
                      f"EfficientNet-B^-{phi}: inversed giant formula phi=-{phi} (nominal dials, TinyNet rounding)"))
    for w in (0.5, 1.0, 1.3, 1.5):
        specs.append((f"ghostnet_{int(round(w * 100)):03d}", "ghostnet_100", (1, 1, w), None, {},
                      f"GhostNet {w:g}x (width multiplier only)"))
    specs += [
        ("ghostnet_a", "ghostnet_a", (1, 1, 1), None, {}, "GhostNet-A (appendix Table 2), ReLU"),
        ("ghostnet_a_hswish", "ghostnet_a", (1, 1, 1), None, {"act": "hswish"}, "GhostNet-A + HSwish"),
    ]
    for name, t in RECONSTRUCTED.items():
        letter = name[-1].upper()
        specs += [(name, "ghostnet_a", t, None, {}, f"GhostNet-{letter}: reconstructed from appendix Table 1's params "
                                                      "and FLOPs (dials never released; rubik.ghostnet_family)"),
                  (f"{name}_hswish", "ghostnet_a", t, None, {"act": "hswish"},
                   f"GhostNet-{letter} + HSwish (reconstructed dials)")]
    for k in "bcd":
        specs += [
            (f"ghostnet_a_giant_{k}", "ghostnet_a", giant_twist(GHOSTNET_GIANT_PHI[k]).as_tuple(), None, {},
             f"GhostNet-A^{GHOSTNET_GIANT_PHI[k]:g}: inversed giant formula at GhostNet-{k.upper()}'s real FLOPs"),
            (f"ghostnet_width_{k}", "ghostnet_100", (1, 1, GHOSTNET_WIDTH_ONLY[k]), None, {},
             f"GhostNet {GHOSTNET_WIDTH_ONLY[k]:g}x (width only, 224 px) at GhostNet-{k.upper()}'s real FLOPs"),
            (f"ghostnet_a_width_{k}", "ghostnet_a", (1, 1, GHOSTNET_A_WIDTH_ONLY[k]), None, {},
             f"GhostNet-A x{GHOSTNET_A_WIDTH_ONLY[k]:g} (width only, 240 px) at GhostNet-{k.upper()}'s real FLOPs"),
        ]
    specs += [
        ("resnet50", "resnet50", (1, 1, 1), None, {}, "ResNet-50"),
        ("resnet26", "resnet26", (1, 1, 1), None, {}, "ResNet-26: ResNet-50's stages and Bottleneck widths, "
                                                       "2 blocks per stage (the CPU-affordable ResNet base)"),
        ("resnet20", "resnet20", (1, 1, 1), None, {}, "ResNet-20, CIFAR-style (32 px, option-A shortcuts)"),
        ("resnet56", "resnet20", (1, 3, 1), None, {}, "ResNet-56: ResNet-20 at depth d = 3 (9 blocks per stage)"),
        ("vgg16_cifar", "vgg16_cifar", (1, 1, 1), None, {}, "VGG-16 with BatchNorm, CIFAR-style (32 px)"),
    ]
    # SPConv (alpha 1/2, 2 groups, the SPConv paper's setting) in every dense 3x3 but the stem
    spconv = {"kind": "spconv", "alpha": 0.5, "groups": 2}
    convs = {}
    for name in ("resnet20", "resnet56", "vgg16_cifar", "resnet50"):
        base, t, desc = next((b, tw, d) for n, b, tw, _, _, d in specs if n == name)
        specs.append((f"spconv_{name}", base, t, None, {}, f"SPConv-{desc} (alpha 1/2)"))
        convs[f"spconv_{name}"] = spconv
    paper = paper_table()
    return {
        name: ModelSpec(name, base, Twist.from_any(t), paper.get(name), rules, dict(kw), desc, convs.get(name))
        for name, base, t, rules, kw, desc in specs
    }


_REGISTRY: dict[str, ModelSpec] | None = None


def registry() -> dict[str, ModelSpec]:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _specs()
    return _REGISTRY


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, in registration order."""
    return [n for n in registry() if fnmatch.fnmatchcase(n, pattern)]


def get_model_spec(name: str) -> ModelSpec:
    specs = registry()
    if name not in specs:
        close = [n for n in specs if n.startswith(name.split("_")[0])] or list(specs)
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(close)}")
    return specs[name]
