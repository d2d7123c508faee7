"""`rubik validate`: the eval transform and the accuracy it reports, checked by hand."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import rubik
from rubik.cli import main as cli_main
from rubik.validate import eval_classes, validate

from conftest import make_imagefolder

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _by_hand(path, size):
    """The eval transform written out: shorter side to floor(size / 0.875) (bicubic), centre crop."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    short = int(size / 0.875)
    nw, nh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    im = im.resize((nw, nh), Image.BICUBIC)
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    a = (np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.float64) / 255.0 - MEAN) / STD
    return torch.tensor(a, dtype=torch.float32).permute(2, 0, 1)


@pytest.fixture(scope="module")
def six_classes(tmp_path_factory):
    return make_imagefolder(tmp_path_factory.mktemp("six"), classes=6, per_class=(1, 3), size=40, seed=1)


def test_validate_equals_hand_computation(six_classes):
    torch.manual_seed(0)
    model = rubik.create_model("tinynet_e", num_classes=6, base_resolution=64).eval()   # 30 px
    torch.nn.init.normal_(model.classifier[-1].weight, std=0.5)          # non-trivial predictions
    res = validate(model, six_classes, batch_size=5, workers=0, progress=False)
    classes = eval_classes(six_classes)
    x, y = [], []
    for label, c in enumerate(classes):
        for p in sorted((six_classes / "val" / c).glob("*.jpg")):
            x.append(_by_hand(p, 30))
            y.append(label)
    x, y = torch.stack(x), torch.tensor(y)
    with torch.no_grad():
        logits = model(x)
    top5 = logits.topk(5, 1).indices
    assert res["images"] == 18 and res["classes"] == 6 and res["resolution"] == 30
    assert res["top1"] == pytest.approx(100 * (top5[:, 0] == y).float().mean().item())
    assert res["top5"] == pytest.approx(100 * (top5 == y[:, None]).any(1).float().mean().item())
    assert res["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-4)
    assert 0 < res["top5"] < 100          # the check can fail: not every image is trivially in the top 5


def test_validate_checks_classes(six_classes):
    with pytest.raises(ValueError, match="1000 outputs but .* 6 classes"):
        validate(rubik.create_model("tinynet_e", base_resolution=64), six_classes, workers=0, progress=False)


def test_cli_validate_training_checkpoint_and_ema(tiny_imagefolder, cache_dir, tmp_path, capsys):
    from rubik.data import DataConfig
    from conftest import train_config
    from rubik.train import train

    cfg = train_config(model="efficientnet_b0", twist=(0.5, 0.25, 0.25), base_resolution=64, recipe="smoke",
                      data=DataConfig(root=str(tiny_imagefolder), pipeline="tensor", workers=0), batch_size=8,
                      epochs=2, progress=False, out_dir=str(tmp_path / "run"))
    train(cfg)
    ck_path = tmp_path / "run" / "checkpoint.pt"
    out = {}
    for ema in (False, True):
        argv = ["validate", "--checkpoint", str(ck_path), "--data", str(tiny_imagefolder), "--workers", "0",
                "--device", "cpu", "--quiet", "--out", str(tmp_path / f"ema{ema}.json")] + (["--ema"] if ema else [])
        assert cli_main(argv) == 0
        out[ema] = json.loads(capsys.readouterr().out)
        assert json.loads((tmp_path / f"ema{ema}.json").read_text()) == out[ema]
    # the same numbers by hand: rebuild the model from the config, load model / EMA weights
    ck = torch.load(ck_path, map_location="cpu", weights_only=False)
    for ema, sd in ((False, ck["model"]), (True, ck["ema"]["module"])):
        m = rubik.create_model("efficientnet_b0", 3, twist=(0.5, 0.25, 0.25), base_resolution=64)
        for bn in (x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)):
            bn.eps = ck["recipe"]["bn_eps"]      # as trained: the recipe's eps, which no state dict keeps
        m.load_state_dict(sd)
        ref = validate(m, tiny_imagefolder, workers=0, progress=False)
        assert out[ema]["resolution"] == 32 and out[ema]["images"] == 12
        assert out[ema]["loss"] == pytest.approx(ref["loss"], rel=1e-5)
        assert out[ema]["top1"] == pytest.approx(ref["top1"])
    assert out[False]["loss"] != out[True]["loss"]
    assert out[True]["weights"].endswith("(ema)")


def test_cli_validate_pretrained_weights_file(tmp_path, six_classes, capsys):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    ref = timm.create_model("tinynet_e", num_classes=1000).eval()
    torch.save(ref.state_dict(), tmp_path / "tinynet_e.pth")
    # 1000-class weights on a 6-class folder: a clear error, not a wrong number
    with pytest.raises(ValueError, match="1000 outputs"):
        cli_main(["validate", "--model", "tinynet_e", "--weights", str(tmp_path / "tinynet_e.pth"),
                  "--data", str(six_classes), "--workers", "0", "--quiet"])


def test_input_resolution_comes_from_the_model_or_a_clear_error():
    from torch import nn

    from rubik.validate import input_resolution

    m = rubik.create_model("tinynet_e", base_resolution=64)
    assert input_resolution(m) == m.resolution
    plain = nn.Linear(3, 2)
    plain.pretrained_cfg = {"input_size": (3, 160, 160)}     # a timm model's way of saying it
    assert input_resolution(plain) == 160
    with pytest.raises(ValueError, match="pass resolution=PX"):
        input_resolution(nn.Linear(3, 2))
