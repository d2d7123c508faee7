"""The presets of ``rubik reproduce``: one frozen dataclass per section, the loader and ``-p`` overrides.

A preset (``rubik/presets/<name>.yaml``) is nested by section and names only what it changes; the
rest comes from the preset it ``extends`` (a section-wise deep merge: a child changes only the keys
it names) and finally from the defaults, the fields below, which ``rubik/presets/_base.yaml`` lists
with their comments::

    description: "Imagenette, base 64 px, ..."
    extends: imagenette                    # optional
    data: {train_per_class: 500, pipeline: tensor}
    training: {epochs: 3, device: cpu}

A preset is checked by building its dataclasses: each section's ``__post_init__`` checks every field
against its annotation, its lower bound and its choices, and the choices are the constants of the
modules that use them (``rubik.data.DATASETS`` and ``PIPELINES``, ``rubik.train.RECIPES``,
``rubik.sampling.MODES``, ``rubik.tiny_vs_giant``'s levels and contenders, the registered models,
the DRNet presets), so they cannot drift from what the notebooks run.

The notebooks see one flat namespace: every field name is unique across sections, so a notebook's
``parameters`` cell, ``-p key=value`` and the dict ``load_preset`` returns all use the bare name
(``-p section.key=value`` works too, and a preset file may name a flat key at its top level: its
section is found by the name). ``study`` is a section of one mapping, the decisive experiments'
design (its keys are ``rubik.study``'s), which a child replaces whole.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Union

import yaml

from rubik.data import DATASETS, PIPELINES
from rubik import yamlsafe
from rubik.errors import ReproduceError
from rubik.models.registry import BASE_RESOLUTION, BASES
from rubik.sampling import MODES
from rubik.tiny_vs_giant import GIANT_PAIRS, TVG_LEVELS, TVG_TINY
from rubik.train import resolve_recipe

PRESET_DIR = Path(__file__).resolve().parent / "presets"
#: parameters every notebook may receive from the runner besides the preset's (not preset fields)
RUN_KEYS = ("preset", "run_dir")
#: the accuracies a frontier can be drawn on (columns of ``rubik.sweep.load_results``)
FRONTIER_METRICS = ("top1", "best_top1", "ema_top1")


class SettingError(ReproduceError):
    """A preset parameter with a bad value; the message is ``section.key=value: what is expected``."""

    def __init__(self, section: str, key: str, value, why: str):
        self.section, self.key, self.value, self.why = section, key, value, why
        super().__init__(f"{section}.{key}={_yaml(value)}: {why}")


# =========================================================================== checking one field

def setting(default, *, minimum: int | None = None, choices: Iterable | Callable[[], Iterable] | None = None,
            check: Callable[[Any], str | None] | None = None):
    """A preset field: its default (the value ``_base.yaml`` shows), the least value of an integer (of
    each item of a list of integers), the allowed values (a callable: asked when checking), and
    ``check(value) -> why`` for anything else (None: fine). The type is the field's annotation."""
    meta = {"minimum": minimum, "choices": choices, "check": check}
    if isinstance(default, (list, dict)):
        return field(default_factory=functools.partial(copy.deepcopy, default), metadata=meta)
    return field(default=default, metadata=meta)


_WORDS = {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list",
          dict: "a mapping", type(None): "null"}
_PLURAL = {bool: "true/false values", int: "integers", float: "numbers", str: "strings", dict: "mappings"}


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _alternatives(tp) -> tuple:
    return typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else (tp,)


