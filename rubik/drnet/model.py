"""The DRNet model: a resolution predictor in front of a multi-resolution classifier.

:class:`DRNetConfig` holds the settings (candidates, stage, predictor size, FLOPs target, eta, Gumbel
temperature) and checks them (``ConfigError``, one line); :func:`build_drnet` makes a :class:`DRNet`
from any :class:`rubik.models.Arch`. Candidates are scales of the backbone's own input size
(``int(input_size * s)`` px, ``rubik.cube``'s rounding), largest first, so index 0 is the backbone as
trained alone.

Forward passes:

* training, stage ``multires`` (DRNet's first stage): the classifier at every candidate, returned as
  :class:`MultiResOutput`; the predictor is frozen and unused.
* training, stage ``joint``: the predictor scores the candidates on a ``predictor_view``-px view, a
  straight-through Gumbel-softmax picks one per image, and the K classifier outputs are mixed by that
  one-hot choice (:class:`DRNetOutput`: the logits and the choice, from which the loss takes the FLOPs).
* eval: each image goes through the classifier at its chosen resolution only (routed); ``route``
  fixes the choice (an index) or leaves it to the predictor (None). ``last_choice`` keeps the batch's
  choices for evaluation code.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple, Sequence

import torch
from torch import nn

from ..cube import MIN_IMAGE_SIZE
from ..errors import ConfigError
from ..models.multires import MultiResolutionClassifier, resize_batch
from .gumbel import TemperatureSchedule, st_gumbel_softmax
from .predictor import ResolutionPredictor, predictor_flops

STAGES = ("multires", "joint")


@dataclass
class DRNetConfig:
    """DRNet's settings (JSON: ``asdict``; ``TrainConfig.task = {"kind": "drnet", **asdict(cfg)}``)."""

    candidates: tuple[float, ...] = (1.0, 0.75, 0.5)   # scales of the backbone's input size, largest first
    stage: str = "joint"                 # "multires": classifier at all candidates; "joint": + predictor
    predictor_channels: tuple[int, ...] = (8, 16, 32)
    predictor_view: int = 32             # px of the predictor's low-resolution view
    flops_target: float | None = None    # joint: mean FLOPs per image, predictor included, as a fraction
                                         # of the backbone's FLOPs at its own input size
    eta: float = 2.0                     # weight of the FLOPs hinge
    temperature: tuple[float, float] = (1.0, 1.0)   # Gumbel tau: start, end (geometric over the run)
    init: str | None = None              # a rubik.train checkpoint.pt whose weights start this run

    @classmethod
    def from_dict(cls, d: dict) -> "DRNetConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown DRNet setting(s) {sorted(unknown)}; known: {sorted(names)}")
        d = dict(d)
        for key in ("candidates", "predictor_channels", "temperature"):
            if isinstance(d.get(key), list):
                d[key] = tuple(d[key])
        return cls(**d)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def schedule(self) -> TemperatureSchedule:
        t = self.temperature
        if not isinstance(t, (tuple, list)) or len(t) != 2:
            raise ConfigError(f"Gumbel temperature {t!r}: expected (start, end)")
        return TemperatureSchedule(*t)

    def check(self) -> "DRNetConfig":
        """ConfigError naming the first bad setting (everything that needs no model or data)."""
        c = self.candidates
        if not isinstance(c, (tuple, list)) or not c or not all(_number(s) for s in c):
            raise ConfigError(f"DRNet candidates {c!r}: expected a non-empty list of scales, e.g. 1,0.75,0.5")
        if not all(0 < s <= 1 for s in c):
            raise ConfigError(f"DRNet candidates {list(c)}: every scale must be in (0, 1] (of the backbone's "
                              "input size)")
        if any(a <= b for a, b in zip(c, c[1:])):
            raise ConfigError(f"DRNet candidates {list(c)}: list them largest first, without repeats")
        if self.stage not in STAGES:
            raise ConfigError(f"DRNet stage {self.stage!r}: expected one of {STAGES}")
        if self.stage == "joint" and len(c) < 2:
            raise ConfigError("DRNet stage 'joint' needs at least 2 candidates (one has nothing to choose)")
        ch = self.predictor_channels
        if not isinstance(ch, (tuple, list)) or not ch or not all(isinstance(v, int) and v > 0 for v in ch):
            raise ConfigError(f"DRNet predictor_channels {ch!r}: expected positive integers, e.g. 8,16,32")
        if not isinstance(self.predictor_view, int) or self.predictor_view < 8:
            raise ConfigError(f"DRNet predictor_view {self.predictor_view!r}: expected an integer >= 8 px")
        if not _number(self.eta) or self.eta < 0:
            raise ConfigError(f"DRNet eta {self.eta!r}: expected a finite number >= 0")
        self.schedule  # noqa: B018 - checks the temperatures
        t = self.flops_target
        if self.stage == "joint":
            if t is None:
                raise ConfigError("DRNet stage 'joint' needs a flops_target (mean FLOPs per image as a fraction "
                                  "of the backbone's, e.g. 0.6)")
            if not _number(t) or t <= 0:
                raise ConfigError(f"DRNet flops_target {t!r}: expected a number > 0")
        elif t is not None:
            raise ConfigError("DRNet flops_target is for stage 'joint' (stage 'multires' trains no predictor)")
        return self

    def resolutions(self, input_size: int) -> list[int]:
        """Candidate sides in px for a backbone fed ``input_size`` px; ConfigError if two coincide or one
        falls below ``rubik.cube.MIN_IMAGE_SIZE``."""
        px = [int(input_size * s) for s in self.candidates]
        if len(set(px)) != len(px):
            raise ConfigError(f"DRNet candidates {list(self.candidates)} of {input_size} px give repeated sizes {px}")
        if min(px) < MIN_IMAGE_SIZE:
            raise ConfigError(f"DRNet candidates {list(self.candidates)} of {input_size} px go down to {min(px)} px, "
                              f"below the {MIN_IMAGE_SIZE}-px floor")
        return px

    def check_target(self, classifier_flops: Sequence[int], predictor: int, reference: int) -> None:
        """ConfigError if ``flops_target`` cannot be met (below the cheapest choice) or never binds
        (above the dearest): the hinge would then say nothing."""
        if self.flops_target is None:
            return
        lo, hi = (min(classifier_flops) + predictor) / reference, (max(classifier_flops) + predictor) / reference
        if not lo < self.flops_target < hi:
            raise ConfigError(f"DRNet flops_target {self.flops_target:g}: must lie strictly between {lo:.3f} (every "
                              f"image at the smallest candidate) and {hi:.3f} (every image at the largest), "
                              "predictor included")


