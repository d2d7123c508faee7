"""Load official / timm-format EfficientNet-B0, TinyNet and GhostNet checkpoints into our modules.

The official TinyNet weights (huawei-noah CV-Backbones ``tinynet_pytorch``) and timm's
``tinynet_*`` / ``efficientnet_b0`` use timm's key names; ours are torchvision's. The mapping is
explicit, block by block (no reliance on parameter order):

==============================  ==========================================================
timm                            ours (torchvision ``EfficientNet``)
==============================  ==========================================================
``conv_stem`` / ``bn1``         ``features.0.0`` / ``features.0.1``
``blocks.{s}.{b}.*``            ``features.{s+1}.{b}.block.*`` (table below)
``conv_head`` / ``bn2``         ``features.{S+1}.0`` / ``features.{S+1}.1``
``classifier``                  ``classifier.1``
==============================  ==========================================================

Inside a block: depthwise-separable (expand ratio 1) ``conv_dw, bn1, se, conv_pw, bn2`` ->
``block.0.0, block.0.1, block.1, block.2.0, block.2.1``; inverted residual
``conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3`` -> ``block.0.0, block.0.1, block.1.0,
block.1.1, block.2, block.3.0, block.3.1``; SE ``conv_reduce, conv_expand`` -> ``fc1, fc2``.

GhostNet (the official ``ghostnet_pytorch`` code and timm's ``ghostnet_*`` share one layout):
``conv_stem``/``bn1`` -> ``features.0.0``/``features.0.1``; the G-necks ``blocks.{s}.{b}`` are
matched to ours *in order* (timm groups them by the paper's stages, we by runs of equal width, so
the indices differ but the sequence is the same); the last stage ``blocks.{S}.0.conv``/``.bn1``
(a 1x1 ConvBnAct) -> ``features.{last}.0``/``.1``; ``conv_head`` stays; ``classifier`` ->
``classifier.2``. Inside a G-neck only ``conv_dw, bn_dw`` -> ``conv_dw.0, conv_dw.1``, SE
``conv_reduce, conv_expand`` -> ``fc1, fc2`` and the shortcut ``0..3`` -> ``0.0, 0.1, 1.0, 1.1``
change name; the ghost modules' ``primary_conv.{0,1}``/``cheap_operation.{0,1}`` are the same.
"""
from __future__ import annotations

import os
import re

import torch
from torch import nn

from .ghostnet import GhostNet

_DS = {"conv_dw": "0.0", "bn1": "0.1", "se": "1", "conv_pw": "2.0", "bn2": "2.1"}
_IR = {"conv_pw": "0.0", "bn1": "0.1", "conv_dw": "1.0", "bn2": "1.1", "se": "2", "conv_pwl": "3.0", "bn3": "3.1"}
_SE = {"conv_reduce": "fc1", "conv_expand": "fc2"}
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(\d+)\.([a-z_]+\d?)\.(.+)$")


def read_state_dict(state_dict_or_path) -> dict[str, torch.Tensor]:
    """A state dict from a dict or a file (unwrapping ``state_dict``/``model``/``state_dict_ema``
    containers and a DistributedDataParallel ``module.`` prefix)."""
    if isinstance(state_dict_or_path, (str, os.PathLike)):
        sd = torch.load(state_dict_or_path, map_location="cpu", weights_only=True)
    else:
        sd = state_dict_or_path
    if not isinstance(sd, dict):
        raise ValueError(f"expected a state dict, got {type(sd).__name__}")
    for key in ("state_dict_ema", "model_ema", "state_dict", "model"):
        if key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def is_timm_ghostnet(sd: dict) -> bool:
    return "conv_stem.weight" in sd and any(".ghost1." in k for k in sd)


def is_timm_efficientnet(sd: dict) -> bool:
    return "conv_stem.weight" in sd and any(k.startswith("blocks.") for k in sd) and not is_timm_ghostnet(sd)


def timm_key_to_ours(key: str, model: nn.Module) -> str:
    """Our key for one timm-format EfficientNet key (``model`` tells block types and depth)."""
    features = model.features
    head_index = len(features) - 1
    if key.startswith("conv_stem."):
        return "features.0.0." + key[len("conv_stem."):]
    if key.startswith("bn1."):
        return "features.0.1." + key[len("bn1."):]
    if key.startswith("conv_head."):
        return f"features.{head_index}.0." + key[len("conv_head."):]
    if key.startswith("bn2."):
        return f"features.{head_index}.1." + key[len("bn2."):]
    if key.startswith("classifier."):
        return "classifier.1." + key[len("classifier."):]
    m = _BLOCK_KEY.match(key)
    if not m:
        raise KeyError(f"unexpected key in a timm EfficientNet checkpoint: {key!r}")
    stage, index, layer, rest = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
    try:
        block = features[stage + 1][index].block
    except (IndexError, AttributeError):
        raise KeyError(f"checkpoint block {stage}.{index} ({key!r}) does not exist in this model "
                       f"(different depth?)") from None
    table = _DS if len(block) == 3 else _IR
    if layer not in table:
        raise KeyError(f"unexpected layer {layer!r} in checkpoint key {key!r}")
    if layer == "se":
        sub, _, tail = rest.partition(".")
        rest = f"{_SE.get(sub, sub)}.{tail}"
    return f"features.{stage + 1}.{index}.block.{table[layer]}.{rest}"


