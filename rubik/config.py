"""What one training is: :class:`TrainConfig`, its stored form, and the checks made before any data is read.

A config holds three values that say *what* is trained, each the one home of its settings:

* ``arch``: the model, a :class:`rubik.models.Arch` (base, twist, base resolution, rules, conv). A
  registered name (``"tinynet_c"``) or an ``Arch.to_dict()`` dict is turned into one when the config
  is made, so nothing downstream re-derives a model from loose fields;
* ``data``: the dataset and how it is loaded (:class:`rubik.data.DataConfig`);
* ``recipe``: every optimisation setting, the schedule (``epochs``) and the per-process batch size
  included (:class:`rubik.recipes.Recipe`; a name or a dict of changes is resolved when the config is made);

and the rest says *how* it runs (seed, device, threads, output folder, resume, compile, progress).

Stored form (``to_dict``: sweep specs, trial records, ``config.json`` and checkpoints) is plain JSON
with ``arch`` as ``Arch.to_dict()`` and the recipe's every field. Configs stored before this layout
(``model`` + ``twist`` + ``base_resolution``, and ``epochs`` / ``batch_size`` beside the recipe) are
converted once, where they are read (``upgrade_config`` inside ``TrainConfig.from_dict``); the identity
of a training (``rubik.identity``) is the same under either layout.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from typing import TYPE_CHECKING

from rubik.errors import ConfigError
from rubik.models import Arch
from rubik.recipes import Recipe, resolve_recipe
from rubik.rundir import jsonable

if TYPE_CHECKING:
    from rubik.data import DataConfig

# torch, rubik.data and rubik.tasks (which load torch) are imported where they are used: a sweep's
# spec, its status and its records' identities are read without loading torch (``rubik sweep status``,
# fake trainers in the tests, workers that have not started a trial yet)


def _data_config(**fields) -> "DataConfig":
    from rubik.data import DataConfig

    return DataConfig(**fields)

__all__ = ["TrainConfig", "upgrade_config", "model_from_config", "validate", "check_device", "check_model_size",
           "MAX_PARAMS"]

#: the fields of the layout before ``arch`` and the recipe's schedule (read, never written)
LEGACY_KEYS = ("model", "twist", "base_resolution", "epochs", "batch_size")


def _arch(value) -> Arch:
    try:
        return Arch.from_any(value)
    except (ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"arch: {e}") from None


def _recipe(value) -> Recipe:
    try:
        return resolve_recipe(value)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"recipe: {e}") from None


@dataclass
class TrainConfig:
    arch: Arch | str | dict = "efficientnet_b0"   # an Arch; a registered name or an Arch dict becomes one
    data: DataConfig = field(default_factory=_data_config)
    recipe: Recipe | str | dict = "proxy"   # a Recipe; a name or {"name": ..., field: value} becomes one
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    out_dir: str | None = None       # checkpoints + metrics.jsonl; None -> no checkpoints
    resume: bool | str = False       # True: continue out_dir's run (error if it has no checkpoint);
                                     # "auto": continue if there is a checkpoint, else start (sweeps)
    overwrite: bool = False          # replace the run in out_dir (without it, a run there is an error)
    compile: bool | str = False      # torch.compile the model: True, or a mode ("reduce-overhead": CUDA graphs)
    progress: bool = True
    channels_last: bool | None = True    # NHWC model and batches (None, in older configs: the same)
    task: dict | None = None         # what the loop trains besides plain classification, e.g. {"kind": "drnet",
                                     # ...} (rubik.drnet); None: a classifier at the model's resolution

    def __post_init__(self):
        self.arch = _arch(self.arch)
        self.recipe = _recipe(self.recipe)
        if isinstance(self.data, Mapping):
            try:
                self.data = _data_config(**self.data)
            except TypeError as e:
                raise ConfigError(f"data: {e}") from None

    @property
    def epochs(self) -> int:
        """The schedule's length (the recipe's; read-only here: change it with ``with_recipe(epochs=...)``)."""
        return self.recipe.epochs

    @property
    def batch_size(self) -> int:
        """Per-process batch size (the recipe's)."""
        return self.recipe.batch_size

    def with_recipe(self, **changes) -> "TrainConfig":
        """A copy whose recipe has some fields changed (``cfg.with_recipe(epochs=40)``)."""
        return dataclasses.replace(self, recipe=dataclasses.replace(self.recipe, **changes))

    def to_dict(self) -> dict:
        """Plain JSON: ``arch`` as ``Arch.to_dict()``, ``data`` and ``recipe`` with all their fields."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["arch"] = self.arch.to_dict()
        return jsonable(d)

    @classmethod
    def from_dict(cls, d: Mapping) -> "TrainConfig":
        """A config from its stored dict, in today's layout or the one before ``arch`` (converted)."""
        d = upgrade_config(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"TrainConfig has no field(s) {sorted(unknown)}")
        return cls(**d)


def upgrade_config(d: Mapping) -> dict:
    """A stored TrainConfig dict in today's layout: ``model`` (+ ``twist``, ``base_resolution``)
    becomes ``arch`` (an Arch dict), ``epochs`` / ``batch_size`` (where set) go into the recipe.
    A dict already in today's layout is returned as a copy; values are not checked here, except that
    an old ``model`` must name a buildable model (ConfigError otherwise)."""
    d = dict(d)
    if not any(k in d for k in LEGACY_KEYS):
        return d
    if "arch" in d and any(d.get(k) is not None for k in ("model", "twist", "base_resolution")):
        raise ConfigError("a config with both arch and model/twist/base_resolution: keep arch only")
    model, twist, br = d.pop("model", None), d.pop("twist", None), d.pop("base_resolution", None)
    if "arch" not in d:
        if isinstance(model, Mapping):
            if twist is not None or br is not None:
                raise ConfigError("model is an Arch, which has its own twist and base_resolution: leave those unset")
            d["arch"] = dict(model)
        else:
            try:
                d["arch"] = Arch.named(model or "efficientnet_b0", twist=None if twist is None else tuple(twist),
                                       base_resolution=br).to_dict()
            except (ValueError, TypeError, KeyError) as e:
                raise ConfigError(str(e)) from None
    changes = {k: d.pop(k) for k in ("epochs", "batch_size") if k in d}
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes:
        recipe = d.get("recipe", "proxy")
        if isinstance(recipe, Recipe):
            recipe = dataclasses.asdict(recipe)
        recipe = {"name": recipe} if isinstance(recipe, str) else dict(recipe)
        recipe.update(changes)
        d["recipe"] = recipe
    return d


# ----------------------------------------------------------------------------- checks before any data

#: the largest model ``rubik train`` / ``latency`` build (parameters): 10x ResNet-50, 40x the largest
#: registered EfficientNet twist; larger dials (up to the dial limit of 8) would allocate tens of GB first
MAX_PARAMS = 250_000_000


def check_model_size(arch: Arch, num_classes: int = 1000) -> None:
    """ConfigError when ``arch`` has more than ``MAX_PARAMS`` parameters (counted from its plan,
    nothing allocated): the message gives its size and FLOPs."""
    n = arch.params(num_classes=num_classes)
    if n > MAX_PARAMS:
        raise ConfigError(f"{arch.base} with twist {tuple(arch.twist.as_tuple())} has {n / 1e6:,.0f}M parameters "
                          f"({4 * n / 2**30:.1f} GiB of float32 weights) and {arch.flops(num_classes=num_classes) / 1e9:,.1f}"
                          f" GFLOPs at {arch.input_size} px: more than rubik builds (MAX_PARAMS = {MAX_PARAMS / 1e6:.0f}M)")


def check_device(name, fix: str = "--device cpu") -> None:
    """ConfigError unless the device ``name`` exists on this machine (``auto`` and ``cpu`` always do):
    ``cuda``/``cuda:N`` need CUDA and N below the device count, ``mps`` Apple's backend. Run it
    before any data is read, so a job asking for a missing GPU stops at once, in one line; ``fix`` is
    the setting the message suggests instead."""
    name = str(name or "auto")
    if name in ("auto", "cpu"):
        return
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"device {name!r}: {e} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: no CUDA device is available here (torch.cuda.is_available() is "
                              f"False: no NVIDIA driver or GPU, or a CPU-only torch build); use {fix}, "
                              "or run on a GPU node")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ConfigError(f"device {name!r}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r}: Apple's MPS backend is not available here; use {fix}")


