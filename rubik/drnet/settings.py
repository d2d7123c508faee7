"""A DRNet experiment's settings, checked, and what ties a run folder to them.

* ``load_preset`` / ``apply_params``: a preset file and ``-p KEY=YAML`` values, read through
  :mod:`rubik.yamlsafe` (no aliases, no duplicate keys, no YAML 1.1 numbers), like the main presets;
* ``check_preset``: every key of a preset in the shape the plan needs (a list where a list is wanted,
  a mapping where a mapping is), each problem one ``ConfigError`` line naming the key and what is expected;
* ``target_name``: the folder of a FLOPs target, exact (0.8 and 0.80000001 get different folders);
* ``run_fingerprint``: the settings that define a run (its training's identity, ``rubik.identity``, its
  DRNet task without the ``init`` path, and for a joint run the random routings it was scored against),
  stored in its ``eval.json`` and recomputed from its ``config.json``: a folder trained with other
  settings is refused, never shown under the new ones;
* ``read_eval``: an ``eval.json`` read and checked, or one line naming the file and how to redo it.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import fields
from pathlib import Path

import yaml

from .. import yamlsafe
from ..data import DATASETS, DataConfig
from ..errors import ConfigError
from ..identity import config_identity, identity_diff
from ..models import Arch
from ..rundir import dumps

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets" / "drnet"
REQUIRED = ("backbone", "candidates", "predictor_channels", "predictor_view", "targets", "eta", "temperature",
            "recipe", "epochs", "seeds")
KEYS = frozenset(REQUIRED) | {"n_random", "data", "threads", "device"}
STAGE_EPOCHS = ("fixed", "multires", "joint")
#: DataConfig fields a preset may set (the root comes from --data, the seed from the run's seed)
DATA_FIELDS = tuple(f.name for f in fields(DataConfig) if f.name not in ("root", "seed"))


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> dict:
    """A DRNet experiment preset by name (or a .yaml path); ConfigError (one line) for an unknown name or
    key, or a file ``rubik.yamlsafe`` refuses."""
    path = Path(name) if str(name).endswith((".yaml", ".yml")) else PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown DRNet preset {name!r}; expected one of {list_presets()} or a .yaml path")
    try:
        with open(path, encoding="utf-8") as f:
            preset = yamlsafe.load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as e:   # a typo, a !!python tag, an alias, a binary file
        raise ConfigError(f"DRNet preset {path}: {yamlsafe.problem(e)}") from None
    preset = {} if preset is None else preset
    if not isinstance(preset, dict):
        raise ConfigError(f"DRNet preset {path}: expected a mapping of settings, got {type(preset).__name__}")
    unknown = set(preset) - KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(KEYS)}")
    return preset


def apply_params(preset: dict, items) -> dict:
    """``preset`` with ``-p KEY=YAML`` values put in (each value read as ``rubik.yamlsafe`` reads a file)."""
    preset = dict(preset)
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in KEYS:
            raise ConfigError(f"-p {item!r}: expected KEY=YAML with KEY one of {sorted(KEYS)}")
        if not value.strip():
            raise ConfigError(f"-p {item}: no value given")
        try:
            preset[key] = yamlsafe.load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"-p {item}: {yamlsafe.problem(e)}") from None
    return preset


def _number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _int(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, int)


def target_name(t: float) -> str:
    """``joint_<t>``'s ``<t>``: the short form (``0.6``) where it reads back as ``t`` exactly, else every
    digit (``0.80000001``), so two targets never share a folder."""
    short = f"{t:g}"
    return short if float(short) == float(t) else repr(float(t))


def check_preset(preset: dict) -> None:
    """ConfigError (one line naming the key and what is expected) for a preset the plan cannot use. The
    values' ranges (candidates in (0, 1], temperatures > 0 ...) are ``DRNetConfig.check``'s and ``validate``'s."""
    missing = [k for k in REQUIRED if k not in preset]
    if missing:
        raise ConfigError(f"DRNet preset: missing key(s) {missing}")

    def bad(key, want):
        raise ConfigError(f"DRNet {key} {preset[key]!r}: expected {want}")

    def number_list(key, want, check=_number):
        v = preset[key]
        if not isinstance(v, list) or not v or not all(check(x) for x in v):
            bad(key, want)

    if not isinstance(preset["backbone"], dict):
        bad("backbone", "an Arch mapping, e.g. {base: efficientnet_b0, twist: [1, 1, 1], base_resolution: 224}")
    try:
        arch = Arch.from_dict(preset["backbone"])
    except (ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"DRNet backbone {preset['backbone']!r}: {' '.join(str(e).split())}") from None
    number_list("candidates", "a non-empty list of finite scales, largest first, e.g. [1.0, 0.75, 0.5]")
    number_list("predictor_channels", "a non-empty list of positive integers, e.g. [4, 8, 16]", _int)
    number_list("targets", "a non-empty list of FLOPs fractions, e.g. [0.45, 0.6, 0.75]")
    names = [target_name(t) for t in preset["targets"]]
    if len(set(names)) != len(names):
        bad("targets", "distinct values (each is a folder joint_<target>)")
    temp = preset["temperature"]
    if not isinstance(temp, list) or len(temp) != 2 or not all(_number(t) for t in temp):
        bad("temperature", "a pair [start, end] of Gumbel temperatures, e.g. [1.0, 0.3]")
    if not _number(preset["eta"]):
        bad("eta", "a finite number >= 0")
    recipe = preset["recipe"]
    if not isinstance(recipe, dict) or not isinstance(recipe.get("name"), str):
        bad("recipe", "a mapping with a recipe name and overrides, e.g. {name: proxy, lr_per_1024: 0.008}")
    ep = preset["epochs"]
    if not isinstance(ep, dict) or set(ep) != set(STAGE_EPOCHS) or not all(_int(v) and v > 0 for v in ep.values()):
        bad("epochs", "a mapping of positive epochs per stage, e.g. {fixed: 5, multires: 5, joint: 2}")
    seeds = preset["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(_int(s) and s >= 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        bad("seeds", "a non-empty list of distinct non-negative integers, e.g. [0, 1, 2]")
    if "n_random" in preset and not (_int(preset["n_random"]) and preset["n_random"] >= 0):
        bad("n_random", "a non-negative integer (random routings scored per joint run)")
    data = preset.get("data", {})
    if not isinstance(data, dict) or set(data) - set(DATA_FIELDS):
        raise ConfigError(f"DRNet data {data!r}: expected a mapping of {', '.join(DATA_FIELDS)} (the root is "
                          "--data, the seed each run's)")
    if data.get("name", "imagenette") not in DATASETS:
        raise ConfigError(f"DRNet data {data!r}: unknown dataset name {data['name']!r}; expected one of {DATASETS}")
    from .model import DRNetConfig   # the candidates' ranges and sizes, before any run is planned
    try:
        DRNetConfig(candidates=tuple(preset["candidates"]), stage="multires").check().resolutions(arch.input_size)
    except (ValueError, TypeError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"DRNet candidates {preset['candidates']!r}: {e}") from None


# ----------------------------------------------------------------------------- what ties a run folder to them

def run_fingerprint(config, n_random: int | None = None) -> str:
    """16 hex digits naming a run's settings: ``config_identity`` of its TrainConfig (or stored dict), its
    task without ``init`` (a path: the same run moved elsewhere is the same run) and, for a joint run,
    ``n_random`` (the random routings its evaluation scored)."""
    cfg = config.to_dict() if hasattr(config, "to_dict") else config
    task = {k: v for k, v in (cfg.get("task") or {}).items() if k != "init"}
    ident = {"identity": config_identity(cfg), "task": task,
             "n_random": n_random if task.get("stage") == "joint" else None}
    return hashlib.sha256(dumps(ident, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _task_diff(have: dict, want: dict) -> str:
    h, w = have.get("task") or {}, want.get("task") or {}
    diff = [f"{k} {h.get(k)!r} -> {w.get(k)!r}" for k in sorted(set(h) | set(w))
            if k != "init" and h.get(k) != w.get(k)]
    return "; ".join(x for x in [identity_diff(have, want), *diff] if x)


def stored_fingerprint(run_dir, n_random: int | None) -> tuple[str, dict] | None:
    """``(fingerprint, stored config)`` of the run trained in ``run_dir`` (its ``config.json``), or None
    where nothing was kept there yet (or its config cannot be read: the training's own resume check
    then has the last word)."""
    run_dir = Path(run_dir)
    if not any((run_dir / f).is_file() for f in ("checkpoint.pt", "result.json", "eval.json")):
        return None   # nothing kept: a run killed in its first epoch starts over anyway
    try:
        cfg = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict):
        return None
    return run_fingerprint(cfg, n_random), cfg


def check_run_dir(run_dir, config, n_random: int | None) -> None:
    """ConfigError if ``run_dir`` holds a run trained (or evaluated) with settings other than ``config``'s."""
    want = run_fingerprint(config, n_random)
    stored = stored_fingerprint(run_dir, n_random)
    why = None
    if stored is not None and stored[0] != want:
        why = _task_diff(stored[1], config.to_dict()) or "other settings"
    else:
        ev = _read_json(Path(run_dir) / "eval.json")
        if not isinstance(ev, dict):
            pass
        elif isinstance(ev.get("fingerprint"), str) and ev["fingerprint"] != want:
            why = "evaluated with other settings"
        elif "fingerprint" not in ev and isinstance(ev.get("random"), dict) and n_random is not None \
                and ev["random"].get("n") != n_random:
            why = f"n_random {ev['random'].get('n')!r} -> {n_random!r}"
    if why:
        raise ConfigError(f"{run_dir} was trained or evaluated with other settings ({why}); give the new settings "
                          "a new folder, or delete that run's folder to train it again")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def eval_problem(ev) -> str | None:
    """Why an ``eval.json``'s content cannot be reported (None: it can)."""
    if not isinstance(ev, dict):
        return "not a JSON object"
    missing = [k for k in ("name", "seed", "task", "resolutions", "fixed") if k not in ev]
    if not missing and str(ev["name"]).startswith("joint_"):
        missing = [k for k in ("routed", "random") if k not in ev]
    if missing:
        return f"no {', '.join(missing)}"
    fixed = ev["fixed"]
    if not isinstance(fixed, list) or not fixed or not all(isinstance(f, dict) and {"top1", "mean_flops", "correct"}
                                                          <= set(f) for f in fixed):
        return "no per-resolution results under 'fixed'"
    return None


def read_eval(path) -> dict:
    """An ``eval.json``, checked (``eval_problem``); ConfigError naming the file and how to make it again."""
    path = Path(path)
    try:
        ev = json.loads(path.read_text())
        why = eval_problem(ev)
    except UnicodeDecodeError:
        why = "not a text file"
    except ValueError as e:
        why = f"not complete JSON ({e})"
    if why:
        exp = path.parent.parent.parent
        raise ConfigError(f"{path}: damaged evaluation ({why}); delete it and run `rubik drnet run {exp} --data DATA` "
                          "with the experiment's preset again: it evaluates that run again (its training is kept)")
    return ev


__all__ = ["KEYS", "REQUIRED", "apply_params", "check_preset", "check_run_dir", "eval_problem", "list_presets",
           "load_preset", "read_eval", "run_fingerprint", "stored_fingerprint", "target_name"]