def convert_timm_state_dict(sd: dict, model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename every key of a timm-format EfficientNet/TinyNet state dict to ours."""
    return {timm_key_to_ours(k, model): v for k, v in sd.items()}


_GHOST_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(\d+)\.(.+)$")
_GHOST_RENAMES = (("conv_dw.", "conv_dw.0."), ("bn_dw.", "conv_dw.1."), ("se.conv_reduce.", "se.fc1."),
                  ("se.conv_expand.", "se.fc2."), ("shortcut.0.", "shortcut.0.0."), ("shortcut.1.", "shortcut.0.1."),
                  ("shortcut.2.", "shortcut.1.0."), ("shortcut.3.", "shortcut.1.1."))


def convert_timm_ghostnet_state_dict(sd: dict, model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename every key of an official/timm GhostNet state dict to ours (see the module doc)."""
    if not isinstance(model, GhostNet):
        raise KeyError(f"a GhostNet checkpoint does not fit a {type(model).__name__}")
    last = len(model.features) - 1
    ours_blocks = [(i, j) for i in range(1, last) for j in range(len(model.features[i]))]
    # the checkpoint's G-necks in order; its last stage (no ghost modules) is the 1x1 ConvBnAct
    theirs = sorted({(int(m.group(1)), int(m.group(2))) for k in sd
                     if (m := _GHOST_BLOCK_KEY.match(k)) and ".ghost1." in k})
    head_stage = max((int(m.group(1)) for k in sd if (m := _GHOST_BLOCK_KEY.match(k))), default=-1)
    if len(theirs) != len(ours_blocks):
        raise KeyError(f"checkpoint has {len(theirs)} G-neck blocks, this model {len(ours_blocks)} "
                       f"(different depth?)")
    place = {t: o for t, o in zip(theirs, ours_blocks)}
    out = {}
    for key, value in sd.items():
        if key.startswith("conv_stem."):
            new = "features.0.0." + key[len("conv_stem."):]
        elif key.startswith("bn1."):
            new = "features.0.1." + key[len("bn1."):]
        elif key.startswith("classifier."):
            new = "classifier.2." + key[len("classifier."):]
        elif key.startswith("conv_head."):
            new = key
        elif (m := _GHOST_BLOCK_KEY.match(key)) is None:
            raise KeyError(f"unexpected key in a GhostNet checkpoint: {key!r}")
        elif int(m.group(1)) == head_stage and (int(m.group(1)), int(m.group(2))) not in place:
            rest = m.group(3)
            for a, b in (("conv.", "0."), ("bn1.", "1.")):
                if rest.startswith(a):
                    new = f"features.{last}.{b}{rest[len(a):]}"
                    break
            else:
                raise KeyError(f"unexpected layer in the last stage of a GhostNet checkpoint: {key!r}")
        else:
            stage, index = place[(int(m.group(1)), int(m.group(2)))]
            rest = m.group(3)
            for a, b in _GHOST_RENAMES:
                if rest.startswith(a):
                    rest = b + rest[len(a):]
                    break
            new = f"features.{stage}.{index}.{rest}"
        out[new] = value
    return out


def load_timm_checkpoint(model: nn.Module, state_dict_or_path) -> nn.Module:
    """Load a timm/official-format EfficientNet-B0 / TinyNet / GhostNet checkpoint into ``model`` (strict).

    Raises ValueError naming the mismatching tensors if the checkpoint is for another
    architecture (e.g. other width/depth or number of classes).
    """
    if not hasattr(model, "features"):
        raise ValueError("load_timm_checkpoint supports the EfficientNet-B0 family (TinyNets) and GhostNet only")
    sd = read_state_dict(state_dict_or_path)
    try:
        if is_timm_ghostnet(sd):
            ours = convert_timm_ghostnet_state_dict(sd, model)
        else:
            ours = convert_timm_state_dict(sd, model)
    except KeyError as e:
        raise ValueError(f"checkpoint does not fit this model: {e.args[0]}") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(ours))
    unexpected = sorted(set(ours) - set(own))
    shape = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
             for k, v in ours.items() if k in own and own[k].shape != v.shape]
    if missing or unexpected or shape:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
        if shape:
            parts.append(f"shape mismatch {shape[:5]}{'...' if len(shape) > 5 else ''}")
        raise ValueError("checkpoint does not fit this model: " + "; ".join(parts))
    model.load_state_dict(ours, strict=True)
    return model


def load_checkpoint(model: nn.Module, state_dict_or_path) -> nn.Module:
    """Load our own state dict, or a timm-format one (detected by its keys)."""
    sd = read_state_dict(state_dict_or_path)
    if is_timm_efficientnet(sd) or is_timm_ghostnet(sd):
        return load_timm_checkpoint(model, sd)
    model.load_state_dict(sd, strict=True)
    return model


__all__ = ["load_timm_checkpoint", "load_checkpoint", "convert_timm_state_dict", "convert_timm_ghostnet_state_dict",
           "timm_key_to_ours", "read_state_dict"]
