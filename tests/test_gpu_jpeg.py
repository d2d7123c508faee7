"""The GPU JPEG pipeline, on the CPU: its fallback without CUDA, and its own code path with the CPU decoder."""
import warnings

import numpy as np
import pytest
import torch

from conftest import make_imagefolder
from rubik.data import (DataConfig, DataError, FolderDataset, GpuJpegLoader, build_loaders, dataset_samples,
                        folder_transforms)


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory):
    """The tiny ImageFolder plus files nvJPEG cannot take: a CMYK JPEG and a PNG named .jpg, in both splits."""
    from PIL import Image

    root = make_imagefolder(tmp_path_factory.mktemp("odd"), classes=2, per_class=(6, 3), size=40)
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        a = rng.integers(0, 256, (36, 52, 3), dtype=np.uint8)
        Image.fromarray(a).convert("CMYK").save(root / split / "class_0" / "zz_cmyk.jpg", format="JPEG")
        Image.fromarray(a).save(root / split / "class_1" / "zz_png.jpg", format="PNG")
    return root


def test_falls_back_to_folder_without_cuda(odd_folder):
    data = DataConfig(root=str(odd_folder), pipeline="gpu_jpeg", workers=0)
    with pytest.warns(RuntimeWarning, match="'gpu_jpeg' needs a CUDA device.*'folder' pipeline"):
        tr, va, n = build_loaders(data, 32, 4, device="cpu", progress=False)
    assert tr.pipeline == va.pipeline == "folder" and n == 2
    x, _ = next(iter(tr))
    assert x.shape == (4, 3, 32, 32)


def test_cpu_decode_train_batches(odd_folder):
    data = DataConfig(root=str(odd_folder), workers=0)
    root, _, samples = dataset_samples(data, "train")
    loader = GpuJpegLoader(root, samples, 4, image_size=24, train=True, device="cpu", workers=2, seed=3,
                           scale=(0.08, 1.0), color_jitter=0.4)
    assert len(loader) == len(samples) // 4
    loader.set_epoch(0)
    batches = list(loader)
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert x.shape == (len(loader) * 4, 3, 24, 24) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.is_contiguous(memory_format=torch.channels_last)
    lo = (0 - 0.485) / 0.229   # normalised [0, 255] images stay within the normalised range of [0, 1]
    hi = (1 - 0.406) / 0.225
    assert x.min() >= lo - 1e-4 and x.max() <= hi + 1e-4 and x.std() > 0.1
    assert sorted(y.tolist()) != y.tolist()   # shuffled


def test_cpu_decode_eval_matches_folder_transform(odd_folder):
    """Eval: resize floor(s/0.875) bicubic + centre crop, as PIL does it in the folder pipeline (CMYK, PNG too)."""
    data = DataConfig(root=str(odd_folder), workers=0)
    root, _, samples = dataset_samples(data, "val")
    loader = GpuJpegLoader(root, samples, 5, image_size=32, train=False, device="cpu", workers=0,
                           channels_last=False)
    x = torch.cat([b[0] for b in loader])
    y = torch.cat([b[1] for b in loader])
    ref = FolderDataset(root, samples, folder_transforms(32, False))
    rx = torch.stack([ref[i][0] for i in range(len(samples))])
    assert y.tolist() == [label for _, label in samples]
    # torch's bicubic vs PIL's on uint8 data: small differences (normalised units; 1/255 is ~0.017)
    assert (x - rx).abs().mean() < 0.03
    assert (x - rx).abs().max() < 0.5


def test_unreadable_file_is_named(tmp_path):
    root = make_imagefolder(tmp_path / "ds", classes=2, per_class=(2, 1), size=32)
    (root / "train" / "class_1" / "img_001.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    data = DataConfig(root=str(root), workers=0)
    root, _, samples = dataset_samples(data, "train")
    loader = GpuJpegLoader(root, samples, 4, image_size=24, train=True, device="cpu", workers=0)
    with pytest.raises(DataError, match="img_001.jpg"):
        list(loader)
