"""The ``"folder"`` pipeline (full-resolution ImageNet): PIL decoding and torchvision transforms in
DataLoader workers.

Training: RandomResizedCrop(0.08-1, bicubic), horizontal flip, ColorJitter(0.4), optional RandAugment;
evaluation: resize ``floor(size / 0.875)`` bicubic + centre crop (``folder_transforms``).
``FolderLoader`` wraps the DataLoader: batches on the device (channels_last), ``set_epoch``, a
distributed shard per rank, and a worker's ``DataError`` raised again naming the file
(``worker_errors``). The GPU JPEG pipeline (``rubik.data.gpu_jpeg``) builds on ``FolderLoader``.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from rubik.data.augment import CROP_PCT, IMAGENET_MEAN, IMAGENET_STD, RRC_SCALE
from rubik.data.cache import open_rgb
from rubik.data.locate import DataError


def _dist_info():
    """``(rank, world size)`` of the initialised process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class FolderDataset(Dataset):
    def __init__(self, root, samples, transform):
        self.root, self.samples, self.transform = Path(root), samples, transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        rel, label = self.samples[i]
        return self.transform(open_rgb(str(self.root / rel))), label


def folder_transforms(image_size: int, train: bool, *, scale=RRC_SCALE, color_jitter=0.4, rand_augment=False):
    # imported here: torchvision takes seconds to import, and only this pipeline needs its transforms
    from torchvision import transforms as T

    bicubic = T.InterpolationMode.BICUBIC
    norm = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if not train:
        return T.Compose([T.Resize(int(image_size / CROP_PCT), interpolation=bicubic), T.CenterCrop(image_size)] + norm)
    t = [T.RandomResizedCrop(image_size, scale=scale, interpolation=bicubic), T.RandomHorizontalFlip()]
    if rand_augment:
        t.append(T.RandAugment(num_ops=2, magnitude=9, interpolation=bicubic))
    if color_jitter:
        t.append(T.ColorJitter(color_jitter, color_jitter, color_jitter))
    return T.Compose(t + norm)


class FolderLoader:
    """DataLoader over a FolderDataset that moves batches to the device (channels_last), with ``set_epoch``."""

    def __init__(self, dataset, batch_size, *, train, device, workers, seed=0, distributed=False, channels_last=True,
                 collate_fn=None):
        self.device, self.channels_last, self.seed, self.dataset = torch.device(device), channels_last, seed, dataset
        self.generator = torch.Generator()
        self.sampler = None
        if distributed and train:
            self.sampler = DistributedSampler(dataset, shuffle=True, seed=seed, drop_last=False)
        elif distributed:  # eval: an exact, unpadded shard per rank (counts are summed across ranks)
            rank, world = _dist_info()
            self.sampler = list(range(rank, len(dataset), world))
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=train and self.sampler is None,
                                 sampler=self.sampler, num_workers=workers, drop_last=train,
                                 pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
                                 generator=self.generator, collate_fn=collate_fn)
        self.set_epoch(0)

    def set_epoch(self, epoch):
        self.generator.manual_seed(self.seed * 1_000_003 + epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        with worker_errors():
            for x, y in self.loader:
                x = x.to(self.device, non_blocking=True)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                yield x, y.to(self.device, non_blocking=True)


@contextlib.contextmanager
def worker_errors():
    """Around iterating a DataLoader: a ``DataError`` raised in a worker process (an image that cannot
    be decoded) comes back from torch with the worker's whole traceback as its message; raise it again
    with its own one-line message (which names the file)."""
    try:
        yield
    except DataError as e:
        text = str(e)
        if "Original Traceback" not in text:
            raise
        last = [ln for ln in text.splitlines() if "DataError: " in ln]
        raise DataError(last[-1].split("DataError: ", 1)[1] if last else text.splitlines()[0]) from None


def build_folder_loaders(root, train_samples, val_samples, image_size, batch_size, eval_batch_size, *, device,
                         workers, seed, distributed, channels_last, scale, color_jitter, rand_augment):
    """The folder pipeline's ``(train_loader, val_loader)`` over the given ``(relative path, label)`` lists."""
    tt = folder_transforms(image_size, True, scale=scale, color_jitter=color_jitter, rand_augment=rand_augment)
    vt = folder_transforms(image_size, False)
    common = dict(device=device, workers=workers, seed=seed, distributed=distributed, channels_last=channels_last)
    train_loader = FolderLoader(FolderDataset(root, train_samples, tt), batch_size, train=True, **common)
    val_loader = FolderLoader(FolderDataset(root, val_samples, vt), eval_batch_size, train=False, **common)
    return train_loader, val_loader
