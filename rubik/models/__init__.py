"""Twistable models and the registry: ``create_model("tinynet_c")``, ``create_model("efficientnet_b0",
twist=(0.8, 1.1, 0.6))``, ``list_models("tinynet_*")``.

Every model returned by :func:`create_model` carries ``.arch`` (:class:`~rubik.models.arch.Arch`:
base, twist, base resolution, rules), ``.twist`` (:class:`~rubik.cube.Twist`), ``.base`` (family
name), ``.resolution`` (input side in px, ``arch.input_size``) and ``.default_cfg`` (timm-like
preprocessing dict).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # annotations only: importing rubik.models (Arch, the registry) does not load torch
    from torch import nn

from .arch import Arch
from .registry import BASE_RESOLUTION, BASES, ModelSpec, get_model_spec, list_models, paper_table

# spconv, checkpoints and pretrained import torch: create_model and load_timm_checkpoint import them when
# called (a model is built then anyway), so that a sweep's spec, status and fake workers never load torch.

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def create_model(name: str | Arch, num_classes: int = 1000, *, twist=None, rules: str | None = None,
                 base_resolution: int | None = None, conv=None, alpha: float | None = None,
                 checkpoint: str | None = None, pretrained=False, **kwargs: Any) -> nn.Module:
    """Build a registered model (or a base twisted by ``twist``).

    name: a registered name (``list_models()``), a base (``BASES``), or an :class:`Arch` (or its
        dict; then ``twist``, ``rules`` and ``base_resolution`` must be None: it has them).
    twist: ``(r, d, w)``, dict or Twist; if given it replaces the variant's dials (dials are
        always relative to the base, e.g. ``create_model("tinynet_a", twist=(1, 1, 1))`` is B0).
    rules: EfficientNet family only: ``"tinynet"`` (default) or ``"efficientnet"``.
    conv, alpha: ResNet and VGG families only: ``conv="spconv"`` swaps every dense 3x3 convolution but the
        stem's for :class:`~rubik.models.spconv.SPConv2d` with ``alpha`` (default 1/2); ``alpha`` alone
        implies ``"spconv"`` (``create_model("spconv_resnet20", alpha=0.25)`` changes a variant's);
        EfficientNet and GhostNet refuse it (their blocks have no dense 3x3).
    base_resolution: resolution of the untwisted base (default: the family's, 224 or 240);
        proxy runs use 64, so ``resolution = int(64 * r)``.
    checkpoint: path to a state dict (ours, or timm/official format for TinyNets and GhostNet).
    pretrained: ``True`` loads the authors' released ImageNet weights (``tinynet_a..e``,
        ``ghostnet_100``; downloaded once into torch.hub's cache, see :mod:`rubik.models.pretrained`),
        a string loads weights from that path or URL (``https://``, ``file://``).
    kwargs: builder options, e.g. ``drop_rate``, ``drop_path_rate`` (EfficientNet family),
        ``act="hswish"`` (GhostNet), ``bn_momentum``/``bn_eps`` (EfficientNet family).
    """
    if isinstance(name, (Arch, dict)):
        if twist is not None or rules is not None or base_resolution is not None or conv is not None \
                or alpha is not None:
            raise ValueError("create_model: an Arch already has its twist, rules, base_resolution and conv")
        arch, spec_kwargs = Arch.from_any(name), {}
        name = arch.base
    else:
        spec = get_model_spec(name)
        if alpha is not None:   # alpha alone: SPConv, or the variant's SPConv with another alpha
            from .spconv import ConvSpec   # torch (the SPConv module lives there): import rubik.models stays torch-free

            conv = ConvSpec.from_any(conv if conv is not None else (spec.conv or "spconv"), alpha)
        arch = Arch.from_spec(spec, twist=twist, base_resolution=base_resolution, rules=rules, conv=conv)
        spec_kwargs = spec.kwargs
    model = arch.build(num_classes, **{**spec_kwargs, **kwargs})
    model.variant = name
    model.default_cfg = {
        "architecture": name,
        "base": arch.base,
        "twist": arch.twist.as_tuple(),
        "rules": arch.rules_name,
        "num_classes": num_classes,
        "input_size": (3, arch.input_size, arch.input_size),
        "base_resolution": arch.base_resolution,
        "conv": arch.conv.to_dict(),
        "crop_pct": 0.875,
        "interpolation": "bicubic",
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
    }
    if checkpoint is not None:
        from .checkpoints import load_checkpoint   # torch: see the note on these imports above

        load_checkpoint(model, checkpoint)
    if pretrained:
        from .pretrained import load_pretrained   # torch

        load_pretrained(model, pretrained, name=name)
    return model


def input_resolution(name_or_model, base_resolution: int | None = None) -> int:
    """Input side in px of a registered name or a built model (its ``Arch``'s ``input_size``)."""
    if isinstance(name_or_model, str):
        return Arch.named(name_or_model, base_resolution=base_resolution).input_size
    arch = getattr(name_or_model, "arch", None)
    if not isinstance(arch, Arch):
        raise ValueError("input_resolution needs a registered name or a model made by rubik.create_model")
    return arch.input_size if base_resolution is None else arch.replace(base_resolution=base_resolution).input_size


def load_timm_checkpoint(model: nn.Module, state_dict_or_path) -> nn.Module:
    """Load a timm/official-format EfficientNet/TinyNet state dict into our (torchvision) module."""
    from .checkpoints import load_timm_checkpoint as _load   # torch

    return _load(model, state_dict_or_path)


__all__ = ["Arch", "BASES", "BASE_RESOLUTION", "ModelSpec", "create_model", "list_models", "get_model_spec",
           "input_resolution", "load_timm_checkpoint", "paper_table"]
