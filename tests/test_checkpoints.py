"""timm-format checkpoints load into our torchvision-based EfficientNet/TinyNet modules."""
import pytest
import torch

import rubik
from rubik.models.checkpoints import load_checkpoint

timm = pytest.importorskip("timm")


def _randomize_bn(model, seed=0):
    """Non-trivial BN statistics so that a wrong mapping of running stats would show."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize("name", ["tinynet_a", "tinynet_e", "efficientnet_b0"])
def test_timm_weights_give_identical_outputs(name):
    torch.manual_seed(0)
    ref = timm.create_model(name, pretrained=False, num_classes=10).eval()
    _randomize_bn(ref)
    ours = rubik.create_model(name, num_classes=10).eval()
    rubik.load_timm_checkpoint(ours, ref.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert expected.abs().max() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_checkpoint_file_and_create_model(tmp_path):
    torch.manual_seed(1)
    ref = timm.create_model("tinynet_d", pretrained=False, num_classes=5).eval()
    path = tmp_path / "tinynet_d.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in ref.state_dict().items()}}, path)
    ours = rubik.create_model("tinynet_d", num_classes=5, checkpoint=str(path)).eval()
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)
    # our own format round-trips through create_model(checkpoint=...) too
    own = tmp_path / "ours.pth"
    torch.save(ours.state_dict(), own)
    again = rubik.create_model("tinynet_d", num_classes=5, checkpoint=str(own)).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), ours(x))


def test_mismatching_checkpoint_raises():
    ref = timm.create_model("tinynet_e", pretrained=False, num_classes=5)
    with pytest.raises(ValueError, match="does not fit"):
        rubik.load_timm_checkpoint(rubik.create_model("tinynet_c", num_classes=5), ref.state_dict())
    with pytest.raises(ValueError, match="does not fit"):
        load_checkpoint(rubik.create_model("tinynet_e", num_classes=7), ref.state_dict())


def test_efficientnet_rules_checkpoint_b2():
    """The mapping is structural: timm's EfficientNet-B2 loads into our B0 twisted by
    (1.0, 1.2, 1.1) with the EfficientNet rule set (ceil depth, scaled stem/head)."""
    torch.manual_seed(2)
    ref = timm.create_model("efficientnet_b2", pretrained=False, num_classes=4).eval()
    _randomize_bn(ref, seed=2)
    ours = rubik.create_model("efficientnet_b0", num_classes=4, twist=(1.0, 1.2, 1.1), rules="efficientnet").eval()
    rubik.load_timm_checkpoint(ours, ref.state_dict())
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["ghostnet_100", "ghostnet_050"])
def test_timm_ghostnet_gives_identical_outputs(name):
    """timm's (= the official code's) GhostNet layout: G-necks grouped by stage there, by width run here."""
    torch.manual_seed(3)
    ref = timm.create_model(name, pretrained=False, num_classes=6).eval()
    _randomize_bn(ref, seed=3)
    ours = rubik.create_model(name, num_classes=6).eval()
    load_checkpoint(ours, {"state_dict": ref.state_dict()})
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert expected.abs().max() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="G-neck blocks"):
        rubik.load_timm_checkpoint(rubik.create_model("ghostnet_100", twist=(1, 0.5, 1), num_classes=6),
                                   ref.state_dict())
