"""Training recipes: :class:`Recipe` (every optimisation setting of a run, its schedule included),
the named ones (``RECIPES``), and how a stored or typed recipe becomes one (``resolve_recipe``,
``parse_override``).

``efficientnet`` and ``resnet`` are the paper's; ``proxy`` and ``proxy_resnet`` short schedules for
ranking many small models; ``smoke`` is for tests. Why each is what it is, with the measurements
behind it: ``docs/TRAINING.md``. A recipe owns the schedule: ``epochs`` and ``batch_size`` (per
process) are its fields, so a run that trains longer is ``Recipe.named("proxy", epochs=40)``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from rubik.errors import ConfigError

__all__ = ["Recipe", "RECIPES", "resolve_recipe", "parse_override"]


@dataclass
class Recipe:
    name: str = "custom"
    epochs: int = 450
    batch_size: int = 128                # per process
    optimizer: str = "rmsproptf"         # "rmsproptf" | "sgd" | "adamw"
    lr_per_1024: float = 0.048           # lr = lr_per_1024 * global_batch / 1024
    momentum: float = 0.9
    rmsprop_decay: float = 0.9
    rmsprop_eps: float = 1e-3
    weight_decay: float = 1e-5           # not on BN parameters and biases
    schedule: str = "step"               # "step" | "exp" | "cosine" | "constant"
    decay_rate: float = 0.97
    decay_epochs: float = 2.4
    min_lr: float = 0.0                  # cosine floor
    warmup_epochs: float = 3.0
    warmup_lr: float = 1e-6
    bn_momentum: float | None = 0.01     # PyTorch convention (TF 0.99); None -> leave the model's
    bn_eps: float | None = 1e-3
    dropout: float | None = 0.2          # before the classifier; None -> leave the model's
    drop_connect: float = 0.0            # stochastic depth, max prob (linear over blocks)
    label_smoothing: float = 0.1
    head_init: str | None = None         # "zero": zero the classifier (weights, bias); None: the model's init
    ema_decay: float | None = 0.9999     # None -> from the run length (time constant = ema_horizon * steps)
    ema: bool = True
    ema_warmup: bool = False
    ema_horizon: float = 0.1
    crop_scale: tuple[float, float] = (0.08, 1.0)
    color_jitter: float = 0.4
    rand_augment: bool = False
    grad_clip: float | None = None
    eval_every: int = 1                  # the last epoch is always evaluated

    @classmethod
    def named(cls, name: str, **overrides) -> "Recipe":
        if name not in RECIPES:
            raise ConfigError(f"unknown recipe {name!r}; expected one of {sorted(RECIPES)}")
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown recipe fields {sorted(unknown)}")
        return dataclasses.replace(RECIPES[name], **overrides)

    def check(self) -> "Recipe":
        """ConfigError naming the first field outside its range (``ema_decay=1.5``, ``lr_per_1024=nan``)."""
        def bad(name, want):
            raise ConfigError(f"recipe field {name}={getattr(self, name)!r}: {want}")

        def num(name, lo=None, hi=None, lo_open=False, hi_open=False, none=False):
            v = getattr(self, name)
            if v is None and none:
                return
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                bad(name, "expected a finite number" + (" or None" if none else ""))
            if lo is not None and (v < lo or (lo_open and v == lo)):
                bad(name, f"must be {'>' if lo_open else '>='} {lo}")
            if hi is not None and (v > hi or (hi_open and v == hi)):
                bad(name, f"must be {'<' if hi_open else '<='} {hi}")

        for name in ("epochs", "batch_size", "eval_every"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int) \
                    or getattr(self, name) < 1:
                bad(name, "expected a positive integer")
        num("lr_per_1024", 0, lo_open=True)
        num("ema_decay", 0, 1, hi_open=True, none=True)        # 1 would never move
        num("ema_horizon", 0, lo_open=True)
        for name in ("momentum", "rmsprop_decay", "label_smoothing", "drop_connect"):
            num(name, 0, 1, hi_open=True)
        num("dropout", 0, 1, hi_open=True, none=True)
        num("bn_momentum", 0, 1, none=True)
        num("bn_eps", 0, lo_open=True, none=True)
        num("grad_clip", 0, lo_open=True, none=True)
        for name in ("rmsprop_eps", "decay_rate", "decay_epochs"):
            num(name, 0, lo_open=True)
        for name in ("weight_decay", "warmup_epochs", "warmup_lr", "min_lr", "color_jitter"):
            num(name, 0)
        if self.optimizer not in ("rmsproptf", "sgd", "adamw"):
            bad("optimizer", "expected rmsproptf, sgd or adamw")
        if self.schedule not in ("step", "exp", "cosine", "constant"):
            bad("schedule", "expected step, exp, cosine or constant")
        if self.head_init not in (None, "zero"):
            bad("head_init", "expected None or 'zero'")
        lo, hi = (tuple(self.crop_scale) + (None, None))[:2]
        if not all(isinstance(v, (int, float)) for v in (lo, hi)) or not 0 < lo <= hi <= 1:
            bad("crop_scale", "expected (lo, hi) with 0 < lo <= hi <= 1")
        return self


RECIPES = {
    "efficientnet": Recipe(name="efficientnet"),
    "resnet": Recipe(name="resnet", epochs=90, optimizer="sgd", lr_per_1024=0.4, weight_decay=1e-4,
                     schedule="step", decay_rate=0.1, decay_epochs=30, warmup_epochs=0, bn_momentum=0.1,
                     bn_eps=1e-5, dropout=None, label_smoothing=0.0, ema=False, color_jitter=0.4),
    "proxy": Recipe(name="proxy", epochs=10, batch_size=32, lr_per_1024=0.016, schedule="cosine", warmup_epochs=1.0,
                    bn_momentum=0.1, head_init="zero", ema_decay=None, ema_warmup=True, crop_scale=(0.25, 1.0),
                    color_jitter=0.0),
    "proxy_resnet": Recipe(name="proxy_resnet", epochs=10, batch_size=32, optimizer="sgd", lr_per_1024=0.8,
                           weight_decay=5e-5, schedule="cosine", warmup_epochs=1.0, bn_momentum=0.1, bn_eps=1e-5,
                           head_init="zero", dropout=None,
                           ema_decay=None, ema_warmup=True, crop_scale=(0.25, 1.0), color_jitter=0.0),
    "smoke": Recipe(name="smoke", epochs=2, batch_size=16, lr_per_1024=0.2, schedule="cosine", warmup_epochs=0.0,
                    bn_momentum=0.5, head_init="zero", dropout=0.0, label_smoothing=0.0, ema_decay=0.9, ema_warmup=True,
                    crop_scale=(0.35, 1.0), color_jitter=0.0),
}



def resolve_recipe(recipe) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, dict):
        # {"name": "proxy", "epochs": 4, ...}: a named recipe with some fields changed (a full
        # asdict(Recipe) round-trips too); an unregistered name starts from Recipe's defaults
        d = dict(recipe)
        if "crop_scale" in d:
            d["crop_scale"] = tuple(d["crop_scale"])
        name = d.pop("name", "custom")
        if name in RECIPES:
            return Recipe.named(name, **d)
        unknown = set(d) - {f.name for f in dataclasses.fields(Recipe)}
        if unknown:
            raise ValueError(f"unknown recipe fields {sorted(unknown)}")
        return Recipe(name=name, **d)
    return Recipe.named(recipe)



def parse_override(recipe: Recipe, item: str):
    """``(field, value)`` of one ``-o KEY=VALUE`` (``rubik train -o lr_per_1024=0.1``), typed like the
    recipe's current value; ConfigError naming the item when the key or value is wrong."""
    key, sep, value = item.partition("=")
    if not sep:
        raise ConfigError(f"-o {item!r}: expected KEY=VALUE")
    fields = {f.name: f for f in dataclasses.fields(Recipe)}
    if key not in fields:
        raise ConfigError(f"-o {item}: unknown recipe field {key!r}; known: {', '.join(fields)}")
    cur = getattr(recipe, key)
    if value.lower() == "none":
        return key, None
    try:
        if isinstance(cur, bool):
            if value.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError("expected true or false")
            return key, value.lower() in ("1", "true", "yes", "on")
        if isinstance(cur, tuple):
            return key, tuple(float(v) for v in value.split(","))
        if isinstance(cur, int):
            return key, int(value)
        if isinstance(cur, float) or cur is None:
            try:
                return key, float(value)
            except ValueError:
                if isinstance(cur, float):
                    raise
                return key, value
    except ValueError as e:
        raise ConfigError(f"-o {item}: {e}") from None
    return key, value
