"""What a training *is*: one canonical value per ``TrainConfig``, and its fingerprint.

``config_identity(config)`` reduces a TrainConfig (or its stored dict: a sweep's ``trial_config``, a
trial record's ``config``, a checkpoint's ``config``) to the fields that make two trainings the same
experiment, in plain JSON:

* ``arch``: the model's one identity value, ``rubik.models.Arch.to_dict()`` (base, twist, base
  resolution, rules), however the config spelled it (a registered name + ``twist`` +
  ``base_resolution``, or an Arch dict);
* ``epochs`` and ``batch_size`` (effective: the recipe's where the config leaves them None), ``seed``;
* ``data``: the dataset and its subsample (``name``, ``train_per_class``, ``val_per_class``,
  ``manifest``, ``seed``); not its ``root`` (the same data lives at other paths on other machines; a
  changed dataset is caught by the tensor cache's key and by ``rubik train --resume``'s data check);
* ``recipe``: every field of the resolved recipe.

Not part of it: device, threads, paths, resume/overwrite, progress, compile, channels_last and the
data loading options (pipeline, workers, cache folder), which change how fast a run goes, not what it
is. ``config_fingerprint`` is a short hash of the identity's canonical JSON: a sweep stores it in every
trial record, and a record whose fingerprint (or whose own ``config``) does not match its trial's spec
is *stale* (``rubik.jobqueue.record_mismatch``). A value that cannot be resolved (an Arch the rules
reject, a recipe with unknown fields) is kept as written, so any stored config has an identity.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json

from rubik.config import upgrade_config
from rubik.models import Arch
from rubik.recipes import resolve_recipe
from rubik.rundir import dumps

__all__ = ["config_identity", "config_fingerprint", "identity_diff"]

#: DataConfig fields that name the data a run trained on (its subsample included)
DATA_KEYS = ("name", "train_per_class", "val_per_class", "manifest", "seed")


def _as_dict(config) -> dict:
    if hasattr(config, "to_dict"):   # a TrainConfig
        return config.to_dict()
    if not isinstance(config, dict):
        raise TypeError(f"expected a TrainConfig or its dict, got {type(config).__name__}")
    return config


def _canonical(obj) -> str:
    return dumps(obj, sort_keys=True, separators=(",", ":"))


def config_identity(config) -> dict:
    """The identity of a TrainConfig or its stored dict (see the module docstring): ``{"arch", "epochs",
    "batch_size", "seed", "data", "recipe"}``, plain JSON."""
    return json.loads(_identity_json(_canonical(_as_dict(config))))


def config_fingerprint(config) -> str:
    """16 hex digits of the SHA-256 of ``config_identity(config)``'s canonical JSON."""
    return _fingerprint_json(_canonical(_as_dict(config)))


@functools.lru_cache(maxsize=4096)
def _fingerprint_json(config_json: str) -> str:
    return hashlib.sha256(_identity_json(config_json).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=4096)
def _identity_json(config_json: str) -> str:
    cfg = json.loads(config_json)
    try:   # either stored layout (rubik.config): model + twist + base_resolution, or arch
        cfg = upgrade_config(cfg)
        arch = cfg.get("arch")
    except ValueError:   # a model that cannot be built, or both layouts at once: kept as written
        arch = {k: cfg.get(k) for k in ("arch", "model", "twist", "base_resolution") if k in cfg}
    try:
        arch = Arch.from_any(arch).to_dict()
    except (ValueError, TypeError, KeyError, AttributeError):
        pass   # kept as written
    recipe = cfg.get("recipe", "proxy")
    epochs, batch = cfg.get("epochs"), cfg.get("batch_size")
    try:
        r = resolve_recipe(recipe)
        epochs, batch = epochs or r.epochs, batch or r.batch_size
        recipe = dataclasses.asdict(dataclasses.replace(r, epochs=epochs, batch_size=batch))
    except (ValueError, TypeError, KeyError):
        pass
    data = cfg.get("data") or {}
    data = {k: data.get(k) for k in DATA_KEYS} if isinstance(data, dict) else data
    ident = {"arch": arch, "epochs": epochs, "batch_size": batch, "seed": cfg.get("seed", 0), "data": data,
             "recipe": recipe}
    return _canonical(ident)


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def identity_diff(have, want, limit: int = 4) -> str:
    """``"epochs 1 -> 3; seed 7 -> 9"``: the identity fields in which config ``have`` differs from ``want``."""
    a, b = _flat(config_identity(have)), _flat(config_identity(want))
    diff = [f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return "; ".join(diff[:limit]) + (f"; ... ({len(diff)} fields)" if len(diff) > limit else "")
