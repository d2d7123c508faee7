"""The ResNet row (issue 33, part 3): the families a ``rubik study`` part ``{resnet: [...]}`` trains.

The paper's setup trains ResNets with the same scaling idea. This part compares, on a Bottleneck
ResNet base (the preset's ``cube.base``: ``resnet26`` for the CPU proxy, see
``rubik.models.resnet``; ``resnet50`` works too) at its ``base_resolution``, at each level
``k`` (``levels: [1, 2]``: c ~ 2^-k = 0.5 and 0.25), every model at the *same* real FLOPs: those of
the inversed giant nearest ``2^-k x base`` (``rubik.formula.matched_giant_phi``), as the B0 studies'
levels are the giant's FLOPs nearest c. The giant's FLOPs are a step function of phi, and on
ResNet-26 its depth drops from 8 to 4 blocks at d = 0.75, between c = 0.64 and 0.40: no giant has
c = 0.5, and level 1 is at the giant's c = 0.40 (level 2: 0.25).

``tiny``   TinyNet's dials: ``rubik.formula.TinyFormula`` fitted on the released TinyNet-A..E
           (``rubik.ghostnet_family.tinynet_formula``, the fit the GhostNet reconstruction ranks its
           candidates by) gives r(c), d(c); w solved to the target;
``ours``   our formula fitted on the committed EfficientNet-B0 sweep (``formula_from``, as
           ``rubik.ghostnet_study``'s ``ours``): r(c), d(c); w solved;
``giant``  the inversed giant formula on the base, phi solved to 2^-k (its real FLOPs are the level's);
``width``  width only (r = d = 1, w solved).

Depth on a (2, 2, 2, 2) base is coarse: a stage keeps ``max(1, round(2 d))`` blocks, so every d
below 0.75 builds the 4-block network and 0.75 <= d < 1.25 the 8-block one; the design table prints
the blocks each family gets.
"""
from __future__ import annotations

from rubik.cube import Twist, giant_twist
from rubik.errors import ConfigError
from rubik.models import Arch

__all__ = ["RESNET_FAMILIES", "RESNET_BASES", "resnet_models", "level_ratio"]

RESNET_FAMILIES = ("tiny", "ours", "giant", "width")
RESNET_BASES = ("resnet26", "resnet50")
#: cell names (trial ``name``) by family; ``{lv}`` the level
LABELS = {"tiny": "ResNet-26 TinyNet dials, level {lv}", "ours": "ResNet-26 our formula, level {lv}",
          "giant": "ResNet-26 inversed giant, level {lv}", "width": "ResNet-26 width-only, level {lv}"}


def level_ratio(level: int) -> float:
    """The nominal FLOPs ratio of a level: c = 2^-level (1: 0.5, 2: 0.25); the giant nearest it sets the real one."""
    return 2.0 ** -int(level)


def resnet_models(study: dict, part: dict, *, base: str, base_resolution: int, num_classes: int,
                  where: str = "study part") -> list[dict]:
    """The models of one ``{resnet: [families], levels: [1, 2]}`` part: dicts with ``model`` (design
    columns), ``kind``, ``family``, ``level``, ``name`` and ``tag``. ConfigError for an unknown family
    or level, a base that is not a Bottleneck ResNet, or a peer that cannot be built at this scale."""
    from rubik.flops import solve_width
    from rubik.formula import matched_giant_phi
    from rubik.ghostnet_family import tinynet_formula
    from rubik.ghostnet_study import _describe, study_formula

    if base not in RESNET_BASES:
        raise ConfigError(f"{where}: resnet parts need a Bottleneck ResNet base {list(RESNET_BASES)} (cube.base), "
                          f"got {base!r}")
    families = [str(f) for f in part["resnet"]]
    bad = sorted(set(families) - set(RESNET_FAMILIES))
    if bad:
        raise ConfigError(f"{where}: unknown resnet families {bad}; known: {list(RESNET_FAMILIES)}")
    levels = part.get("levels") or []
    if not levels or not all(isinstance(lv, int) and not isinstance(lv, bool) and 1 <= lv <= 4 for lv in levels):
        raise ConfigError(f"{where}: resnet parts need 'levels' among [1, 2, 3, 4] (c = 2^-level), got {levels!r}")
    ref = Arch(base, base_resolution=base_resolution)
    f0 = ref.flops(num_classes)
    # each family's (r, d) at a FLOPs ratio c; w is then solved to the level's FLOPs (the giant: phi)
    dials = {"width": lambda c: (1.0, 1.0), "tiny": lambda c: tinynet_formula().predict(c),
             "ours": lambda c: study_formula(study).predict(c)}

    def solved(c: float, fam: str, target: float) -> Arch:
        r, d = (float(x) for x in dials[fam](c))
        w = solve_width(base, r, d, target, base_resolution=base_resolution, num_classes=num_classes)
        return ref.replace(twist=Twist(r, d, w))

    out = []
    for lv in levels:
        try:
            phi = matched_giant_phi(base, level_ratio(lv), base_resolution=base_resolution, num_classes=num_classes)
        except ValueError as e:
            raise ConfigError(f"{where}: the inversed giant at level {lv} (c = {level_ratio(lv):g}): {e}") from None
        giant = ref.replace(twist=giant_twist(phi))
        target = giant.flops(num_classes)
        for fam in families:
            try:
                arch = giant if fam == "giant" else solved(target / f0, fam, target)
            except ValueError as e:
                raise ConfigError(f"{where}: {fam} at level {lv} (c = {target / f0:.3f}, {target / 1e6:.2f}M FLOPs "
                                  f"at base {base_resolution} px): {e}") from None
            out.append(dict(model=_describe(arch, num_classes=num_classes, f0=f0), kind=fam, family=fam,
                            level=int(lv), name=LABELS[fam].format(lv=int(lv)), tag=f"rn_{fam}_m{int(lv)}"))
    return out
