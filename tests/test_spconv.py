"""SPConv (issue 24): the layer, the swap into ResNet/VGG, the CIFAR-style models, counts and errors."""
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from rubik.errors import ConfigError
from rubik.flops import count_flops, count_params
from rubik.models import Arch, create_model, list_models
from rubik.models.spconv import ConvSpec, SPConv2d

NEW_MODELS = ["resnet20", "resnet56", "vgg16_cifar", "spconv_resnet20", "spconv_resnet56", "spconv_vgg16_cifar",
              "spconv_resnet50"]


@pytest.mark.parametrize("stride,size,out", [(1, 16, 16), (2, 16, 8), (1, 15, 15), (2, 15, 8), (2, 7, 4)])
@pytest.mark.parametrize("alpha", [0.5, 0.25, 1.0])
def test_shapes_and_strides(stride, size, out, alpha):
    layer = SPConv2d(16, 24, stride=stride, alpha=alpha)
    y = layer(torch.randn(2, 16, size, size))
    assert y.shape == (2, 24, out, out)
    # same output side as the dense 3x3 it replaces
    assert torch.nn.Conv2d(16, 24, 3, stride, 1)(torch.randn(1, 16, size, size)).shape[-1] == out


def test_fusion_weights_sum_to_one_per_channel_and_weight_the_output():
    torch.manual_seed(0)
    layer = SPConv2d(16, 8, stride=2, alpha=0.5).train()
    x = torch.randn(3, 16, 10, 10)
    rep, redundant = layer.paths(x)
    w = layer.fusion_weights(rep, redundant)
    assert w.shape == (3, 8, 2)
    assert torch.allclose(w.sum(dim=2), torch.ones(3, 8))
    assert (w > 0).all()
    expected = rep * w[:, :, 0, None, None] + redundant * w[:, :, 1, None, None]
    assert torch.allclose(layer(x), expected, atol=1e-6)
    # parameter-free: only the three convolutions and two BatchNorms carry parameters
    names = {n.split(".")[0] for n, _ in layer.named_parameters()}
    assert names == {"gwc", "pwc", "bn_rep", "pw_redundant", "bn_redundant"}


@pytest.mark.parametrize("stride", [1, 2])
def test_alpha_one_is_groupwise_plus_pointwise(stride):
    torch.manual_seed(0)
    layer = SPConv2d(8, 8, stride=stride, alpha=1.0).eval()
    assert layer.pw_redundant is None and layer.in_redundant == 0
    x = torch.randn(2, 8, 9, 9)
    gwc = F.conv2d(x, layer.gwc.weight, stride=stride, padding=1, groups=2)
    xp = x if stride == 1 else F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)
    pwc = F.conv2d(xp, layer.pwc.weight)
    assert torch.allclose(layer(x), layer.bn_rep(gwc + pwc), atol=1e-6)


@pytest.mark.parametrize("name", NEW_MODELS)
def test_analytic_counts_equal_ptflops_on_every_new_model(name):
    m = create_model(name, num_classes=10)
    assert m.arch.flops(10) == count_flops(m)
    assert m.arch.params(10) == count_params(m)
    assert m(torch.randn(2, 3, m.resolution, m.resolution)).shape == (2, 10)


@pytest.mark.parametrize("base,twist,alpha", [("resnet20", (0.75, 1.4, 0.5), 0.5), ("resnet20", (1.0, 0.5, 1.5), 0.25),
                                              ("vgg16_cifar", (0.8, 0.6, 0.25), 0.5), ("resnet50", (0.3, 0.4, 0.25), 0.5)])
def test_analytic_counts_equal_ptflops_on_twisted_and_swapped(base, twist, alpha):
    m = create_model(base, num_classes=7, twist=twist, conv="spconv", alpha=alpha)
    assert m.arch.flops(7) == count_flops(m)
    assert m.arch.params(7) == count_params(m)


def test_swap_reaches_every_dense_3x3_but_the_stem():
    for name in ("spconv_resnet20", "spconv_vgg16_cifar", "spconv_resnet50"):
        m = create_model(name, num_classes=10)
        inner = {id(c) for s in m.modules() if isinstance(s, SPConv2d) for c in s.modules()}
        dense3 = [n for n, c in m.named_modules()
                  if isinstance(c, torch.nn.Conv2d) and c.kernel_size == (3, 3) and c.groups == 1 and id(c) not in inner]
        assert all(c.in_channels == 3 for n, c in m.named_modules() if n in dense3), dense3
        assert len([s for s in m.modules() if isinstance(s, SPConv2d)]) > 0


def test_registry_and_arch_round_trip():
    assert set(NEW_MODELS) <= set(list_models())
    assert create_model("resnet56", 10).arch.repeats == (9, 9, 9)
    a = Arch.named("spconv_resnet20")
    assert a.conv == ConvSpec("spconv", 0.5, 2) and a.input_size == 32
    assert Arch.from_dict(a.to_dict()) == a
    assert "conv" not in Arch.named("resnet20").to_dict()          # dense records keep their four keys
    assert create_model("resnet20", 10, alpha=0.25).arch.conv.alpha == 0.25
    assert create_model("spconv_resnet20", 10, conv="dense").arch.conv.dense
    # alpha = 1/2 keeps well under half the FLOPs
    assert Arch.named("spconv_resnet20").flops(10) < 0.4 * Arch.named("resnet20").flops(10)


@pytest.mark.parametrize("kwargs,match", [
    ({"alpha": 0.0}, "alpha must be a number in"),
    ({"alpha": 1.5}, "alpha must be a number in"),
    ({"alpha": float("nan")}, "alpha must be a number in"),
    ({"alpha": 0.3}, "cannot split 16 input channels"),
    ({"conv": {"kind": "spconv", "alpha": 0.125, "groups": 4}}, "groups=4 must divide"),
    ({"conv": "octave"}, "unknown conv"),
])
def test_bad_alpha_or_unsplittable_channels_is_one_line_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match) as e:
        create_model("resnet20", num_classes=10, **kwargs)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["efficientnet_b0", "tinynet_e", "ghostnet_100"])
def test_families_without_dense_3x3_refuse_spconv(name):
    with pytest.raises(ConfigError, match="no dense 3x3") as e:
        create_model(name, conv="spconv")
    assert "\n" not in str(e.value)


def test_cli_errors_are_one_line_with_status_2(tmp_path):
    for args in (["--model", "resnet20", "--alpha", "0.3"], ["--model", "tinynet_e", "--conv", "spconv"]):
        p = subprocess.run([sys.executable, "-m", "rubik", "train", *args, "--data", str(tmp_path)],
                           capture_output=True, text=True)
        assert p.returncode == 2, p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rubik train: error: "), p.stderr


def test_every_path_learns():
    torch.manual_seed(0)
    m = create_model("spconv_resnet20", num_classes=10).train()
    F.cross_entropy(m(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3])).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
