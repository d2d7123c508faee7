"""The GhostNet appendix claim on the CPU proxy: the families a ``rubik study`` part ``{ghostnet: [...]}`` trains.

The appendix (Table 1) says GhostNet-B/C/D, GhostNet-A shrunk by the tiny formula, beat the original
GhostNets, which change width only. At each level (``b``, ``c``, ``d``) the study trains, at the
*real* FLOPs of the reconstruction at the study's scale (base ``ghostnet_a`` at the preset's
``base_resolution``, the data set's classes):

``recon``   GhostNet-B/C/D as rubik reconstructs them (``rubik.ghostnet_family``; the registered
            dials, unchanged: a dial is a ratio, so the network is the same at any base px and only
            its input size scales);
``giant``   the inversed giant formula on GhostNet-A, phi solved to the recon's real FLOPs
            (``rubik.formula.matched_giant_phi``);
``width``   the appendix's peer: the original GhostNet (base ``ghostnet_100``) changing width only,
            at ``ghostnet_width_base_resolution`` px (the 224/240 ratio of the paper's bases applied
            to the study's px), w solved to the recon's real FLOPs;
``width_a`` width only on GhostNet-A itself (r = d = 1, w solved): the same base as recon, giant
            and ours, so recon - width_a isolates the dials;
``ours``    rubik's tiny formula fitted on the committed EfficientNet-B0 sweep (``formula_from``,
            the same fit as notebooks 04/05: ``rubik.formula.fit_formula`` on the frontier of
            ``formula_metric``) moved onto GhostNet-A: its r(c), d(c) at the recon's FLOPs ratio
            ``c`` (real, at the study's scale), w solved to the recon's real FLOPs.

Every row is a ``rubik.study`` design row (``model`` holds its dials, px, params, FLOPs and ``arch``).
"""
from __future__ import annotations

import warnings
from functools import lru_cache

from rubik.cube import Twist, giant_twist
from rubik.errors import ConfigError
from rubik.models import Arch

__all__ = ["GHOSTNET_FAMILIES", "GHOSTNET_LEVELS", "ghostnet_models", "ours_formula", "study_formula"]

GHOSTNET_FAMILIES = ("recon", "giant", "width", "width_a", "ours")
GHOSTNET_LEVELS = ("b", "c", "d")
LABELS = {"recon": "GhostNet-{L} (reconstructed)", "giant": "inversed giant on GhostNet-A at {L}",
          "width": "GhostNet width-only at {L}", "width_a": "GhostNet-A width-only at {L}",
          "ours": "our formula on GhostNet-A at {L}"}


@lru_cache(maxsize=4)
def ours_formula(formula_from: str, base_resolution: int, num_classes: int, metric: str, min_points: int):
    """Our tiny formula: ``fit_formula`` on the finished trials of the committed B0 sweep."""
    from rubik.formula import fit_formula
    from rubik.reproduce import REPO_ROOT
    from rubik.sweep import finished, load_results
    from pathlib import Path

    path = Path(formula_from)
    path = path if path.is_absolute() else REPO_ROOT / path
    if not (path / "sweep.json").is_file():
        raise ConfigError(f"study formula_from: no sweep.json in {path} (the committed B0 sweep)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        formula, _ = fit_formula(finished(load_results(path)), metric=metric, min_points=min_points,
                                 base="efficientnet_b0", base_resolution=base_resolution, num_classes=num_classes)
    return formula


def study_formula(study: dict):
    """``ours_formula`` for a study's ``formula_*`` keys (defaults: the committed B0 sweep at 64 px, top-1)."""
    return ours_formula(str(study.get("formula_from", "data/results/imagenette/sweep")),
                        int(study.get("formula_base_resolution", 64)), int(study.get("formula_num_classes", 10)),
                        str(study.get("formula_metric", "top1")), int(study.get("formula_min_points", 4)))


