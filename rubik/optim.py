"""Optimizers, learning-rate schedules and weight EMA used by ``rubik.train``.

``RMSpropTF`` is TensorFlow's RMSProp as the EfficientNet / TinyNet recipes use it.
``param_groups`` keeps weight decay off BatchNorm parameters and biases.
``LRSchedule`` is a per-step schedule (linear warmup, then step / exponential-staircase /
cosine decay) with a ``state_dict``. ``ModelEMA`` keeps an exponential moving average of
the weights (and BN statistics).
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


class RMSpropTF(torch.optim.Optimizer):
    r"""RMSProp with TensorFlow semantics (``tf.compat.v1.train.RMSPropOptimizer``).

    Per parameter, with gradient ``g`` (plus ``weight_decay * p``, an L2 term as in TF):

    .. math::
        v \leftarrow \rho v + (1-\rho) g^2,\qquad
        m \leftarrow \mu m + \eta\, g / \sqrt{v + \epsilon},\qquad
        p \leftarrow p - m

    It differs from ``torch.optim.RMSprop`` (decay ``alpha``=rho, ``momentum``, ``eps``) in three ways:

    1. ``eps`` is added **inside** the square root: ``sqrt(v + eps)``; torch uses ``sqrt(v) + eps``.
       With the recipe's ``eps=1e-3`` the floor of the denominator is ``sqrt(1e-3) ~ 0.032``,
       not ``1e-3`` -- for typical small gradients TF-RMSProp behaves like SGD with momentum
       (step ~ lr * g / 0.032), torch's would take ~30x larger, sign-like steps.
    2. The square average ``v`` starts at **1**, not 0. Torch's first step is therefore
       ``g / sqrt((1-rho) g^2) ~ 3.2 * sign(g)`` times lr (a huge, normalised first step);
       TF's first steps are ``~ g / sqrt(rho)``, i.e. gentle, while ``v`` decays towards ``g^2``.
    3. The learning rate is applied **inside** the momentum buffer (``m = mu*m + lr*g/rms``),
       torch applies it outside (``p -= lr * m``). Identical for a constant lr, but with a
       schedule the buffer keeps the lr at which each gradient arrived (no jump when lr changes).

    ``tests/test_optim.py`` checks these numerically against a NumPy reference and shows the
    difference from ``torch.optim.RMSprop``.

    ``foreach=True`` updates all parameters of a group with a handful of multi-tensor
    ``torch._foreach_*`` ops -- on a GPU a few fused kernels per step instead of ~6 per parameter
    (B0 has ~213 parameters). ``foreach=False`` is the per-parameter loop: on CPU the two give bitwise
    the same parameters (``tests/test_optim.py``), and the loop is not slower there (each parameter's
    update stays in cache; ``benchmarks/optimizer_step.py``). ``None`` (default), as torch's optimizers:
    multi-tensor when the parameters are on a GPU.
    """

    def __init__(self, params, lr=1e-2, alpha=0.9, eps=1e-3, momentum=0.9, weight_decay=0.0, *, foreach=None):
        if lr < 0 or eps < 0 or not 0 <= alpha < 1 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"invalid RMSpropTF arguments lr={lr} alpha={alpha} eps={eps} "
                             f"momentum={momentum} weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay,
                                      foreach=foreach))

    def _state(self, p, mom):
        state = self.state[p]
        if "square_avg" not in state:
            state["step"] = 0
            state["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
        if mom > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("RMSpropTF does not support sparse gradients")
            foreach = group.get("foreach")
            if foreach is None:
                foreach = all(p.device.type == "cuda" for p in params)
            if params:
                (self._foreach_step if foreach else self._loop_step)(group, params)
        return loss

    def _loop_step(self, group, params):
        lr, alpha, eps, mom, wd = (group[k] for k in ("lr", "alpha", "eps", "momentum", "weight_decay"))
        for p in params:
            g = p.grad
            if wd:
                g = g.add(p, alpha=wd)
            state = self._state(p, mom)
            state["step"] += 1
            v = state["square_avg"]
            v.mul_(alpha).addcmul_(g, g, value=1 - alpha)
            rms = v.add(eps).sqrt_()
            if mom > 0:
                buf = state["momentum_buffer"]
                buf.mul_(mom).addcdiv_(g, rms, value=lr)
                p.sub_(buf)
            else:
                p.addcdiv_(g, rms, value=-lr)

    def _foreach_step(self, group, params):
        # _loop_step's ops in the same order, each applied to the whole list at once
        lr, alpha, eps, mom, wd = (group[k] for k in ("lr", "alpha", "eps", "momentum", "weight_decay"))
        states = [self._state(p, mom) for p in params]
        for st in states:   # a host-side counter kept for the state_dict; launches nothing
            st["step"] += 1
        grads = [p.grad for p in params]
        if wd:
            grads = torch._foreach_add(grads, params, alpha=wd)
        v = [st["square_avg"] for st in states]
        torch._foreach_mul_(v, alpha)
        torch._foreach_addcmul_(v, grads, grads, value=1 - alpha)
        rms = torch._foreach_add(v, eps)
        torch._foreach_sqrt_(rms)
        if mom > 0:
            buf = [st["momentum_buffer"] for st in states]
            torch._foreach_mul_(buf, mom)
            torch._foreach_addcdiv_(buf, grads, rms, value=lr)
            torch._foreach_sub_(params, buf)
        else:
            torch._foreach_addcdiv_(params, grads, rms, value=-lr)


def param_groups(model: nn.Module, weight_decay: float, *, decay_norm_and_bias: bool = False):
    """Two groups: weights with ``weight_decay``; BN/LayerNorm/GroupNorm params and biases without."""
    if decay_norm_and_bias or weight_decay == 0:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    norm_types = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
    no_decay_ids = set()
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            if isinstance(m, norm_types) or name == "bias" or p.ndim <= 1:
                no_decay_ids.add(id(p))
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if id(p) in no_decay_ids else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(name: str, groups, *, lr: float, momentum: float = 0.9, alpha: float = 0.9,
                    eps: float = 1e-3, nesterov: bool = False, foreach: bool | None = None):
    """``foreach``: multi-tensor updates (a few kernels per step instead of several per parameter);
    ``None``: on GPU parameters only (torch's rule)."""
    if name == "rmsproptf":
        return RMSpropTF(groups, lr=lr, alpha=alpha, eps=eps, momentum=momentum, foreach=foreach)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, foreach=foreach)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, foreach=foreach)
    raise ValueError(f"unknown optimizer {name!r}; expected 'rmsproptf', 'sgd' or 'adamw'")


