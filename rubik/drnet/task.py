"""DRNet as a ``rubik.train`` task: ``TrainConfig(task={"kind": "drnet", ...})`` trains either stage
through the ordinary loop (recipes, schedules, EMA, checkpoints, ``--resume``, DDP, run directories).

Stage ``multires`` trains the classifier at every candidate with its own BatchNorm set (the predictor
is frozen); stage ``joint`` starts from a ``multires`` checkpoint (``init``) and trains predictor and
classifier together on the FLOPs-constrained loss, the Gumbel temperature following its schedule
step by step (its position is set at every epoch's start, so a resumed run repeats it).
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from ..errors import ConfigError, RunDirError, UserError
from ..rundir import load_torch_file
from ..train import Task
from .loss import DRNetLoss
from .model import DRNet, DRNetConfig, build_drnet
from .predictor import predictor_flops


class DRNetTask(Task):
    def __init__(self, config: DRNetConfig):
        self.config = config

    @classmethod
    def from_dict(cls, d: dict) -> "DRNetTask":
        return cls(DRNetConfig.from_dict(d))

    def check(self, cfg=None) -> None:
        self.config.check()
        if cfg is None:
            return
        arch = cfg.arch   # an Arch, checked when the config was made
        resolutions = self.config.resolutions(arch.input_size)
        if self.config.stage == "joint":   # the head's FLOPs are left out here (no class count yet); exact at build
            p = predictor_flops(len(resolutions), self.config.predictor_channels, self.config.predictor_view)
            self.config.check_target([arch.flops(1, resolution=r) for r in resolutions], p, arch.flops(1))
        if self.config.init is not None and not Path(self.config.init).expanduser().is_file():
            raise ConfigError(f"DRNet init {self.config.init!r}: no such checkpoint file")

    def build_model(self, cfg, num_classes: int) -> DRNet:
        return build_drnet(cfg.arch, num_classes, self.config)

    def prepare(self, model: DRNet) -> None:
        if self.config.init is not None:
            path = Path(self.config.init).expanduser()
            try:
                ck = load_torch_file(path)
            except UserError:   # objects that would run code: refused in one line
                raise
            except Exception as e:
                raise RunDirError(f"cannot read DRNet init {path}: {type(e).__name__}: "
                                  f"{' '.join(str(e).split())[:200]}") from None
            state = ck.get("model", ck) if isinstance(ck, dict) else ck
            try:
                model.load_state_dict(state)
            except RuntimeError as e:
                raise RunDirError(f"DRNet init {path}: does not fit this model ({' '.join(str(e).split())[:200]})") \
                    from None
        if model.predictor is not None and not model.joint:
            model.predictor.requires_grad_(False)   # unused in stage multires (DDP needs every trained param used)

    def flops(self, model: DRNet, resolution: int) -> int:
        """The most one image costs: the largest candidate (plus the predictor in stage joint); the routed
        mean is measured by ``rubik.drnet.evaluate``."""
        return int(model.classifier_flops[0] + (model.predictor_flops if model.joint else 0))

    def criterion(self, recipe, model: DRNet, device) -> nn.Module:
        return DRNetLoss(model.classifier_flops, model.predictor_flops if model.joint else 0, model.reference_flops,
                         target=self.config.flops_target, eta=self.config.eta,
                         label_smoothing=recipe.label_smoothing).to(device)

    def start_epoch(self, model: DRNet, epoch: int, epochs: int, steps_per_epoch: int) -> None:
        model.set_schedule_position(epoch * steps_per_epoch, epochs * steps_per_epoch)

    def end_epoch(self, criterion: DRNetLoss) -> dict:
        return criterion.pop_stats()


__all__ = ["DRNetTask"]
