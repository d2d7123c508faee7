import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

import rubik.train as T
from conftest import train_config
from rubik.data import DataConfig
from rubik.train import Recipe, TrainConfig, train

TINY_TWIST = (0.5, 0.25, 0.25)      # B0 at base 64 px -> 32 px, one block per stage, min widths


def tiny_cfg(root, **kw):
    base = dict(model="efficientnet_b0", twist=TINY_TWIST, base_resolution=64,
                data=DataConfig(root=str(root), pipeline="tensor", workers=0), recipe="smoke",
                batch_size=8, progress=False)
    base.update(kw)
    return train_config(**base)


def test_tiny_twisted_model_learns(tiny_imagefolder, cache_dir, tmp_path):
    cfg = tiny_cfg(tiny_imagefolder, epochs=8, out_dir=str(tmp_path / "run"))
    res = train(cfg)
    h = res["history"]
    assert res["resolution"] == 32 and res["epochs"] == 8 and len(h) == 8
    # 3 classes: the loss starts at ln 3 = 1.10 (zero-init head); 8 epochs x 3 steps bring it below 0.88
    assert min(x["train_loss"] for x in h[-3:]) < 0.8 * h[0]["train_loss"], [x["train_loss"] for x in h]
    assert res["best_top1"] > 40.0, [(x["top1"], x["ema_top1"]) for x in h]      # chance: 33.3
    for k in ("top1", "top5", "ema_top1", "ema_top5", "best_top1", "train_time_s", "images_per_s", "params", "flops"):
        assert res[k] is not None, k
    assert 0 <= res["top1"] <= 100 and res["top5"] == 100.0       # 3 classes: top-5 is trivially 100
    assert res["params"] > 0 and res["flops"] > 0
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 9))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["arch"]["twist"] == list(TINY_TWIST) and saved["recipe"]["name"] == "smoke"


def test_resume_after_kill_matches_uninterrupted(tiny_imagefolder, cache_dir, tmp_path, monkeypatch):
    # dropout and drop-connect on, so the RNG state must be restored too
    recipe = Recipe.named("smoke", dropout=0.3, drop_connect=0.2, epochs=3)
    full = train(tiny_cfg(tiny_imagefolder, recipe=recipe, out_dir=str(tmp_path / "full")))

    real_save = T.save_checkpoint
    calls = []

    def killed_after_first_epoch(path, state):
        real_save(path, state)
        calls.append(state["epoch"])
        if state["epoch"] == 1:
            raise KeyboardInterrupt("simulated kill after epoch 1")

    monkeypatch.setattr(T, "save_checkpoint", killed_after_first_epoch)
    cfg = tiny_cfg(tiny_imagefolder, recipe=recipe, out_dir=str(tmp_path / "part"))
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    assert calls == [1]
    resumed = train(dataclasses.replace(cfg, resume=True))
    assert calls == [1, 2, 3]                                  # continued at epoch 2, not from scratch

    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)
    for key in ("model",):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), name
    for name in a["ema"]["module"]:
        assert torch.equal(a["ema"]["module"][name], b["ema"]["module"][name]), name
    assert [h["train_loss"] for h in full["history"]] == [h["train_loss"] for h in resumed["history"]]
    assert full["top1"] == resumed["top1"] and full["ema_top1"] == resumed["ema_top1"]
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_recipes():
    e = Recipe.named("efficientnet")
    assert (e.optimizer, e.lr_per_1024, e.warmup_epochs, e.warmup_lr, e.decay_rate, e.decay_epochs) == \
        ("rmsproptf", 0.048, 3.0, 1e-6, 0.97, 2.4)
    assert (e.weight_decay, e.bn_momentum, e.dropout, e.label_smoothing, e.ema_decay, e.rmsprop_eps) == \
        (1e-5, 0.01, 0.2, 0.1, 0.9999, 1e-3)
    r = Recipe.named("resnet")
    assert (r.optimizer, r.lr_per_1024, r.weight_decay, r.decay_rate, r.decay_epochs, r.epochs) == \
        ("sgd", 0.4, 1e-4, 0.1, 30, 90)
    assert Recipe.named("proxy", epochs=3).epochs == 3
    for name in ("proxy", "proxy_resnet", "smoke"):
        assert Recipe.named(name).name == name
    with pytest.raises(ValueError, match="unknown recipe"):
        Recipe.named("nope")
    with pytest.raises(ValueError, match="unknown recipe fields"):
        Recipe.named("proxy", lrr=1)


