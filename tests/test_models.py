"""Twistable model families and the registry, checked against timm / torchvision / the paper."""
import pytest
import torch
from torch import nn

import rubik
from rubik.cube import Twist, giant_twist
from rubik.models import BASES, create_model, get_model_spec, input_resolution, list_models
from rubik.models import registry as reg
from rubik.models.efficientnet import efficientnet_config, efficientnet_plan
from rubik.models.ghostnet import ghostnet_plan
from rubik.models.resnet import resnet_plan

timm = pytest.importorskip("timm")

TINYNETS = {  # timm _gen_tinynet / the official tinynet_pytorch: (r, w, d)
    "tinynet_a": (0.86, 1.0, 1.2),
    "tinynet_b": (0.84, 0.75, 1.1),
    "tinynet_c": (0.825, 0.54, 0.85),
    "tinynet_d": (0.68, 0.54, 0.695),
    "tinynet_e": (0.475, 0.51, 0.6),
}
# repeats / stage channels derived from the TinyNet rules (timm _gen_tinynet)
TINYNET_ARCH = {
    "tinynet_a": ((1, 2, 2, 4, 4, 5, 1), (16, 24, 40, 80, 112, 192, 320)),
    "tinynet_b": ((1, 2, 2, 3, 3, 4, 1), (16, 24, 32, 64, 88, 144, 240)),
    "tinynet_c": ((1, 2, 2, 3, 3, 3, 1), (8, 16, 24, 40, 64, 104, 176)),
    "tinynet_d": ((1, 1, 1, 2, 2, 3, 1), (8, 16, 24, 40, 64, 104, 176)),
    "tinynet_e": ((1, 1, 1, 2, 2, 2, 1), (8, 16, 24, 40, 56, 96, 160)),
}


def nparams(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", ["efficientnet_b0", *TINYNETS])
def test_params_identical_to_timm(name):
    ours = create_model(name)
    ref = timm.create_model(name, pretrained=False)
    assert nparams(ours) == nparams(ref)
    # and the same list of parameter shapes, in order
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in ref.parameters()]


@pytest.mark.parametrize("name", list(TINYNETS))
def test_tinynet_dials_and_architecture(name):
    r, w, d = TINYNETS[name]
    spec = get_model_spec(name)
    assert spec.twist == Twist(r, d, w)
    assert spec.base == "efficientnet_b0"
    plan = efficientnet_plan(spec.twist)
    assert (plan.repeats, plan.channels) == TINYNET_ARCH[name]
    assert plan.stem == 32 and plan.head == 1280
    m = create_model(name)
    assert m.resolution == int(224 * r) == timm.create_model(name).default_cfg["input_size"][-1]
    assert m.default_cfg["input_size"] == (3, m.resolution, m.resolution)
    assert m.default_cfg["interpolation"] == "bicubic" and m.default_cfg["crop_pct"] == 0.875


def test_efficientnet_config_is_torchvision():
    from torchvision.models.efficientnet import EfficientNet, MBConvConfig

    configs, last = efficientnet_config((1, 1, 1))
    assert all(isinstance(c, MBConvConfig) for c in configs) and last == 1280
    assert isinstance(create_model("tinynet_c"), EfficientNet)


def test_efficientnet_rules_match_reference_b_series():
    # EfficientNet rules (ceil depth, scaled stem and head) reproduce EfficientNet-B1/B2.
    from torchvision.models import efficientnet_b1

    b1 = create_model("efficientnet_b0", twist=(1.0, 1.1, 1.0), rules="efficientnet")
    assert nparams(b1) == nparams(efficientnet_b1())
    b2 = create_model("efficientnet_b0", twist=(1.0, 1.2, 1.1), rules="efficientnet")
    assert nparams(b2) == nparams(timm.create_model("efficientnet_b2"))
    # the two rule sets differ where the paper says they do
    t = (1.0, 0.6, 0.5)
    tiny, eff = efficientnet_plan(t, "tinynet"), efficientnet_plan(t, "efficientnet")
    assert tiny.stem == 32 and eff.stem == 16
    assert tiny.head == 1280 and eff.head == 640
    assert tiny.repeats == (1, 1, 1, 2, 2, 2, 1) and eff.repeats == (1, 2, 2, 2, 2, 3, 1)
    with pytest.raises(ValueError, match="rules"):
        create_model("efficientnet_b0", rules="bogus")
    with pytest.raises(ValueError, match="rules"):
        create_model("resnet50", rules="efficientnet")


def test_ghostnet_100_matches_timm():
    for name in ["ghostnet_100", "ghostnet_050", "ghostnet_130"]:
        assert nparams(create_model(name)) == nparams(timm.create_model(name)), name
    assert nparams(create_model("ghostnet_100")) == pytest.approx(5.18e6, rel=0.001)  # timm ghostnet_100


def test_ghostnet_a_is_table_2():
    plan = ghostnet_plan(None, "ghostnet_a")
    assert plan.stem == 28 and plan.last == 1680 and plan.head == 1400
    rows = [(st[0].out_channels, st[0].stride, len(st)) for st in plan.stages]
    assert rows == [(28, 1, 1), (44, 2, 1), (44, 1, 1), (72, 2, 1), (72, 1, 2), (140, 2, 1),
                    (140, 1, 3), (196, 1, 3), (280, 2, 1), (280, 1, 5)]
    assert all(b.se_channels > 0 for b in plan.blocks)  # SE in every G-neck
    assert plan.stages[5][0].mid_channels == 72 * 6 and plan.stages[6][0].mid_channels == 352  # 140 * 2.5
    m = create_model("ghostnet_a")
    assert m.resolution == 240
    assert nparams(m) == pytest.approx(11.9e6, rel=0.02)  # appendix Table 1
    assert not any(isinstance(x, nn.Hardswish) for x in m.modules())
    assert any(isinstance(x, nn.Hardswish) for x in create_model("ghostnet_a_hswish").modules())
    assert any(isinstance(x, nn.Hardswish) for x in create_model("ghostnet_a", act="hswish").modules())


