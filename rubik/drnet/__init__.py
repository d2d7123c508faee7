"""DRNet (Zhu, Han et al., "Dynamic Resolution Network", NeurIPS 2021) on the cube's models.

A small predictor looks at a low-resolution view of each image and picks one of K input resolutions;
the classifier shares its weights across resolutions and keeps one BatchNorm set per resolution
(:mod:`rubik.models.multires`). Modules, one idea each:

* :mod:`~rubik.drnet.predictor`: the resolution predictor (a small ResNet) and its analytic FLOPs;
* :mod:`~rubik.drnet.gumbel`: straight-through Gumbel-softmax and the temperature schedule;
* :mod:`~rubik.drnet.model`: ``DRNetConfig`` (checked settings), ``DRNet``, ``build_drnet``;
* :mod:`~rubik.drnet.loss`: cross-entropy at all candidates; CE + eta x hinge(expected FLOPs - target);
* :mod:`~rubik.drnet.task`: both training stages as a ``rubik.train`` task (``TrainConfig.task``);
* :mod:`~rubik.drnet.evaluate`: routed evaluation (real FLOPs, histogram, select/test top-1, latency,
  random routing at the same resolution mix);
* :mod:`~rubik.drnet.settings`: an experiment's presets and ``-p`` values, checked; exact run folders, each
  run's settings fingerprint, ``eval.json`` checked;
* :mod:`~rubik.drnet.experiment`: the experiment's plan, report, figures and ``rubik drnet``.
"""
from .gumbel import TemperatureSchedule, st_gumbel_softmax
from .loss import DRNetLoss, flops_penalty
from .model import DRNet, DRNetConfig, DRNetOutput, MultiResOutput, build_drnet
from .predictor import ResolutionPredictor, predictor_flops

__all__ = ["DRNet", "DRNetConfig", "DRNetLoss", "DRNetOutput", "MultiResOutput", "ResolutionPredictor",
           "TemperatureSchedule", "build_drnet", "flops_penalty", "predictor_flops", "st_gumbel_softmax"]
