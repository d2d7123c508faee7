import math

import numpy as np
import pytest
import torch
from torch import nn

from rubik.optim import LRSchedule, ModelEMA, RMSpropTF, param_groups


def tf_rmsprop_reference(p0, grads, lrs, rho=0.9, mom=0.9, eps=1e-3, wd=0.0):
    """TensorFlow's RMSProp, written out in NumPy float64 (v starts at 1, eps inside the sqrt, lr in momentum)."""
    p = np.array(p0, dtype=np.float64)
    v = np.ones_like(p)
    m = np.zeros_like(p)
    for g, lr in zip(grads, lrs):
        g = np.asarray(g, dtype=np.float64) + wd * p
        v = rho * v + (1 - rho) * g * g
        m = mom * m + lr * g / np.sqrt(v + eps)
        p = p - m
    return p


def run_torch_opt(opt_cls, p0, grads, lrs, **kw):
    p = nn.Parameter(torch.tensor(p0, dtype=torch.float64))
    opt = opt_cls([p], lr=lrs[0], **kw)
    for g, lr in zip(grads, lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return p.detach().numpy()


@pytest.fixture()
def problem():
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=6)
    # small gradients (the regime where eps matters) and a few large ones
    grads = [rng.normal(size=6) * s for s in (1e-3, 1e-2, 3e-3, 1.0, 2e-2, 1e-3, 5e-3, 1e-2)]
    lrs = [0.01, 0.01, 0.02, 0.02, 0.005, 0.005, 0.01, 0.001]   # a changing lr: lr-in-momentum matters
    return p0, grads, lrs


def test_rmsproptf_matches_tensorflow_reference(problem):
    p0, grads, lrs = problem
    ours = run_torch_opt(RMSpropTF, p0, grads, lrs, alpha=0.9, eps=1e-3, momentum=0.9, weight_decay=1e-2)
    ref = tf_rmsprop_reference(p0, grads, lrs, wd=1e-2)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_rmsproptf_first_step_value():
    # v0 = 1: after one step v = 0.9 + 0.1 g^2, m = lr g / sqrt(v + eps), p -= m
    g, lr = 0.5, 0.1
    out = run_torch_opt(RMSpropTF, [0.0], [[g]], [lr], alpha=0.9, eps=1e-3, momentum=0.9)
    assert out[0] == pytest.approx(-lr * g / math.sqrt(0.9 + 0.1 * g * g + 1e-3), rel=1e-12)


def test_rmsproptf_differs_from_torch_rmsprop(problem):
    p0, grads, lrs = problem
    ref = tf_rmsprop_reference(p0, grads, lrs)
    torch_out = run_torch_opt(torch.optim.RMSprop, p0, grads, lrs, alpha=0.9, eps=1e-3, momentum=0.9)
    ours = run_torch_opt(RMSpropTF, p0, grads, lrs, alpha=0.9, eps=1e-3, momentum=0.9)
    # torch's first step is ~ lr * g / (sqrt(0.1 g^2) + eps): sign-like and far larger for small g
    step_torch = np.abs(run_torch_opt(torch.optim.RMSprop, p0, grads[:1], lrs[:1], alpha=0.9, eps=1e-3,
                                      momentum=0.9) - p0)
    step_tf = np.abs(run_torch_opt(RMSpropTF, p0, grads[:1], lrs[:1], alpha=0.9, eps=1e-3, momentum=0.9) - p0)
    assert np.all(step_torch > 10 * step_tf)
    assert np.max(np.abs(torch_out - ref)) > 1e-3
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_rmsproptf_matches_timm(problem):
    timm_optim = pytest.importorskip("timm.optim")
    p0, grads, lrs = problem
    ours = run_torch_opt(RMSpropTF, p0, grads, lrs, alpha=0.9, eps=1e-3, momentum=0.9, weight_decay=1e-2)
    theirs = run_torch_opt(timm_optim.RMSpropTF, p0, grads, lrs, alpha=0.9, eps=1e-3, momentum=0.9,
                           weight_decay=1e-2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_param_groups_no_decay_on_bn_and_bias():
    m = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, no_decay = param_groups(m, 1e-5)
    assert decay["weight_decay"] == 1e-5 and no_decay["weight_decay"] == 0.0
    ids = lambda ps: {id(p) for p in ps}
    assert ids(decay["params"]) == {id(m[0].weight), id(m[3].weight)}
    assert ids(no_decay["params"]) == {id(m[1].weight), id(m[1].bias), id(m[3].bias)}


def test_lr_schedule_efficientnet_warmup_and_staircase():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    s = LRSchedule(opt, lr=0.048, steps_per_epoch=10, epochs=450, kind="step", warmup_epochs=3,
                   warmup_lr=1e-6, decay_rate=0.97, decay_epochs=2.4)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-6)
    assert s.lr_at(15) == pytest.approx(1e-6 + (0.048 - 1e-6) * 0.5)
    assert s.lr_at(30) == pytest.approx(0.048)
    assert s.lr_at(30 + 23) == pytest.approx(0.048)            # 2.3 epochs after warmup: no decay yet
    assert s.lr_at(30 + 24) == pytest.approx(0.048 * 0.97)     # 2.4 epochs: one step
    assert s.lr_at(30 + 240) == pytest.approx(0.048 * 0.97 ** 10)   # 24 epochs: ten steps
    for _ in range(15):
        s.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(s.lr_at(15))
    state = s.state_dict()
    s2 = LRSchedule(opt, lr=0.048, steps_per_epoch=10, epochs=450, warmup_epochs=3)
    s2.load_state_dict(state)
    assert opt.param_groups[0]["lr"] == pytest.approx(s.lr_at(15))


def test_lr_schedule_cosine_ends_at_min_lr():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    s = LRSchedule(opt, lr=0.1, steps_per_epoch=10, epochs=5, kind="cosine", warmup_epochs=1, min_lr=0.0)
    assert s.lr_at(10) == pytest.approx(0.1)
    assert s.lr_at(30) == pytest.approx(0.05)
    assert s.lr_at(50) == pytest.approx(0.0, abs=1e-12)


def test_model_ema_update():
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEMA(m, decay=0.9)
    w0 = m[0].weight.detach().clone()
    with torch.no_grad():
        m[0].weight.add_(1.0)
        m[1].num_batches_tracked.fill_(7)
    ema.update(m)
    torch.testing.assert_close(ema.module[0].weight, w0 + 0.1)
    assert ema.module[1].num_batches_tracked.item() == 7
    assert not ema.module[0].weight.requires_grad
    # warmup: the first update uses decay min(0.9, 1/10) = 0.1 -> mostly the model
    ema2 = ModelEMA(m, decay=0.9, warmup=True)
    with torch.no_grad():
        m[0].weight.add_(1.0)
    ema2.update(m)
    torch.testing.assert_close(ema2.module[0].weight, m[0].weight - 0.1)
