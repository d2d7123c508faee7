"""Host-side work per training step, counted on CPU: aten ops of the tensor pipeline and of the model step.

A small model on a GPU is launch-bound: the step costs (kernels launched) x (a few microseconds of host
work each), not FLOPs. This script counts, with ``torch.profiler`` on the CPU, the aten ops of

* one batch of the tensor pipeline (``TensorLoader``), for this checkout and for ``--baseline REV``'s
  ``rubik/data.py`` (loaded from git, so both are measured side by side in one run, on the same cache;
  their batches are checked to be bit-identical; ``REV`` must predate issue 23, which split that file into
  the package ``rubik/data/``);
* one training step of ``rubik.train`` (forward, label-smoothed loss, backward, TF-RMSProp, EMA, lr
  schedule, the on-device loss sum), split into its parts, with the multi-tensor (``foreach``, what CUDA
  uses) and the per-parameter optimizer.

"compute ops" are the leaf aten ops that do work (views, ``empty`` and other metadata-only ops left out):
about the kernels a GPU would launch (a cuDNN convolution can be a few kernels, a fused one fewer).
The numbers are counts, not timings, so they do not depend on the machine's load.

    PYTHONPATH=. .venv/bin/python benchmarks/step_ops.py                    # the study's setting, ~20 s
    PYTHONPATH=. .venv/bin/python benchmarks/step_ops.py --color-jitter 0.4 --baseline 2a2d687
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("KINETO_LOG_LEVEL", "5")   # the CPU profiler's start/stop chatter on stderr

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# aten ops that launch no kernel on a GPU (views, allocation, metadata)
NO_KERNEL = {
    "aten::view", "aten::as_strided", "aten::t", "aten::transpose", "aten::expand", "aten::unsqueeze",
    "aten::squeeze", "aten::permute", "aten::slice", "aten::select", "aten::alias", "aten::detach",
    "aten::detach_", "aten::_reshape_alias", "aten::reshape", "aten::empty", "aten::empty_strided",
    "aten::empty_like", "aten::resize_", "aten::unbind", "aten::split", "aten::chunk", "aten::narrow",
    "aten::lift_fresh", "aten::result_type", "aten::_unsafe_view", "aten::set_", "aten::flatten",
    "aten::contiguous", "aten::to", "aten::_to_copy", "aten::expand_as", "aten::view_as", "aten::numpy_T",
    "aten::_has_compatible_shallow_copy_type", "aten::is_same_size", "aten::zeros_like", "aten::ones_like",
    "aten::dim", "aten::size", "aten::stride", "aten::item", "aten::_local_scalar_dense",
}


def count_ops(fn, repeat: int = 1) -> dict:
    """``{"aten": top-level aten ops, "compute": leaf ops that do work, "top": most frequent compute ops}``
    per call of ``fn`` (averaged over ``repeat`` calls)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(repeat):
            fn()
    events = [e for e in prof.events() if e.name.startswith("aten::")]

    def inside_foreach(e):
        while (e := e.cpu_parent) is not None:
            if e.name.startswith("aten::_foreach_"):
                return True
        return False

    top_level = [e for e in events if not (e.cpu_parent is not None and e.cpu_parent.name.startswith("aten::"))]
    # a multi-tensor op is one (chunked) kernel launch on CUDA; on CPU it loops over per-tensor ops: count it once
    leaves = [e for e in events if not inside_foreach(e)
              and (e.name.startswith("aten::_foreach_") or not any(c.name.startswith("aten::") for c in e.cpu_children))]
    compute = Counter(e.name for e in leaves if e.name not in NO_KERNEL)
    # zeros_like/ones_like/_to_copy are leaves only when they really fill or copy: count those
    compute.update(e.name for e in leaves if e.name in ("aten::zeros_like", "aten::ones_like", "aten::_to_copy"))
    return {"aten": len(top_level) / repeat, "compute": sum(compute.values()) / repeat,
            "top": {k: v / repeat for k, v in compute.most_common(6)}}


def data_module_at(rev: str):
    """``rubik/data.py`` as it was at git revision ``rev``, imported as a separate module (``rev`` from before
    issue 23, which split it into the package ``rubik/data/``)."""
    done = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:rubik/data.py"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"--baseline {rev}: no rubik/data.py at that revision (since issue 23 rubik.data is a "
                         "package, rubik/data/): pick an older revision")
    src = done.stdout
    spec = importlib.util.spec_from_loader(f"rubik_data_{rev}", loader=None)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    exec(compile(src, f"rubik/data.py@{rev}", "exec"), mod.__dict__)
    return mod


def pipeline_ops(mod, x, y, args) -> tuple[dict, list]:
    """Ops per batch of an epoch: all of them, and those of the epoch's host-side draws (``epoch_plan``:
    CPU tensors, no GPU kernels) apart; their difference is what a GPU runs per batch."""
    ld = mod.TensorLoader(x, y, args.batch_size, image_size=args.image_size, train=True, seed=1,
                          color_jitter=args.color_jitter, scale=(0.25, 1.0))
    batches = list(ld)                                    # the batches (and a warm-up)
    n = len(ld)
    epoch, plan = count_ops(lambda: list(ld)), count_ops(ld.epoch_plan)
    return {"aten": epoch["aten"] / n, "compute": epoch["compute"] / n, "plan_compute": plan["compute"] / n,
            "device_compute": (epoch["compute"] - plan["compute"]) / n}, batches