def _fits(value, tp) -> bool:
    if tp is type(None):
        return value is None
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_fits(value, t) for t in typing.get_args(tp))
    if origin is list:
        return isinstance(value, list) and all(_fits(v, typing.get_args(tp)[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, tp)


def _describe(tp, minimum: int | None = None) -> str:
    if typing.get_origin(tp) is list:
        item = typing.get_args(tp)[0]
        bound = f" >= {minimum}" if minimum is not None and item is int else ""
        return f"a list of {_PLURAL.get(item, item.__name__)}{bound}"
    if typing.get_origin(tp) is dict:
        return "a mapping"
    if tp is int and minimum is not None:
        return {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
    return _WORDS.get(tp, getattr(tp, "__name__", str(tp)))


def _kind(value) -> str:
    """``a string 'x'``: what the user gave, for the message."""
    if value is None:
        return "null"
    return f"{_WORDS.get(type(value), type(value).__name__)} {value!r}"


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def check_field(section: str, cls, f: dataclasses.Field, value) -> None:
    """SettingError unless ``value`` fits field ``f`` of ``cls``: its annotation (ints pass for numbers,
    never bools; list items too), its ``minimum``, its ``choices`` and its ``check``."""
    tp, meta = _hints(cls)[f.name], f.metadata
    minimum, choices = meta.get("minimum"), meta.get("choices")
    expected = " or ".join(_describe(t, minimum) for t in _alternatives(tp))

    def fail(why):
        raise SettingError(section, f.name, value, why)

    if not _fits(value, tp):
        example = _default(f)
        like = f" (like {_yaml(example)})" if example not in (None, {}, []) else ""
        fail(f"expected {expected}{like}, got {_kind(value)}")
    if value is None:
        return
    ints = value if isinstance(value, list) else [value]
    if minimum is not None and any(isinstance(v, int) and v < minimum for v in ints):
        fail(f"expected {expected}, got {value!r}")
    if choices is not None:
        allowed = tuple(choices() if callable(choices) else choices)
        if any(v not in allowed for v in ints):
            fail(f"expected one of {', '.join(map(str, allowed))}, got {value!r}")
    why = meta["check"](value) if meta.get("check") else None
    if why:
        fail(why)


@dataclass(frozen=True)
class Section:
    """A section of a preset: its fields are checked when it is built (or ``dataclasses.replace``-d)."""
    NAME: ClassVar[str] = ""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check_field(self.NAME, type(self), f, getattr(self, f.name))


def _check_recipe(value) -> str | None:
    try:
        resolve_recipe(value).check()
    except (TypeError, ValueError) as e:   # ConfigError is a ValueError
        return str(e) if isinstance(value, str) else \
            f"{e} (expected a recipe name and the fields it changes, like {{name: proxy, epochs: 4}})"
    return None


def _check_phis(value) -> str | None:
    if not set(value) <= set(GIANT_PAIRS):
        return f"levels are phi = {', '.join(map(str, GIANT_PAIRS))} (TinyNet-B..E)"
    return None


def drnet_presets() -> list[str]:
    """The DRNet experiments ``rubik.drnet.experiment.load_preset`` reads: ``rubik/presets/drnet/*.yaml``
    (listed here from the folder: importing ``rubik.drnet`` costs torchvision)."""
    return sorted(p.stem for p in (PRESET_DIR / "drnet").glob("*.yaml"))


def _check_drnet_preset(value) -> str | None:
    if value in drnet_presets() or value.endswith((".yaml", ".yml")):
        return None
    return f"expected one of {', '.join(drnet_presets())} (rubik/presets/drnet/) or a .yaml path"


# =========================================================================== the sections

@dataclass(frozen=True)
class DataSection(Section):
    """The images (``rubik.data.DataConfig`` under the notebooks' names)."""
    NAME: ClassVar[str] = "data"
    data_dir: str | None = setting(None)        # ImageFolder root; "synthetic": made in the run dir; null: --data
    dataset: str = setting("imagenette", choices=DATASETS)
    manifest: str | None = setting(None)        # ImageNet-100 class/image list (json)
    train_per_class: int | None = setting(None, minimum=1)
    val_per_class: int | None = setting(None, minimum=1)
    pipeline: str = setting("auto", choices=PIPELINES)
    workers: int = setting(2, minimum=0)        # data-loader workers (folder pipeline)
    cache_dir: str | None = setting(None)       # decoded-tensor cache


@dataclass(frozen=True)
class CubeSection(Section):
    """The cube: the model whose (r, d, w) is twisted, and the input size of r = 1."""
    NAME: ClassVar[str] = "cube"
    # a base family, not a registered variant: sampling twists a base (tinynet_c is B0 already twisted)
    base: str = setting("efficientnet_b0", choices=lambda: BASES)
    base_resolution: int | None = setting(None, minimum=1)   # null: the base's own (B0 224, GhostNet-A 240)

    @property
    def input_size(self) -> int:
        """``base_resolution``, or the base's own input size when it is null."""
        return self.base_resolution if self.base_resolution is not None else BASE_RESOLUTION[self.base]


@dataclass(frozen=True)
class SamplingSection(Section):
    """01 sampling: the random (r, d, w) models with FLOPs <= the base's."""
    NAME: ClassVar[str] = "sampling"
    n_models: int = setting(100, minimum=1)
    sample_mode: str = setting("uniform", choices=MODES)
    ranges: dict | None = setting(None)         # dial ranges; null: rubik.sampling's
    seed: int = setting(0, minimum=0)


@dataclass(frozen=True)
class TrainingSection(Section):
    """02 sweep: how every model is trained."""
    NAME: ClassVar[str] = "training"
    recipe: str | dict = setting("proxy", check=_check_recipe)   # a rubik.train.RECIPES name, or {name: ..., field: v}
    epochs: int | None = setting(None, minimum=1)                # null: the recipe's
    batch_size: int | None = setting(None, minimum=1)            # null: the recipe's
    device: str = setting("auto")                                # auto | cpu | cuda | cuda:N
    threads: int | None = setting(None, minimum=1)               # torch threads per training process
    processes: int | None = setting(1, minimum=1)                # trainings run in parallel; null: one per GPU
    #                                                              present with device cuda/auto, else 1
    trial_checkpoints: bool = setting(False)                     # per-epoch checkpoint per trial: a killed
    #                                                              trial resumes (rubik.sweep.init_sweep)

    def __post_init__(self):
        super().__post_init__()
        # the schedule has one home, the recipe; a preset may name it here or in the recipe, not both apart
        if isinstance(self.recipe, dict):
            for key in ("epochs", "batch_size"):
                mine, theirs = getattr(self, key), self.recipe.get(key)
                if mine is not None and theirs is not None and mine != theirs:
                    raise SettingError(self.NAME, key, mine, f"conflicts with training.recipe.{key}={theirs!r}: "
                                                             "give it in one place")

@dataclass(frozen=True)
class AnalysisSection(Section):
    """03 frontier and 04 formula: what the frontier is drawn on and how the tiny formula is fitted."""
    NAME: ClassVar[str] = "analysis"
    metric: str = setting("top1", choices=FRONTIER_METRICS)
    n_boot: int = setting(1000, minimum=1)              # bootstrap resamples for the dial-importance intervals
    formula_min_points: int = setting(4, minimum=1)
    formula_levels: dict | None = setting(None)         # {name: FLOPs ratio}; null: TinyNet-A..E's


@dataclass(frozen=True)
class TinyVsGiantSection(Section):
    """05 tiny vs giant: the levels, contenders and seeds."""
    NAME: ClassVar[str] = "tiny_vs_giant"
    tvg_phis: list[int] = setting([1, 2, 3, 4], check=_check_phis)
    tvg_tiny: str = setting("released", choices=TVG_TINY)
    tvg_levels: str = setting("tinynet", choices=TVG_LEVELS)
    tvg_match_flops: bool = setting(True)
    tvg_seeds: list[int] = setting([0, 1, 2], minimum=0)
    tvg_epochs: int | None = setting(None, minimum=1)   # null: epochs


@dataclass(frozen=True)
class ImageNetSection(Section):
    """06 ImageNet: launch commands, checkpoint and released-weight evaluation, measured results."""
    NAME: ClassVar[str] = "imagenet"
    imagenet_dir: str | None = setting(None)
    checkpoints: dict = setting({})                     # {model name: weights path}
    released_weights: bool = setting(True)
    weights_dir: str | None = setting(None)
    eval_per_class: int | None = setting(None, minimum=1)
    nproc_per_node: int = setting(8, minimum=1)
    results_dir: str | None = setting(None)


@dataclass(frozen=True)
class DRNetSection(Section):
    """08 DRNet: the experiment (``rubik/presets/drnet/<name>.yaml``) to run or report."""
    NAME: ClassVar[str] = "drnet"
    drnet_preset: str = setting("imagenette", check=_check_drnet_preset)
    drnet_run: bool = setting(False)
    drnet_results: str | None = setting(None)


@dataclass(frozen=True)
class GhostNetSection(Section):
    """09 GhostNet appendix: the finished ``ghostnet_appendix`` study to read (null: the committed one)."""
    NAME: ClassVar[str] = "ghostnet"
    study_dir: str | None = setting(None)


@dataclass(frozen=True)
class Preset:
    """A whole preset: its ``description``, one dataclass per section, and ``study`` (a section of one
    mapping: the decisive experiments, ``rubik study init``; null: none). ``Preset()`` is the defaults."""
    description: str = setting("defaults")
    data: DataSection = field(default_factory=DataSection)
    cube: CubeSection = field(default_factory=CubeSection)
    sampling: SamplingSection = field(default_factory=SamplingSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    analysis: AnalysisSection = field(default_factory=AnalysisSection)
    tiny_vs_giant: TinyVsGiantSection = field(default_factory=TinyVsGiantSection)
    imagenet: ImageNetSection = field(default_factory=ImageNetSection)
    study: dict | None = setting(None)
    drnet: DRNetSection = field(default_factory=DRNetSection)
    ghostnet: GhostNetSection = field(default_factory=GhostNetSection)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in SECTIONS:
                if not isinstance(value, SECTIONS[f.name]):
                    raise TypeError(f"Preset.{f.name} must be a {SECTIONS[f.name].__name__}, got {_kind(value)}")
            else:
                check_field("preset", Preset, f, value)

    @classmethod
    def load(cls, name: str | os.PathLike, overrides: Iterable[str] | dict | None = None, *,
             strict: bool = True) -> "Preset":
        """Preset ``name`` (a shipped name or a .yaml path) with its ``extends`` chain and ``overrides``
        (``["epochs=2", "data.workers=0"]`` or a dict): see ``load_preset``. The runner's own keys
        (``RUN_KEYS``) are not preset fields: ``load_preset`` keeps them."""
        return _load(name, overrides, strict)[0]

    def flat(self) -> dict:
        """The notebooks' parameters ``{name: value}``, in the order of ``_base.yaml`` (copies)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in SECTIONS:
                out.update({g.name: copy.deepcopy(getattr(value, g.name)) for g in dataclasses.fields(value)})
                if f.name == "cube":
                    out["base_resolution"] = value.input_size
            else:
                out[f.name] = copy.deepcopy(value)
        return out

    def with_values(self, values: dict) -> "Preset":
        """A copy with the parameters ``values`` (flat names) changed, each section rebuilt (so checked)."""
        top, by_section = {}, {}
        for key, value in values.items():
            section = PARAMETERS[key]
            if section is None:
                top[key] = value
            else:
                by_section.setdefault(section, {})[key] = value
        sections = {s: dataclasses.replace(getattr(self, s), **kv) for s, kv in by_section.items()}
        return dataclasses.replace(self, **top, **sections) if top or sections else self


#: section name -> its dataclass
SECTIONS = {f.name: _hints(Preset)[f.name] for f in dataclasses.fields(Preset)
            if isinstance(_hints(Preset)[f.name], type) and issubclass(_hints(Preset)[f.name], Section)}


def _parameter_sections() -> dict:
    """flat name -> the section holding it (None: a field of ``Preset`` itself); every name once."""
    names = {}
    for f in dataclasses.fields(Preset):
        inner = [g.name for g in dataclasses.fields(SECTIONS[f.name])] if f.name in SECTIONS else [f.name]
        for name in inner:
            if name in names:
                raise TypeError(f"preset parameter {name!r} is in two sections ({names[name]}, {f.name}): "
                                f"the notebooks receive flat names, so each must be unique")
            names[name] = f.name if f.name in SECTIONS else None
    clash = set(names) & ((set(SECTIONS) | set(RUN_KEYS) | {"extends"}) - {"study"})
    if clash:
        raise TypeError(f"preset parameter(s) {sorted(clash)} shadow a section name or a runner key")
    return names


#: every preset parameter's flat name (what notebooks and ``-p`` use) -> its section
PARAMETERS = _parameter_sections()


# =========================================================================== reading presets

def list_presets() -> list[str]:
    """Names of the shipped presets (``rubik/presets/*.yaml`` without ``_base``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml") if not p.stem.startswith("_"))


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yamlsafe.load(f) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:   # a typo, a !!python tag, an alias, a binary file
        raise ReproduceError(f"preset file {path}: {yamlsafe.problem(e)}") from None
    if not isinstance(data, dict):
        raise ReproduceError(f"preset file {path} must be a mapping of parameters, got {type(data).__name__}")
    return data


def _preset_path(name: str | os.PathLike, beside: Path | None = None) -> Path:
    """A shipped preset's file, or the .yaml path ``name`` (``beside``: the folder of the preset that
    ``extends`` it, where a relative path is looked up first, whatever the current directory)."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and beside is not None and not p.is_absolute() and (beside / p).exists():
        return beside / p
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    cand = PRESET_DIR / f"{name}.yaml"
    if cand.exists() and not str(name).startswith("_"):
        return cand
    raise ReproduceError(f"unknown preset {str(name)!r}: choose one of {', '.join(list_presets())} "
                         f"(or give the path of a .yaml file)")


def parse_value(text: str) -> Any:
    """YAML-parse a command-line value (``4`` -> 4, ``[0, 1]`` -> list, ``null`` -> None)."""
    try:
        return yamlsafe.load(text)
    except yaml.YAMLError as e:
        if isinstance(e, (yaml.composer.ComposerError, yaml.constructor.ConstructorError)):
            raise ReproduceError(f"value {text!r}: {yamlsafe.problem(e)}") from None   # refused, not a string
        return text


def parse_overrides(items: Iterable[str] | dict | None) -> dict:
    """``["epochs=2", "tvg_seeds=[0, 1]"]`` -> ``{"epochs": 2, "tvg_seeds": [0, 1]}``."""
    if not items:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out = {}
    for item in items:
        if "=" not in item:
            raise ReproduceError(f"bad parameter {item!r}: use -p key=value (value parsed as YAML)")
        k, v = item.split("=", 1)
        if not v.strip():   # `-p training.epochs=`: a value left out, not null
            raise ReproduceError(f"-p {item}: no value given (write -p {k.strip()}=null for null)")
        out[k.strip()] = parse_value(v)
    return out


def _yaml(value) -> str:
    """``value`` as it would be written after ``-p key=`` (one line of YAML)."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def _did_you_mean(shown: str, key: str, candidates) -> str:
    if shown.startswith("study."):
        return f"{shown} (the study's own keys: `rubik study init ... -p {shown}=VALUE`)"
    if key in PARAMETERS and PARAMETERS[key]:        # a known name in the wrong section
        return f"{shown} (it is in section {PARAMETERS[key]})"
    match = difflib.get_close_matches(key, list(candidates), 1)
    return f"{shown} (did you mean {match[0]}?)" if match else shown


def _file_values(path: Path, data: dict) -> tuple[dict, dict, list]:
    """A preset file as ``(parameters by flat name, runner keys, unknown-key hints)``: a section's
    mapping is opened, a flat name at the top level is its section's."""
    values, run, unknown = {}, {}, []
    for key, value in data.items():
        if key == "extends":
            continue
        if key in SECTIONS:
            fields = [f.name for f in dataclasses.fields(SECTIONS[key])]
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ReproduceError(f"preset file {path}: section {key} must be a mapping of its parameters "
                                     f"({', '.join(fields)}), got {_kind(value)}")
            for k, v in value.items():
                if k in fields:
                    values[k] = v
                else:
                    unknown.append((k, v, _did_you_mean(f"{key}.{k}", k, fields)))
        elif key in PARAMETERS:
            values[key] = value
        elif key in RUN_KEYS:
            run[key] = value
        else:
            unknown.append((key, value, _did_you_mean(key, key, list(PARAMETERS) + list(SECTIONS))))
    return values, run, unknown


def _flat_key(key: str) -> str:
    """``data.workers`` -> ``workers`` (when section data has it); any other key as it is."""
    section, dot, name = key.partition(".")
    return name if dot and section in SECTIONS and PARAMETERS.get(name) == section else key


def _override(preset: Preset, key: str, value) -> Preset:
    """``preset`` with ``-p key=value`` applied (``key`` flat or ``section.key``); a bad value is one
    line naming the ``-p``, the value and what is expected."""
    try:
        return preset.with_values({_flat_key(key): value})
    except SettingError as e:
        hint = ""
        tp = _hints(SECTIONS[e.section] if e.section in SECTIONS else Preset)[e.key]
        if isinstance(value, str) and "," in value and any(typing.get_origin(t) is list for t in _alternatives(tp)):
            hint = f"; write -p '{key}=[{value}]'"
        raise ReproduceError(f"-p {key}={_yaml(value)}: {e.why}{hint}") from None


def check_parameter(key: str, value) -> None:
    """ReproduceError unless ``value`` is a valid value of parameter ``key`` (flat or ``section.key``)."""
    if _flat_key(key) not in PARAMETERS:
        raise ReproduceError(f"unknown parameter {_did_you_mean(key, key.rpartition('.')[2], PARAMETERS)}")
    _override(Preset(), key, value)


def _load(name, overrides, strict: bool) -> tuple[Preset, dict]:
    """``(Preset, extra flat keys)``: the defaults <- the ``extends`` chain <- the preset <- ``overrides``.
    Extra keys are the runner's (``RUN_KEYS``) and, unless ``strict``, unknown ones."""
    chain, seen = [], set()
    path = _preset_path(name)
    while True:
        data = _read_yaml(path)
        chain.append((path, data))
        parent = data.get("extends")
        if not parent:
            break
        if parent in seen:
            raise ReproduceError(f"preset {name!r}: 'extends' loop through {parent!r}")
        seen.add(parent)
        path = _preset_path(parent, beside=path.parent)
    preset, extras = Preset(), {}
    for path, data in reversed(chain):
        values, run, unknown = _file_values(path, data)
        if unknown and strict:
            raise ReproduceError(f"preset file {path}: unknown parameter(s) {', '.join(u[2] for u in unknown)}; "
                                 f"known: {', '.join(sorted(PARAMETERS))}")
        extras.update(run)
        extras.update({k: v for k, v, _ in unknown})
        try:
            preset = preset.with_values(values)
        except SettingError as e:
            raise ReproduceError(f"preset file {path}: {e}") from None
    ov = parse_overrides(overrides)
    unknown = [k for k in ov if _flat_key(k) not in PARAMETERS and k not in RUN_KEYS]
    if strict and unknown:
        hints = [_did_you_mean(k, k.rpartition(".")[2], PARAMETERS) for k in unknown]
        raise ReproduceError(f"unknown parameter(s) {', '.join(hints)}; known: {', '.join(sorted(PARAMETERS))}")
    for key, value in ov.items():
        if key in RUN_KEYS or key in unknown:
            extras[key] = value
        else:
            preset = _override(preset, key, value)
    return preset, extras


def load_preset(name: str, overrides: Iterable[str] | dict | None = None, *, strict: bool = True) -> dict:
    """The resolved parameters of preset ``name``, flat (``{"dataset": ..., "epochs": ...}``, what the
    notebooks receive): the defaults <- the ``extends`` chain <- the preset <- ``overrides``, plus
    ``preset`` (its name). With ``strict`` (the default), unknown keys in a preset file or the
    overrides are an error (with a did-you-mean); without, they are passed through unchecked."""
    preset, extras = _load(name, overrides, strict)
    cfg = {**preset.flat(), **extras}
    cfg["preset"] = Path(name).stem if str(name).endswith((".yaml", ".yml")) else str(name)
    return cfg


__all__ = ["Preset", "Section", "DataSection", "CubeSection", "SamplingSection", "TrainingSection", "AnalysisSection",
           "TinyVsGiantSection", "ImageNetSection", "DRNetSection", "SECTIONS", "PARAMETERS", "RUN_KEYS",
           "PRESET_DIR", "FRONTIER_METRICS", "SettingError", "setting", "check_field", "check_parameter",
           "drnet_presets", "list_presets", "load_preset", "parse_value", "parse_overrides"]
