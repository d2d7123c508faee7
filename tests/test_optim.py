import copy
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


def _twin_models(seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8),
                      nn.Flatten(), nn.LazyLinear(4))
    m(torch.randn(2, 3, 8, 8))
    m = m.to(memory_format=torch.channels_last)
    return m, copy.deepcopy(m)


@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_rmsproptf_foreach_equals_per_parameter_loop(momentum):
    """The multi-tensor step gives bitwise the parameters (and state) of the per-parameter loop on CPU:
    two groups (with and without weight decay), a changing lr, channels_last weights, 6 steps."""
    a, b = _twin_models()
    opts = [RMSpropTF(param_groups(m, 1e-2), lr=0.05, alpha=0.9, eps=1e-3, momentum=momentum, foreach=fe)
            for m, fe in ((a, True), (b, False))]
    torch.manual_seed(1)
    for step in range(6):
        x = torch.randn(4, 3, 8, 8).contiguous(memory_format=torch.channels_last)
        for m, opt in zip((a, b), opts):
            for g in opt.param_groups:
                g["lr"] = 0.05 * (step + 1) / 6
            opt.zero_grad(set_to_none=True)
            m(x).square().mean().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
        sa, sb = opts[0].state[pa], opts[1].state[pb]
        assert sa.keys() == sb.keys() and sa["step"] == sb["step"] == 6
        assert all(torch.equal(sa[k], sb[k]) for k in sa if k != "step")
    assert not torch.equal(a[0].weight, _twin_models()[0][0].weight)   # it did move


def test_rmsproptf_foreach_skips_params_without_grad_and_loads_loop_state():
    a, b = _twin_models()
    oa = RMSpropTF(a.parameters(), lr=0.1, weight_decay=1e-3, foreach=False)
    ob = RMSpropTF(b.parameters(), lr=0.1, weight_decay=1e-3, foreach=True)
    x = torch.randn(2, 3, 8, 8)
    for m, o in ((a, oa), (b, ob)):
        m(x).sum().backward()
        m[5].bias.grad = None      # a parameter without a gradient is left alone
        o.step()
    assert "square_avg" not in ob.state[b[5].bias]
    ob.load_state_dict(copy.deepcopy(oa.state_dict()))   # a checkpoint of either kind resumes in the other
    for m, o in ((a, oa), (b, ob)):
        o.zero_grad()
        m(torch.ones(2, 3, 8, 8)).sum().backward()
        o.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_model_ema_equals_per_tensor_reference():
    """ModelEMA.update (multi-tensor lerp + copy) vs the per-tensor rule, bitwise, over several steps."""
    m, _ = _twin_models()
    ema = ModelEMA(m, decay=0.8, warmup=True)
    ref = copy.deepcopy(m)
    torch.manual_seed(2)
    for n in range(5):
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p))
        m.train()(torch.randn(4, 3, 8, 8))   # moves BN statistics and num_batches_tracked
        d = min(0.8, (1 + n) / (10 + n))
        ema.update(m)
        with torch.no_grad():
            for e, x in zip(list(ref.parameters()) + list(ref.buffers()), list(m.parameters()) + list(m.buffers())):
                e.lerp_(x, 1 - d) if e.dtype.is_floating_point else e.copy_(x)
    for e, r in zip(ema.module.state_dict().values(), ref.state_dict().values()):
        assert torch.equal(e, r)
    assert ema.module[1].num_batches_tracked.item() == 1 + 5   # the LazyLinear init forward + 5 steps