def step_parts(args, foreach: bool) -> dict:
    from rubik.models import create_model
    from rubik.optim import LRSchedule, ModelEMA, RMSpropTF, param_groups

    torch.manual_seed(0)
    model = create_model(args.model, 10, twist=tuple(args.twist), base_resolution=args.base_resolution)
    model.to(memory_format=torch.channels_last).train()
    opt = RMSpropTF(param_groups(model, 1e-5), lr=1e-3, alpha=0.9, eps=1e-3, momentum=0.9, foreach=foreach)
    sched = LRSchedule(opt, lr=1e-3, steps_per_epoch=100, epochs=10, kind="cosine", warmup_epochs=1.0)
    ema = ModelEMA(model, 0.999, warmup=True)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    res = model.resolution
    x = torch.randn(args.batch_size, 3, res, res).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch_size,))
    loss_sum = torch.zeros(())
    state = {}

    def forward():
        state["loss"] = crit(model(x), y)

    def backward():
        opt.zero_grad(set_to_none=True)
        state["loss"].backward()

    def update():
        opt.step()
        sched.step()
        ema.update(model)
        loss_sum.add_(state["loss"].detach())

    for _ in range(2):   # warm-up: optimizer state exists
        forward(), backward(), update()
    out = {"resolution": res, "params": sum(1 for _ in model.parameters())}
    for name, fn in (("forward", forward), ("backward", backward), ("optimizer+EMA", update)):
        if name == "backward":
            forward()
        out[name] = count_ops(fn)
        if name == "forward":
            backward(), update()
        elif name == "backward":
            update()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="efficientnet_b0")
    p.add_argument("--twist", type=float, nargs=3, default=[0.8, 0.369, 0.7126],
                   help="r d w (default: a c ~ 0.25 study trial, 51 px at base 64)")
    p.add_argument("--base-resolution", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--color-jitter", type=float, default=0.0, help="0 as the proxy recipe; 0.4 as 'efficientnet'")
    p.add_argument("--images", type=int, default=512, help="images in the synthetic uint8 cache")
    p.add_argument("--baseline", default="2a2d687",
                   help="git revision (before issue 23) whose rubik/data.py is the 'before' column")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    from rubik.models import create_model
    import rubik.data as now

    args.image_size = create_model(args.model, 10, twist=tuple(args.twist), base_resolution=args.base_resolution).resolution
    store = int(args.image_size / now.CROP_PCT)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (args.images, 3, store, store), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (args.images,), generator=g)
    before, b_batches = pipeline_ops(data_module_at(args.baseline), x, y, args)
    after, a_batches = pipeline_ops(now, x, y, args)
    same = all(torch.equal(a, b) and torch.equal(ya, yb) for (a, ya), (b, yb) in zip(a_batches, b_batches))
    print(f"tensor pipeline, per batch of {args.batch_size} at {args.image_size} px (cache {store} px, "
          f"colour jitter {args.color_jitter}); batches bit-identical: {'yes' if same else 'NO'}")
    print(f"{'':<22}{'before (' + args.baseline + ')':>18}{'now':>10}")
    for k, what in (("aten", "aten ops"), ("compute", "compute ops"), ("plan_compute", "  of them host draws"),
                    ("device_compute", "  of them per batch")):
        print(f"{what:<22}{before[k]:>18.1f}{after[k]:>10.1f}")

    loop, multi = step_parts(args, foreach=False), step_parts(args, foreach=True)
    print(f"\ntraining step, {args.model} twist {tuple(args.twist)} at {loop['resolution']} px, batch "
          f"{args.batch_size}, {loop['params']} parameter tensors (compute ops ~ GPU kernels)")
    print(f"{'part':<16}{'loop optimizer':>16}{'foreach (CUDA)':>16}")
    tot = {False: 0.0, True: 0.0}
    for part in ("forward", "backward", "optimizer+EMA"):
        print(f"{part:<16}{loop[part]['compute']:>16.0f}{multi[part]['compute']:>16.0f}")
        tot[False] += loop[part]["compute"]
        tot[True] += multi[part]["compute"]
    print(f"{'step':<16}{tot[False]:>16.0f}{tot[True]:>16.0f}")
    dev = after["device_compute"]
    print(f"{'+ data batch':<16}{tot[False] + dev:>16.0f}{tot[True] + dev:>16.0f}"
          f"   (data pipeline: {dev / (tot[True] + dev):.1%} of the foreach step's ops)")
    print(f"  backward, most frequent: {multi['backward']['top']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "pipeline_before": before, "pipeline_now": after,
                                               "identical": same, "step_loop": loop, "step_foreach": multi},
                                              indent=1, default=str))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