def test_ghostnet_twists():
    a = ghostnet_plan((1, 1.5, 0.5), "ghostnet_a")
    assert a.stem == 16 and a.last == 840 and a.head == 700
    assert [len(s) for s in a.stages] == [2, 2, 2, 2, 3, 2, 4, 4, 2, 8]
    g = ghostnet_plan((1, 0.5, 1), "ghostnet_100")
    assert len(g.blocks) < len(ghostnet_plan(None, "ghostnet_100").blocks)


def test_resnet50_is_torchvision():
    from torchvision.models import resnet50

    ours, ref = create_model("resnet50"), resnet50()
    assert nparams(ours) == nparams(ref) == 25_557_032
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    plan = resnet_plan((1, 0.5, 0.5))
    assert plan.layers == (2, 2, 3, 2) and plan.widths == (32, 64, 128, 256) and plan.stem == 32
    assert resnet_plan((1, 0.3, 1.0)).layers == (1, 1, 2, 1)


@pytest.mark.parametrize("name,twist", [
    ("efficientnet_b0", (0.5, 0.5, 0.3)), ("ghostnet_a", (0.5, 0.4, 0.3)),
    ("ghostnet_100", (0.5, 0.5, 0.5)), ("resnet50", (0.5, 0.3, 0.25)), ("tinynet_e", None),
])
def test_forward_and_attributes(name, twist):
    m = create_model(name, num_classes=7, twist=twist, base_resolution=96).eval()
    spec = get_model_spec(name)
    expected_twist = Twist.from_any(twist) if twist is not None else spec.twist
    assert m.twist == expected_twist and m.base == spec.base and m.base in BASES
    assert m.resolution == int(96 * expected_twist.resolution)
    assert m.default_cfg["input_size"] == (3, m.resolution, m.resolution)
    with torch.no_grad():
        y = m(torch.randn(2, 3, m.resolution, m.resolution))
    assert y.shape == (2, 7) and torch.isfinite(y).all()


def test_registry():
    names = list_models()
    for n in ["efficientnet_b0", "tinynet_a", "tinynet_e", "efficientnet_b0_giant_m1", "efficientnet_b0_giant_m4",
              "ghostnet_100", "ghostnet_a", "resnet50"]:
        assert n in names
    assert list_models("tinynet_*") == [f"tinynet_{c}" for c in "abcde"]
    for phi in range(1, 5):
        assert get_model_spec(f"efficientnet_b0_giant_m{phi}").twist == giant_twist(-phi)
    with pytest.raises(ValueError, match="unknown model"):
        get_model_spec("tinynet_z")
    with pytest.raises(ValueError, match="unknown model"):
        create_model("resnet18")
    assert rubik.create_model is create_model


def test_input_resolution():
    assert input_resolution("tinynet_a") == 192
    assert input_resolution("ghostnet_a") == 240
    assert input_resolution("tinynet_a", base_resolution=64) == int(64 * 0.86)
    m = create_model("tinynet_b")
    assert input_resolution(m) == 188
    assert input_resolution(m, base_resolution=64) == int(64 * 0.84)
    with pytest.raises(ValueError):
        input_resolution(nn.Linear(2, 2))


def test_absurd_twists_raise():
    with pytest.raises(ValueError, match="width"):
        create_model("efficientnet_b0", twist=(1, 1, 0.01))
    with pytest.raises(ValueError, match="resolution"):
        create_model("efficientnet_b0", twist=(0.1, 1, 1))
    with pytest.raises(ValueError, match="resolution"):
        create_model("efficientnet_b0", twist=(0.35, 1, 1), base_resolution=64)  # 22 px
    with pytest.raises(ValueError, match="depth"):
        create_model("efficientnet_b0", twist=(1, -1, 1))
    with pytest.raises(ValueError, match="width"):
        create_model("ghostnet_a", twist=(1, 1, float("nan")))


def test_paper_numbers(monkeypatch, tmp_path):
    spec = get_model_spec("tinynet_a")
    assert spec.paper["flops_m"] == 339 and spec.paper["top1"] == 76.8 and spec.paper["source"]
    assert get_model_spec("ghostnet_a").paper["params_m"] == 11.9
    assert get_model_spec("efficientnet_b0_giant_m4").paper["flops_m"] == 24
    # an installed package without the repository's data/ falls back to "no paper numbers"
    monkeypatch.setenv(reg.PAPER_CSV_ENV, str(tmp_path / "missing.csv"))
    reg.paper_table.cache_clear()
    try:
        specs = reg._specs()
        assert specs["tinynet_a"].paper is None
        assert specs["tinynet_a"].twist == spec.twist
    finally:
        monkeypatch.delenv(reg.PAPER_CSV_ENV)
        reg.paper_table.cache_clear()


def test_models_cli(capsys, tmp_path):
    from rubik.cli import main

    assert main(["models", "--filter", "tinynet_*"]) == 0
    out = capsys.readouterr().out
    assert "tinynet_e" in out and "efficientnet_b0" in out and "diff_pct" in out
    path = tmp_path / "t.csv"
    assert main(["models", "--filter", "tinynet_e", "--base-resolution", "48", "--csv", str(path)]) == 0
    assert "resolution" in path.read_text() and "22 px" in path.read_text()  # 22 px < 24 reported, not raised
    assert main(["models", "--filter", "nothing_*"]) == 1