def _number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


class MultiResOutput(NamedTuple):
    """Stage ``multires``' training output: the logits at every candidate (largest first)."""
    logits: tuple


class DRNetOutput(NamedTuple):
    """Stage ``joint``'s training output: the choice-mixed logits and the (N, K) straight-through one-hot choice."""
    logits: torch.Tensor
    choice: torch.Tensor


class DRNet(nn.Module):
    """Predictor + multi-resolution classifier (see the module docstring).

    ``classifier_flops``: analytic FLOPs of the classifier at each resolution; ``predictor_flops``: the
    predictor's. ``reference_flops``: the backbone at its own input size (what ``flops_target`` is a
    fraction of). ``input_size``: the side of the images it is fed (``.resolution``; default the largest
    candidate).
    """

    def __init__(self, backbone: nn.Module, resolutions: Sequence[int], classifier_flops: Sequence[int], *,
                 predictor: ResolutionPredictor | None = None, predictor_flops: int = 0,
                 reference_flops: int | None = None, joint: bool = False,
                 schedule: TemperatureSchedule = TemperatureSchedule(), input_size: int | None = None):
        super().__init__()
        if joint and predictor is None:
            raise ValueError("a joint DRNet needs a predictor")
        # registered before the classifier: rubik.train's head init and rubik validate's class count take
        # the *last* nn.Linear for the classifier's head
        self.predictor = predictor
        self.classifier = MultiResolutionClassifier(backbone, resolutions)
        self.resolutions = list(self.classifier.resolutions)
        self.classifier_flops = [int(f) for f in classifier_flops]
        self.predictor_flops = int(predictor_flops) if predictor is not None else 0
        self.reference_flops = int(reference_flops or self.classifier_flops[0])
        self.joint = bool(joint)
        self.schedule = schedule
        self.route: int | None = None if joint else 0   # eval: None -> the predictor chooses
        self.tau = schedule.start
        self._step, self._total_steps = 0, 1
        self.last_choice: torch.Tensor | None = None
        # what the data pipeline feeds: the backbone's own input size, every candidate resized from it (so a
        # one-candidate DRNet at 0.75 sees the same pixels as the 0.75 branch of a three-candidate one)
        self.resolution = max(int(input_size or 0), *self.resolutions)
        for attr in ("arch", "twist", "base", "rules"):
            if hasattr(backbone, attr):
                setattr(self, attr, getattr(backbone, attr))

    # -- the temperature schedule (set at each epoch's start, so a resumed run repeats it)
    def set_schedule_position(self, step: int, total_steps: int) -> None:
        self._step, self._total_steps = int(step), max(1, int(total_steps))
        self.tau = self.schedule.at(self._step / self._total_steps)

    # -- routing
    def predictor_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictor(resize_batch(x, self.predictor.view))

    @torch.no_grad()
    def choose(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) candidate index per image: ``route`` if fixed, else the predictor's argmax."""
        if self.route is not None or self.predictor is None:
            return torch.full((x.shape[0],), self.route or 0, dtype=torch.long, device=x.device)
        return self.predictor_logits(x).argmax(1)

    def forward_routed(self, x: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
        """Logits with every image through the classifier at ``choice[i]`` only (one pass per resolution used)."""
        parts = []
        for k in torch.unique(choice).tolist():
            idx = (choice == k).nonzero().squeeze(1)
            parts.append((idx, self.classifier(x.index_select(0, idx), k)))
        out = parts[0][1].new_empty((x.shape[0], parts[0][1].shape[1]))
        for idx, logits in parts:
            out[idx] = logits
        return out

    def image_flops(self, choice: torch.Tensor, *, predicted: bool = True) -> torch.Tensor:
        """FLOPs of each image routed by ``choice`` (float64): the classifier at its resolution, plus the
        predictor when it made the choice."""
        table = torch.tensor(self.classifier_flops, dtype=torch.float64, device=choice.device)
        return table[choice] + (self.predictor_flops if predicted else 0)

    def forward(self, x: torch.Tensor):
        if not self.training:
            choice = self.choose(x)
            self.last_choice = choice
            return self.forward_routed(x, choice)
        if not self.joint:
            return MultiResOutput(tuple(self.classifier(x, k) for k in range(len(self.resolutions))))
        self.tau = self.schedule.at(self._step / self._total_steps)
        self._step += 1
        choice = st_gumbel_softmax(self.predictor_logits(x), self.tau)
        logits = sum(choice[:, k:k + 1].to(lg.dtype) * lg for k, lg in
                     enumerate(self.classifier(x, k) for k in range(len(self.resolutions))))
        return DRNetOutput(logits, choice)


def build_drnet(arch, num_classes: int, config: DRNetConfig) -> DRNet:
    """A :class:`DRNet` on ``arch`` (an :class:`rubik.models.Arch`) with ``num_classes`` outputs."""
    config.check()
    resolutions = config.resolutions(arch.input_size)
    classifier_flops = [arch.flops(num_classes, resolution=r) for r in resolutions]
    reference = arch.flops(num_classes)
    predictor, p_flops = None, 0
    if len(resolutions) > 1:
        predictor = ResolutionPredictor(len(resolutions), config.predictor_channels, config.predictor_view)
        p_flops = predictor_flops(len(resolutions), config.predictor_channels, config.predictor_view)
    if config.stage == "joint":
        config.check_target(classifier_flops, p_flops, reference)
    return DRNet(arch.build(num_classes), resolutions, classifier_flops, predictor=predictor, predictor_flops=p_flops,
                 reference_flops=reference, joint=config.stage == "joint", schedule=config.schedule,
                 input_size=arch.input_size)


__all__ = ["DRNetConfig", "DRNet", "DRNetOutput", "MultiResOutput", "build_drnet", "STAGES"]
