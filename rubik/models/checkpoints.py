"""Load official / timm-format EfficientNet-B0 and TinyNet checkpoints into our modules.

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
"""
from __future__ import annotations

import os
import re

import torch
from torch import nn

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


def is_timm_efficientnet(sd: dict) -> bool:
    return "conv_stem.weight" in sd and any(k.startswith("blocks.") for k in sd)


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


def load_timm_checkpoint(model: nn.Module, state_dict_or_path) -> nn.Module:
    """Load a timm/official-format EfficientNet-B0 / TinyNet checkpoint into ``model`` (strict).

    Raises ValueError naming the mismatching tensors if the checkpoint is for another
    architecture (e.g. other width/depth or number of classes).
    """
    if not hasattr(model, "features"):
        raise ValueError("load_timm_checkpoint supports the EfficientNet-B0 family (TinyNets) only")
    sd = read_state_dict(state_dict_or_path)
    try:
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
    if is_timm_efficientnet(sd):
        return load_timm_checkpoint(model, sd)
    model.load_state_dict(sd, strict=True)
    return model


__all__ = ["load_timm_checkpoint", "load_checkpoint", "convert_timm_state_dict", "timm_key_to_ours",
           "read_state_dict"]
