"""Issue 23: everything stored before the redesign still loads. Configs were stored as ``model`` +
``twist`` + ``base_resolution`` with ``epochs`` / ``batch_size`` beside the recipe; today they are
``arch`` + a recipe that owns its schedule. Old ones are converted where they are read
(``rubik.config.upgrade_config``) and keep their identity (``rubik.identity``)."""
import json
from pathlib import Path

import pytest
import torch

from rubik import sweep as S
from rubik.config import TrainConfig, model_from_config, upgrade_config
from rubik.identity import config_fingerprint, config_identity
from rubik.runstate import run_signature

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for base in ("data/results", "runs") for p in (ROOT / base).rglob("config.json"))
SPECS = sorted(p.parent for base in ("data/results", "runs/reference") for p in (ROOT / base).rglob("sweep.json"))


def test_there_are_stored_configs_and_specs_of_the_old_layout():
    assert len(CONFIGS) >= 20 and len(SPECS) >= 12
    old = [p for p in CONFIGS if "model" in json.loads(p.read_text())]
    assert len(old) >= 10, "the committed run folders were written before arch: they test the conversion"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_committed_run_config_loads_builds_and_keeps_its_identity(path):
    stored = json.loads(path.read_text())
    cfg = TrainConfig.from_dict(stored)
    assert config_identity(cfg) == config_identity(stored)
    assert config_fingerprint(cfg.to_dict()) == config_fingerprint(stored)
    assert run_signature(cfg) == run_signature(stored)       # a stored run resumes under today's config
    model = model_from_config(stored, 10)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_every_committed_spec_gives_trainable_configs_of_the_rows_models():
    n = 0
    for d in SPECS:
        spec = S.load_spec(d)
        for trial in spec["trials"]:
            cfg = TrainConfig.from_dict(S.trial_config(spec, trial))
            assert cfg.arch == S.trial_arch(trial) or "arch" not in trial
            assert cfg.epochs == S.trial_epochs(S.trial_config(spec, trial))
            n += 1
    assert n >= 300


def test_a_checkpoint_of_the_old_layout_resumes_and_validates(tiny_imagefolder, cache_dir, tmp_path):
    from conftest import train_config
    from rubik.data import DataConfig
    from rubik.train import train
    from rubik.validate import model_from_checkpoint

    cfg = train_config(model="efficientnet_b0", twist=(0.5, 0.25, 0.25), base_resolution=64, epochs=1,
                       batch_size=8, data=DataConfig(root=str(tiny_imagefolder), pipeline="tensor", workers=0),
                       progress=False, out_dir=str(tmp_path / "run"))
    train(cfg)
    path = tmp_path / "run" / "checkpoint.pt"
    ck = torch.load(path, weights_only=False)
    new = ck["config"]
    old = {k: v for k, v in new.items() if k not in ("arch", "recipe")}
    old.update(model="efficientnet_b0", twist=[0.5, 0.25, 0.25], base_resolution=64, recipe="smoke",
               epochs=1, batch_size=8)                         # as the code before arch wrote it
    assert upgrade_config(old)["arch"] == new["arch"]
    ck["config"] = old
    torch.save(ck, path)
    model = model_from_checkpoint(path)
    assert model.resolution == 32
    import dataclasses

    assert run_signature(old) == run_signature(cfg) != run_signature(cfg.with_recipe(epochs=2))
    assert train(dataclasses.replace(cfg, resume=True))["status"] == "done"   # same settings: continues
