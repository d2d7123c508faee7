"""GPU checks (``@pytest.mark.cuda``: skipped without CUDA; ``pytest -m cuda`` on a GPU node).

They check what the CPU tests cannot: a training step in bf16 autocast with channels_last on the GPU,
the multi-tensor optimizer and EMA on the GPU against the CPU reference, and that the tensor
pipeline and the training step never wait for the GPU (``torch.cuda.set_sync_debug_mode("error")``
turns every host synchronisation into an error).
"""
import contextlib
import copy

import pytest
import torch
from torch import nn

from rubik.data import DataConfig, TensorLoader
from rubik.optim import ModelEMA, RMSpropTF, param_groups

pytestmark = pytest.mark.cuda


@contextlib.contextmanager
def no_host_sync():
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def _tiny_model(num_classes=3):
    from rubik.models import create_model

    torch.manual_seed(0)
    return create_model("efficientnet_b0", num_classes, twist=(0.5, 0.3, 0.3), base_resolution=64)


def test_train_step_bf16_channels_last_on_cuda(tiny_imagefolder, cache_dir):
    from rubik.train import TrainConfig, train

    model = _tiny_model()
    seen = []
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))

    def record_dtype(module, inputs, output):   # returns None: a hook's return value replaces the output
        seen.append(output.dtype)

    conv.register_forward_hook(record_dtype)
    res = train(TrainConfig(data=DataConfig(root=str(tiny_imagefolder), pipeline="tensor", workers=0),
                            recipe={"name": "smoke", "epochs": 1}, device="cuda", progress=False), model=model)
    # the FLOP count runs a float32 forward on a CPU copy first (the copy keeps the hook); training and
    # evaluation on the GPU run under bf16 autocast
    assert torch.bfloat16 in seen and seen[-1] == torch.bfloat16   # autocast on
    assert conv.weight.is_cuda and conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert res["top1"] is not None and torch.isfinite(torch.tensor(res["history"][-1]["train_loss"]))


def _grads(model, steps, seed=1):
    """Per-step gradients of ``model`` (on CPU), so both optimizers see exactly the same ones."""
    torch.manual_seed(seed)
    out = []
    for _ in range(steps):
        out.append([torch.randn_like(p) * 1e-2 for p in model.parameters()])
    return out


@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_foreach_rmsproptf_on_cuda_matches_cpu_loop(momentum):
    cpu = _tiny_model()
    gpu = copy.deepcopy(cpu).cuda().to(memory_format=torch.channels_last)
    o_cpu = RMSpropTF(param_groups(cpu, 1e-2), lr=0.05, momentum=momentum, foreach=False)
    o_gpu = RMSpropTF(param_groups(gpu, 1e-2), lr=0.05, momentum=momentum)   # None -> multi-tensor on CUDA
    for step, gs in enumerate(_grads(cpu, 5)):
        for m, o in ((cpu, o_cpu), (gpu, o_gpu)):
            for p, g in zip(m.parameters(), gs):
                p.grad = g.to(p.device).contiguous(memory_format=torch.preserve_format)
            for group in o.param_groups:
                group["lr"] = 0.05 * (step + 1) / 5
            o.step()
    for a, b in zip(cpu.parameters(), gpu.parameters()):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-5, atol=1e-6)


def test_model_ema_on_cuda_matches_cpu():
    cpu = _tiny_model()
    gpu = copy.deepcopy(cpu).cuda()
    e_cpu, e_gpu = ModelEMA(cpu, 0.9, warmup=True), ModelEMA(gpu, 0.9, warmup=True)
    for gs in _grads(cpu, 4):
        with torch.no_grad():
            for m in (cpu, gpu):
                for p, g in zip(m.parameters(), gs):
                    p.add_(g.to(p.device))
        e_cpu.update(cpu)
        e_gpu.update(gpu)
    for (k, a), b in zip(e_cpu.module.state_dict().items(), e_gpu.module.state_dict().values()):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-5, atol=1e-6, msg=k)


def _loader(max_device_fraction=0.5, **kw):   # 32 px batches: _tiny_model's resolution
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (70, 3, 40, 40), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 3, (70,), generator=g)
    return TensorLoader(x, y, 16, image_size=32, train=True, device="cuda", seed=1, color_jitter=0.4,
                        max_device_fraction=max_device_fraction, **kw)


def test_tensor_loader_on_cuda_keeps_the_cache_and_never_syncs():
    ld = _loader()
    assert ld.x.is_cuda and ld.cache_on_device        # the uint8 cache lives on the GPU for the run
    with no_host_sync():
        batches = list(ld)
    assert len(batches) == 4
    assert all(x.is_cuda and y.is_cuda and x.is_contiguous(memory_format=torch.channels_last) for x, y in batches)
    # a cache too large for the GPU stays in pinned host memory: same batches, still no sync
    pinned = _loader(max_device_fraction=0.0)
    assert not pinned.x.is_cuda and pinned.x.is_pinned() and not pinned.cache_on_device
    with no_host_sync():
        batches2 = list(pinned)
    for (a, ya), (b, yb) in zip(batches, batches2):
        assert torch.equal(a, b) and torch.equal(ya, yb)
    # the augmentation draws match the CPU loader's
    cpu = TensorLoader(ld.x.cpu(), ld.y.cpu(), 16, image_size=32, train=True, seed=1, color_jitter=0.4)
    for (a, _), (b, _) in zip(batches, cpu):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-3)


def test_training_step_on_cuda_never_syncs():
    """forward (bf16 autocast) + backward + multi-tensor RMSProp + EMA + grad clipping: no host sync."""
    model = _tiny_model().cuda().to(memory_format=torch.channels_last).train()
    opt = RMSpropTF(param_groups(model, 1e-5), lr=1e-3)
    ema = ModelEMA(model, 0.99, warmup=True)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    ld = _loader()
    loss_sum = torch.zeros((), device="cuda")
    for i, (x, y) in enumerate(ld):
        ctx = no_host_sync() if i > 0 else contextlib.nullcontext()   # the first step warms up cuDNN
        with ctx:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = crit(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0, foreach=True)
            opt.step()
            ema.update(model)
            loss_sum += loss.detach()
    assert torch.isfinite(loss_sum).item()


@pytest.mark.slow
def test_train_compiled_reduce_overhead_on_cuda(tiny_imagefolder, cache_dir):
    """``compile="reduce-overhead"`` (CUDA graphs) trains; ``first_step_s`` holds the compile time."""
    from rubik.train import TrainConfig, train

    res = train(TrainConfig(data=DataConfig(root=str(tiny_imagefolder), pipeline="tensor", workers=0),
                            recipe={"name": "smoke", "epochs": 2, "batch_size": 8}, device="cuda", progress=False,
                            compile="reduce-overhead"), model=_tiny_model())
    assert res["first_step_s"] > 0 and res["top1"] is not None
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in res["history"])