def _positive_int(name: str, v: Any) -> None:
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
        raise ConfigError(f"{name} must be a positive integer, got {v!r}")


def validate(cfg: TrainConfig, *, model_given: bool = False) -> Recipe:
    """The checked recipe, after checking every setting that can be checked without data: the model's
    size, the schedule and batch size, threads, the recipe's fields, the data subsample, the device and
    the task. ConfigError on the first bad one, before anything expensive runs. (The model's name and
    dials were checked when the config was made: ``cfg.arch`` is an Arch.)"""
    r = cfg.recipe
    for name in ("epochs", "batch_size"):
        _positive_int(name, getattr(r, name))
    _positive_int("threads", cfg.threads)
    r = r.check()
    if cfg.resume not in (False, True, "auto"):
        raise ConfigError(f"resume must be True, False or 'auto', got {cfg.resume!r}")
    check_device(cfg.device)
    for name in ("train_per_class", "val_per_class"):
        _positive_int(f"data.{name} (--{name.replace('_', '-')})", getattr(cfg.data, name, None))
    if not model_given:
        check_model_size(cfg.arch)
    from rubik.tasks import resolve_task

    resolve_task(cfg.task).check(cfg)
    return r


def model_from_config(config, num_classes: int):
    """The untrained model of a TrainConfig or its stored dict (either layout): the one place a record,
    a checkpoint's config or a sweep trial becomes a module (a task's model, e.g. a DRNet, through its task)."""
    from rubik.tasks import resolve_task

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    return resolve_task(cfg.task).build_model(cfg, num_classes)
