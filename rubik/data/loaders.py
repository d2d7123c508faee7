"""The entry point: ``build_loaders`` picks a pipeline (``choose_pipeline``) and builds its two loaders.

``build_loaders`` returns ``(train_loader, val_loader, num_classes)``. Both loaders yield
``(images, labels)`` batches already on the device (float, normalised, channels_last) and have
``set_epoch(epoch)`` and ``len()``, whichever pipeline made them: ``"tensor"``
(``rubik.data.tensor_pipeline``, small images from the decoded cache), ``"folder"``
(``rubik.data.folder_pipeline``, PIL + torchvision in DataLoader workers) or ``"gpu_jpeg"``
(``rubik.data.gpu_jpeg``, nvJPEG on a CUDA device). ``"auto"`` takes the tensor pipeline when the
cache is small (at most 160 px and 8 GiB, no RandAugment), else the folder pipeline.
"""
from __future__ import annotations

import warnings

import torch

from rubik.data.augment import CROP_PCT, RRC_SCALE
from rubik.data.folder_pipeline import _dist_info, build_folder_loaders
from rubik.data.gpu_jpeg import build_gpu_jpeg_loaders, gpu_jpeg_available
from rubik.data.locate import DataConfig, dataset_samples
from rubik.data.tensor_pipeline import build_tensor_loaders

PIPELINES = ("auto", "tensor", "folder", "gpu_jpeg")


def choose_pipeline(data: DataConfig, image_size: int, num_images: int, rand_augment: bool = False) -> str:
    if data.pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {data.pipeline!r}; expected one of {PIPELINES}")
    if data.pipeline != "auto":
        return data.pipeline
    cache_bytes = num_images * 3 * int(image_size / CROP_PCT) ** 2
    return "tensor" if (image_size <= 160 and cache_bytes <= 8 * 2**30 and not rand_augment) else "folder"


def build_loaders(data: DataConfig, image_size: int, batch_size: int, *, device, distributed=False,
                  rand_augment=False, color_jitter: float = 0.0, scale=RRC_SCALE, progress: bool = True,
                  eval_batch_size: int | None = None, channels_last: bool = True, seed: int | None = None):
    """``(train_loader, val_loader, num_classes)``; see ``rubik.data.loaders`` for the three pipelines.

    ``batch_size`` is per process. ``distributed`` shards both splits over the initialised process group.
    ``seed`` drives shuffling and augmentation (default ``data.seed``, which also picks the subsample).
    """
    seed = data.seed if seed is None else seed
    device = torch.device(device)
    rank, world = _dist_info() if distributed else (0, 1)
    root, classes, train_samples = dataset_samples(data, "train")
    eval_bs = eval_batch_size or max(batch_size, 256)
    pipeline = choose_pipeline(data, image_size, len(train_samples), rand_augment)
    if pipeline == "gpu_jpeg" and not gpu_jpeg_available(device):
        warnings.warn(f"pipeline 'gpu_jpeg' needs a CUDA device (got {device}): using the 'folder' pipeline",
                      RuntimeWarning, stacklevel=2)
        pipeline = "folder"
    if pipeline in ("gpu_jpeg", "tensor") and rand_augment:
        raise ValueError("RandAugment needs the 'folder' pipeline (pipeline='folder')")
    if pipeline == "tensor":
        train_loader, val_loader = build_tensor_loaders(
            data, image_size, batch_size, eval_bs, device=device, seed=seed, distributed=distributed, rank=rank,
            world_size=world, channels_last=channels_last, scale=scale, color_jitter=color_jitter, progress=progress)
    elif pipeline == "gpu_jpeg":
        _, _, val_samples = dataset_samples(data, "val")
        train_loader, val_loader = build_gpu_jpeg_loaders(
            root, train_samples, val_samples, image_size, batch_size, eval_bs, device=device, workers=data.workers,
            seed=seed, distributed=distributed, channels_last=channels_last, scale=scale, color_jitter=color_jitter)
    else:
        _, _, val_samples = dataset_samples(data, "val")
        train_loader, val_loader = build_folder_loaders(
            root, train_samples, val_samples, image_size, batch_size, eval_bs, device=device, workers=data.workers,
            seed=seed, distributed=distributed, channels_last=channels_last, scale=scale, color_jitter=color_jitter,
            rand_augment=rand_augment)
    train_loader.pipeline = val_loader.pipeline = pipeline
    return train_loader, val_loader, len(classes)