def _describe(arch: Arch, *, num_classes: int, f0: float) -> dict:
    f = arch.flops(num_classes)
    return dict(base=arch.base, base_resolution=arch.base_resolution, r=arch.twist.resolution,
                d=arch.twist.depth, w=arch.twist.width, blocks=arch.blocks, resolution=arch.input_size,
                params=arch.params(num_classes), flops=f, flops_ratio=f / f0, arch=arch.to_dict())


def ghostnet_models(study: dict, part: dict, *, base: str, base_resolution: int, num_classes: int,
                    where: str = "study part") -> list[dict]:
    """The models of one ``{ghostnet: [families], levels: [b, c, d]}`` part: dicts with ``model``
    (design columns), ``kind``, ``family``, ``level``, ``name`` and ``tag``. ConfigError for an unknown
    family or level, a base other than ``ghostnet_a``, or a peer that cannot be built at this scale."""
    from rubik.flops import solve_width
    from rubik.formula import matched_giant_phi
    from rubik.models.registry import RECONSTRUCTED

    if base != "ghostnet_a":
        raise ConfigError(f"{where}: ghostnet parts need the preset's base 'ghostnet_a' (cube.base), got {base!r}")
    families = [str(f) for f in part["ghostnet"]]
    bad = sorted(set(families) - set(GHOSTNET_FAMILIES))
    if bad:
        raise ConfigError(f"{where}: unknown ghostnet families {bad}; known: {list(GHOSTNET_FAMILIES)}")
    levels = [str(lv).lower().removeprefix("ghostnet_") for lv in (part.get("levels") or [])]
    bad = sorted(set(levels) - set(GHOSTNET_LEVELS))
    if not levels or bad:
        raise ConfigError(f"{where}: ghostnet parts need 'levels' among {list(GHOSTNET_LEVELS)}, got "
                          f"{part.get('levels')!r}")
    ref = Arch(base, base_resolution=base_resolution)
    f0 = ref.flops(num_classes)
    width_px = int(study.get("ghostnet_width_base_resolution") or round(base_resolution * 224 / 240))
    out = []
    for lv in levels:
        recon = ref.replace(twist=Twist(*RECONSTRUCTED[f"ghostnet_{lv}"]))
        target = recon.flops(num_classes)
        c = target / f0
        for fam in families:
            try:
                if fam == "recon":
                    arch = recon
                elif fam == "giant":
                    phi = matched_giant_phi(base, c, base_resolution=base_resolution, num_classes=num_classes)
                    arch = ref.replace(twist=giant_twist(phi))
                elif fam == "width":
                    w = solve_width("ghostnet_100", 1.0, 1.0, target, base_resolution=width_px,
                                    num_classes=num_classes)
                    arch = Arch("ghostnet_100", Twist(1.0, 1.0, w), width_px)
                elif fam == "width_a":
                    w = solve_width(base, 1.0, 1.0, target, base_resolution=base_resolution, num_classes=num_classes)
                    arch = ref.replace(twist=Twist(1.0, 1.0, w))
                else:   # ours
                    r, d = (float(x) for x in study_formula(study).predict(min(c, 1.0)))
                    w = solve_width(base, r, d, target, base_resolution=base_resolution, num_classes=num_classes)
                    arch = ref.replace(twist=Twist(r, d, w))
            except ValueError as e:
                raise ConfigError(f"{where}: {fam} at level {lv} ({target / 1e6:.2f}M FLOPs at base "
                                  f"{base_resolution} px): {e}") from None
            # level as an integer (1, 2, 3 = B, C, D) like the B0 studies' (rubik.study_stats reads ints)
            out.append(dict(model=_describe(arch, num_classes=num_classes, f0=f0), kind=fam, family=fam,
                            level=GHOSTNET_LEVELS.index(lv) + 1,
                            name=LABELS[fam].format(L=lv.upper()), tag=f"gh_{fam}_{lv}"))
    return out