class LRSchedule:
    """Per-step learning rate: linear warmup from ``warmup_lr``, then the decay rule.

    ``kind``: ``"step"`` (lr * rate ** floor(epoch / decay_epochs): the EfficientNet x0.97 every 2.4
    epochs and the ResNet x0.1 every 30), ``"exp"`` (the same without the staircase) or ``"cosine"``
    (to ``min_lr`` at the end). Epochs are fractional (``step / steps_per_epoch``); the decay clock
    starts after warmup. ``step()`` advances one optimizer step and writes the lr into the groups.
    """

    def __init__(self, optimizer, *, lr, steps_per_epoch, epochs, kind="step", warmup_epochs=0.0,
                 warmup_lr=1e-6, decay_rate=0.97, decay_epochs=2.4, min_lr=0.0):
        if kind not in ("step", "exp", "cosine", "constant"):
            raise ValueError(f"unknown lr schedule {kind!r}")
        self.optimizer, self.base_lr, self.spe, self.epochs = optimizer, lr, steps_per_epoch, epochs
        self.kind, self.warmup_epochs, self.warmup_lr = kind, warmup_epochs, warmup_lr
        self.decay_rate, self.decay_epochs, self.min_lr = decay_rate, decay_epochs, min_lr
        self.last_step = 0
        self._apply()

    def lr_at(self, step: int) -> float:
        e = step / self.spe
        if e < self.warmup_epochs:
            return self.warmup_lr + (self.base_lr - self.warmup_lr) * e / self.warmup_epochs
        t = e - self.warmup_epochs
        if self.kind == "step":
            return self.base_lr * self.decay_rate ** math.floor(t / self.decay_epochs)
        if self.kind == "exp":
            return self.base_lr * self.decay_rate ** (t / self.decay_epochs)
        if self.kind == "cosine":
            span = max(self.epochs - self.warmup_epochs, 1e-8)
            return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * min(t / span, 1.0)))
        return self.base_lr

    def _apply(self):
        lr = self.lr_at(self.last_step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr

    def step(self):
        self.last_step += 1
        self._apply()

    def get_last_lr(self):
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self):
        return {"last_step": self.last_step}

    def load_state_dict(self, state):
        self.last_step = int(state["last_step"])
        self._apply()


class ModelEMA:
    """Exponential moving average of a model's parameters and buffers (a deep copy, eval mode).

    ``ema = decay * ema + (1 - decay) * model`` after every optimizer step; integer buffers
    (BN's ``num_batches_tracked``) are copied. With ``warmup=True`` the effective decay is
    ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so short runs are not dominated by the
    random initialisation (the decay for a run of S steps should be about ``1 - 1/(S/10)`` or so).
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = False):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.warmup, self.updates = decay, warmup, 0

    def current_decay(self) -> float:
        if self.warmup:
            return min(self.decay, (1 + self.updates) / (10 + self.updates))
        return self.decay

    @torch.no_grad()
    def update(self, model: nn.Module):
        """``ema <- lerp(ema, model, 1 - decay)``: one multi-tensor lerp for the float tensors and one
        multi-tensor copy for the integer buffers -- a few kernels per step, no host sync. (The lists
        are rebuilt every call, as torch's optimizers do: host work only, and ``.to()`` may replace
        buffers.)"""
        d = self.current_decay()
        self.updates += 1
        ema_f, model_f, ema_i, model_i = [], [], [], []
        for e, m in zip(self._tensors(self.module), self._tensors(model)):
            if e.dtype.is_floating_point:
                ema_f.append(e)
                model_f.append(m)
            else:
                ema_i.append(e)
                model_i.append(m)
        if ema_f:
            torch._foreach_lerp_(ema_f, model_f, 1.0 - d)
        if ema_i:
            torch._foreach_copy_(ema_i, model_i)

    @staticmethod
    def _tensors(m):
        return list(m.parameters()) + list(m.buffers())

    def state_dict(self):
        return {"module": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state):
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