def test_resolve_recipe_mapping_changes_named_fields():
    import dataclasses

    from rubik.train import resolve_recipe

    r = resolve_recipe({"name": "proxy", "eval_every": 100})
    assert r == Recipe.named("proxy", eval_every=100) and r != Recipe.named("proxy")
    full = dataclasses.asdict(Recipe.named("resnet", epochs=7))      # what a sweep record stores
    assert resolve_recipe(full) == Recipe.named("resnet", epochs=7)
    custom = resolve_recipe({"name": "mine", "epochs": 2})           # unregistered: Recipe defaults
    assert custom.name == "mine" and custom.epochs == 2 and custom.lr_per_1024 == Recipe().lr_per_1024
    with pytest.raises(ValueError, match="unknown recipe fields"):
        resolve_recipe({"name": "proxy", "lrr": 1})
    with pytest.raises(ValueError, match="unknown recipe fields"):
        resolve_recipe({"name": "mine", "lrr": 1})


def test_apply_recipe_sets_bn_dropout_drop_connect():
    from rubik.models import create_model
    from torchvision.ops import StochasticDepth

    m = create_model("efficientnet_b0", 10, twist=TINY_TWIST, base_resolution=64)
    T.apply_recipe_to_model(m, Recipe.named("efficientnet", drop_connect=0.2))
    bns = [x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)]
    assert bns and all(b.momentum == 0.01 and b.eps == 1e-3 for b in bns)
    assert [x.p for x in m.modules() if isinstance(x, torch.nn.Dropout)] == [0.2]
    sd = [x.p for x in m.modules() if isinstance(x, StochasticDepth)]
    assert sd[0] == 0 and max(sd) < 0.2 and sd == sorted(sd)


def test_cli_train(tiny_imagefolder, cache_dir, tmp_path, capsys):
    from rubik.cli import main

    rc = main(["train", "--model", "efficientnet_b0", "--twist", *map(str, TINY_TWIST), "--base-resolution", "64",
               "--data", str(tiny_imagefolder), "--recipe", "smoke", "--epochs", "1", "--batch-size", "8",
               "--workers", "0", "-o", "ema_decay=0.5", "--out", str(tmp_path / "cli"), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{"):])["resolution"] == 32
    rec = json.loads((tmp_path / "cli" / "result.json").read_text())
    assert rec["epochs"] == 1 and rec["resolution"] == 32
    ck = torch.load(tmp_path / "cli" / "checkpoint.pt", weights_only=False)
    assert ck["recipe"]["ema_decay"] == 0.5 and ck["epoch"] == 1


def test_ddp_two_processes_gloo(tiny_imagefolder, cache_dir, tmp_path):
    """``torchrun --nproc_per_node=2 -m rubik train`` on CPU (gloo): same code path as multi-GPU."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RUBIK_CACHE_DIR": str(cache_dir)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "rubik",
           "train", "--twist", *map(str, TINY_TWIST), "--base-resolution", "64", "--data", str(tiny_imagefolder),
           "--recipe", "smoke", "--epochs", "2", "--batch-size", "4", "--workers", "0", "--threads", "1",
           "--out", str(out), "--quiet", "--device", "cpu"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]                  # rank 0 writes, once per epoch
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert not any(k.startswith("module.") for k in ck["model"])  # plain names, loadable without DDP
    # 24 train images / (2 ranks x 4) = 3 steps per epoch per rank
    assert ck["scheduler"]["last_step"] == 6
    # the ranks' strided eval shards are gathered back into val-manifest order
    from rubik.data import unpack_correct

    res = json.loads((out / "result.json").read_text())
    correct, labels = unpack_correct(res["val_correct"])
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert 100 * correct.mean() == pytest.approx(res["top1"])


def test_cli_bad_data_path_is_a_clear_error(tmp_path, capsys):
    from rubik.cli import main

    assert main(["train", "--data", str(tmp_path / "missing"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "does not exist" in err
