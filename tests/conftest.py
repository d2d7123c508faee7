"""Shared test fixtures: tiny generated ImageFolders (no real data needed)."""
import os
from pathlib import Path

import numpy as np
import pytest


def make_imagefolder(root, classes=3, per_class=(8, 4), size=48, seed=0, grey_every=5, odd_size=True):
    """Write ``root/{train,val}/class_k/*.jpg``: class k is a coloured blob on noise, so it is learnable.

    ``per_class`` = (train, val) images per class. Every ``grey_every``-th image is greyscale (like
    Imagenette's), and with ``odd_size`` some images are not square, to exercise resizing.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = Path(root)
    colours = [(220, 40, 40), (40, 200, 40), (40, 60, 220), (220, 200, 40), (200, 40, 200), (40, 200, 200)]
    for split, n in zip(("train", "val"), per_class):
        for c in range(classes):
            d = root / split / f"class_{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = (size, size + 16) if odd_size and i % 3 == 1 else (size, size)
                img = rng.integers(0, 80, size=(h, w, 3), dtype=np.uint8)
                y0, x0 = rng.integers(0, h // 3), rng.integers(0, w // 3)
                s = size // 2
                img[y0:y0 + s, x0:x0 + s] = colours[c % len(colours)]
                im = Image.fromarray(img)
                if grey_every and i % grey_every == grey_every - 1:
                    im = im.convert("L")
                im.save(d / f"img_{i:03d}.jpg", quality=90)
    return root


@pytest.fixture(scope="session")
def tiny_imagefolder(tmp_path_factory):
    """A 3-class ImageFolder with 8 train / 4 val 48x48 JPEGs per class (session-scoped: do not modify)."""
    return make_imagefolder(tmp_path_factory.mktemp("tiny_imagefolder"))


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    """A fresh tensor-cache folder, also exported as RUBIK_CACHE_DIR."""
    d = tmp_path / "cache"
    monkeypatch.setenv("RUBIK_CACHE_DIR", str(d))
    return d


# sweeps of fake trainers need not import torch to time each trial after "training"
# (tests/test_latency.py turns the measurement back on and checks it)
os.environ.setdefault("RUBIK_TRIAL_LATENCY", "off")


@pytest.fixture(autouse=True)
def _single_thread_torch():
    """Tests share 2 cores with other jobs: keep torch to one thread for stable timings."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("RUBIK_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``@pytest.mark.cuda`` are skipped where no CUDA GPU is available."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _subprocesses_import_this_checkout():
    """Jupyter kernels and worker processes started by the tests import ``rubik`` from this checkout
    (pytest's ``pythonpath`` reaches only this process), not from wherever the venv's editable
    install points."""
    root = str(Path(__file__).resolve().parents[1])
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = root + (os.pathsep + old if old else "")
    yield
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def train_config(*, model="efficientnet_b0", twist=None, base_resolution=None, conv=None, epochs=None,
                 batch_size=None, recipe="smoke", **fields):
    """A ``rubik.config.TrainConfig`` from the short spelling tests use: the model as a name with its
    dials (made into the config's one ``arch``) and the schedule beside the recipe (made into recipe
    fields). Values are not checked here, so a test can hand ``validate``/``train`` a bad one."""
    import dataclasses

    from rubik.config import TrainConfig
    from rubik.models import Arch
    from rubik.recipes import resolve_recipe

    from rubik.errors import ConfigError

    arch = model
    if twist is not None or base_resolution is not None or conv is not None:
        try:   # the one-line error TrainConfig gives for a bad model (a test may expect it)
            arch = Arch.named(model, twist=twist, base_resolution=base_resolution, conv=conv)
        except ValueError as e:
            raise ConfigError(f"arch: {e}") from None
    schedule = {k: v for k, v in (("epochs", epochs), ("batch_size", batch_size)) if v is not None}
    if schedule:
        recipe = dataclasses.replace(resolve_recipe(recipe), **schedule)
    return TrainConfig(arch=arch, recipe=recipe, **fields)
