"""Our FLOPs and params of the SPConv paper's CIFAR-10 models against its table (no training, ~20 s).

    PYTHONPATH=. .venv/bin/python benchmarks/spconv_counts.py

For every row of ``data/paper/spconv_cifar10.csv`` (10 classes, 32 px) it prints the analytic count
(``Arch.flops`` / ``Arch.params``), checks it against ptflops' conv + linear count of the built module
(``rubik.flops.count_flops``: they must be equal), and gives the gap to the paper in %. Two more
columns help explain gaps: ptflops counting *every* module it knows (BatchNorm, ReLU, pooling too),
and the SPConv fusion's elementwise operations that the MAC convention leaves out
(``rubik.models.spconv.fusion_ops``). The target is a 2 % gap, as for the cube's models.
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def ptflops_all_modules(model, resolution: int) -> int:
    """ptflops' default count (convolutions, linear, BatchNorm, activations, pooling), for comparison."""
    from ptflops import get_model_complexity_info

    with torch.no_grad():
        macs, _ = get_model_complexity_info(model, (3, resolution, resolution), print_per_layer_stat=False,
                                            as_strings=False, ost=io.StringIO(), backend="pytorch",
                                            backend_specific_config={"count_functional": False})
    return int(macs)


def fusion_ops_of(model) -> int:
    """The fusion operations of every SPConv in ``model`` (a forward hook reads each output's size)."""
    from rubik.models.spconv import SPConv2d, fusion_ops

    total, hooks = [0], []
    for m in model.modules():
        if isinstance(m, SPConv2d):
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out: total.__setitem__(0, total[0] + fusion_ops(out.shape[1], out.shape[2], mod.spec))))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, model.resolution, model.resolution))
    for h in hooks:
        h.remove()
    return total[0]


def rows():
    with open(ROOT / "data" / "paper" / "spconv_cifar10.csv", newline="") as f:
        yield from csv.DictReader(f)


def main() -> int:
    from rubik.flops import count_flops, count_params
    from rubik.models import create_model

    header = (f"{'model':<20} {'flops_m':>9} {'paper':>8} {'gap_%':>7} {'params_m':>9} {'paper':>6} {'gap_%':>7} "
              f"{'ptflops_all_m':>13} {'fusion_ops_m':>12}")
    print(header)
    ok = True
    for row in rows():
        model = create_model(row["name"], num_classes=10)
        arch = model.arch
        flops, params = arch.flops(10), arch.params(10)
        ok &= flops == count_flops(model) and params == count_params(model)
        pf, pp = float(row["flops_m"]), float(row["params_m"])
        print(f"{row['name']:<20} {flops / 1e6:9.2f} {pf:8.2f} {100 * (flops / 1e6 / pf - 1):+7.1f} "
              f"{params / 1e6:9.4f} {pp:6.2f} {100 * (params / 1e6 / pp - 1):+7.1f} "
              f"{ptflops_all_modules(model, arch.input_size) / 1e6:13.2f} {fusion_ops_of(model) / 1e6:12.2f}")
    print("analytic == ptflops conv+linear on every row:", ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
