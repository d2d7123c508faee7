"""FLOPs/params: ptflops count vs analytic count vs the paper; flops_ratio; solve_width."""
import random

import pytest
import torch

from rubik.flops import analytic_flops, analytic_params, count_flops, count_params, flops_ratio, solve_width
from rubik.models import create_model, get_model_spec, list_models
from rubik.models.efficientnet import efficientnet_plan

# Paper FLOPs (data/paper/models.csv: the paper and appendix Table 1), millions of MACs
PAPER_FLOPS_M = {"efficientnet_b0": 387, "tinynet_a": 339, "tinynet_b": 202, "tinynet_c": 100, "tinynet_d": 52,
                 "tinynet_e": 24, "ghostnet_100": 141, "ghostnet_a": 591}


@pytest.mark.parametrize("name", list_models())
def test_analytic_equals_ptflops_on_registered_models(name):
    m = create_model(name)
    measured = count_flops(m)
    assert analytic_flops(name) == pytest.approx(measured, rel=0.005)
    assert analytic_params(name) == count_params(m)


@pytest.mark.parametrize("name", sorted(PAPER_FLOPS_M))
def test_flops_within_2_percent_of_paper(name):
    assert analytic_flops(name) / 1e6 == pytest.approx(PAPER_FLOPS_M[name], rel=0.02)


def test_ghostnet_a_params_within_2_percent_of_paper():
    assert analytic_params("ghostnet_a") / 1e6 == pytest.approx(11.9, rel=0.02)


def test_analytic_equals_ptflops_on_random_twists():
    rng = random.Random(0)
    cases = [("efficientnet_b0", None), ("efficientnet_b0", "efficientnet"), ("ghostnet_a", None),
             ("ghostnet_100", None), ("resnet50", None), ("resnet26", None)]
    for base, rules in cases:
        for _ in range(2):
            twist = (rng.uniform(0.6, 1.4), rng.uniform(0.3, 1.5), rng.uniform(0.3, 1.0))
            m = create_model(base, num_classes=10, twist=twist, rules=rules, base_resolution=64)
            kw = dict(num_classes=10, base_resolution=64, rules=rules)
            assert analytic_flops(base, twist, **kw) == count_flops(m), (base, twist)
            assert analytic_params(base, twist, num_classes=10, rules=rules) == count_params(m), (base, twist)


def test_count_flops_leaves_model_alone():
    m = create_model("tinynet_e", num_classes=3).train()
    before = {name: set(mod.__dict__) for name, mod in m.named_modules()}
    count_flops(m, resolution=64)
    assert m.training
    assert {name: set(mod.__dict__) for name, mod in m.named_modules()} == before
    assert count_flops(m, 64) < count_flops(m)  # default: model.resolution (106)
    with pytest.raises(ValueError):
        count_flops(torch.nn.Conv2d(3, 3, 1))


def test_flops_ratio_and_proxy_resolution():
    assert flops_ratio("efficientnet_b0", (1, 1, 1)) == 1.0
    ratio = flops_ratio("efficientnet_b0", (0.475, 0.6, 0.51))
    assert ratio == pytest.approx(analytic_flops("tinynet_e") / analytic_flops("efficientnet_b0"))
    assert flops_ratio("tinynet_e", None) == pytest.approx(ratio)
    # proxy runs scale r from 64 px: resolution int(64 r) for both the model and its base
    f64 = analytic_flops("efficientnet_b0", (0.75, 1, 1), base_resolution=64)
    assert f64 == count_flops(create_model("efficientnet_b0", twist=(0.75, 1, 1), base_resolution=64))
    assert 0 < flops_ratio("efficientnet_b0", (0.75, 1, 1), base_resolution=64) < 1
    # monotone in every dial
    for t in [(1.1, 1, 1), (1, 1.5, 1), (1, 1, 1.2)]:
        assert flops_ratio("efficientnet_b0", t) > 1
    with pytest.raises(ValueError, match="unknown"):
        analytic_flops("vgg16", (1, 1, 1))


# TinyNet-B..E: r, d, paper FLOPs, released width
RELEASED = {"tinynet_b": (0.84, 1.1, 202e6, 0.75), "tinynet_c": (0.825, 0.85, 100e6, 0.54),
            "tinynet_d": (0.68, 0.695, 52e6, 0.54), "tinynet_e": (0.475, 0.6, 24e6, 0.51)}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_solve_width_reproduces_released_channels(name):
    """C and D: identical channels. B and E: identical except the last (320-channel) stage, one
    8-channel step wider (B 248 vs 240) / narrower (E 152 vs 160): that step moves FLOPs by only
    0.6M / 0.24M, less than the 1M rounding of the paper's figures, and the FLOPs-closest
    architecture to the rounded target is the neighbour (see solve_width's docstring)."""
    r, d, target, w_released = RELEASED[name]
    w = solve_width("efficientnet_b0", r, d, target)
    solved = efficientnet_plan((r, d, w))
    released = efficientnet_plan((r, d, w_released))
    assert solved.repeats == released.repeats
    f_solved = analytic_flops("efficientnet_b0", (r, d, w))
    assert f_solved == pytest.approx(target, rel=0.01)
    if name in ("tinynet_c", "tinynet_d"):
        assert solved == released
        assert abs(w - w_released) < 0.01
    else:
        assert solved.channels[:-1] == released.channels[:-1]
        assert abs(solved.channels[-1] - released.channels[-1]) == 8
        f_released = analytic_flops("efficientnet_b0", (r, d, w_released))
        assert abs(f_solved - f_released) < 1e6  # below the paper's rounding
        assert abs(f_solved - target) <= abs(f_released - target)
    # with the released architecture's exact FLOPs as target, the solver finds it (all four)
    exact = analytic_flops("efficientnet_b0", (r, d, w_released))
    assert efficientnet_plan((r, d, solve_width("efficientnet_b0", r, d, exact))) == released
    # the naive formula is far off: B 0.82, C 0.67, D 0.65, E 0.68
    naive = (target / analytic_flops("efficientnet_b0") / (r * r * d)) ** 0.5
    assert abs(naive - w_released) > abs(w - w_released)


def test_solve_width_errors_and_other_bases():
    with pytest.raises(ValueError, match="above"):
        solve_width("efficientnet_b0", 1.0, 1.0, 1e12)
    with pytest.raises(ValueError, match="below"):
        solve_width("efficientnet_b0", 1.0, 1.0, 1e6)
    with pytest.raises(ValueError, match="unknown"):
        solve_width("mobilenet_v2", 1.0, 1.0, 1e8)
    with pytest.raises(ValueError, match="resolution"):
        solve_width("efficientnet_b0", -1.0, 1.0, 1e8)
    w = solve_width("efficientnet_b0", 1.0, 1.0, analytic_flops("efficientnet_b0"))
    assert efficientnet_plan((1, 1, w)) == efficientnet_plan((1, 1, 1))
    w = solve_width("ghostnet_a", 0.9, 0.8, 300e6)
    assert analytic_flops("ghostnet_a", (0.9, 0.8, w)) == pytest.approx(300e6, rel=0.02)
    w = solve_width("resnet50", 1.0, 0.5, 1e9)
    assert analytic_flops("resnet50", (1.0, 0.5, w)) == pytest.approx(1e9, rel=0.03)
