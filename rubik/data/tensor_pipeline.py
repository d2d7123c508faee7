"""The ``"tensor"`` pipeline (proxy runs at small resolution): batches from the decoded tensor cache,
augmented as tensors.

Every image is decoded and resized *once* into the uint8 tensor cache (``rubik.data.cache``);
``TensorLoader`` then draws training batches from it and augments them as tensors: a batched
random-resized-crop + horizontal flip through one ``affine_grid``/``grid_sample`` (bilinear), an
optional batched colour jitter, normalisation (``rubik.data.augment``). No PIL in the loop. Val
images are stored already through the eval transform, so evaluation only normalises them.
"""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from rubik.data.augment import (HFLIP_PROB, IMAGENET_MEAN, IMAGENET_STD, RRC_RATIO, RRC_SCALE, affine_resize,
                                color_jitter_batch, color_jitter_factors, crop_flip_theta, random_resized_crop_params)
from rubik.data.cache import tensor_cache
from rubik.data.locate import DataConfig


class _Sized:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


class TensorLoader:
    """Batches from a uint8 tensor cache, augmented as tensors; yields ``(x, y)`` on ``device``.

    Order and augmentation come from a generator seeded by ``(seed, epoch)`` only, so an epoch is
    reproducible on its own (what resuming needs). With ``world_size > 1`` each rank takes its shard
    of the same permutation (padded by repetition like DistributedSampler).

    On CUDA the loop never waits for the GPU: the uint8 cache stays on the device for the whole run
    (or, if it would take more than ``max_device_fraction`` of the free GPU memory, in pinned host
    memory, copied batch by batch without blocking), and each epoch's indices, crop boxes, flips and
    jitter factors are drawn up front on the host -- the same draws, in the same order, as batch by
    batch -- and sent to the device in one non-blocking copy. ``tests/test_cuda.py`` checks that
    iterating raises no synchronisation under ``torch.cuda.set_sync_debug_mode("error")``.
    """

    def __init__(self, x, y, batch_size, *, image_size, train, device="cpu", seed=0, drop_last=None,
                 scale=RRC_SCALE, ratio=RRC_RATIO, hflip=HFLIP_PROB, color_jitter=0.0,
                 rank=0, world_size=1, channels_last=True, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 max_device_fraction=0.5):
        self.device = _concrete_device(device)
        self.x = _place_cache(x, self.device, max_device_fraction)
        self.y = y.to(self.device)
        # the cache may be on the device, or (CUDA, too large) in pinned host memory: gather where it lives
        self.cache_on_device = self.x.device == self.device
        self.batch_size, self.image_size, self.train = batch_size, image_size, train
        self.drop_last = train if drop_last is None else drop_last
        self.seed, self.epoch = seed, 0
        self.scale, self.ratio, self.hflip, self.color_jitter = scale, ratio, hflip, color_jitter
        self.rank, self.world_size = rank, world_size
        self.channels_last = channels_last
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1) * 255
        n = len(self.x)
        self.num_samples = math.ceil(n / world_size) if train else len(range(rank, n, world_size))
        self.dataset = _Sized(n)  # ``len(loader.dataset)``: number of images, as for a DataLoader

    def __len__(self):
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def _indices(self, g):
        n = len(self.x)
        if not self.train:
            return torch.arange(self.rank, n, self.world_size)
        perm = torch.randperm(n, generator=g)
        total = self.num_samples * self.world_size
        if total > n:
            perm = torch.cat([perm, perm[: total - n]])
        return perm[self.rank::self.world_size]

    def epoch_plan(self) -> dict:
        """This epoch's host-side randomness: ``{"index", "boxes", "flip", "jitter"}``, one row per image
        of the epoch (batch after batch), drawn batch by batch from the epoch's generators."""
        # the permutation must be the same on every rank (each takes its shard); augmentation differs per rank
        idx = self._indices(torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 7919))
        idx = idx[: len(self) * self.batch_size]
        plan = {"index": idx}
        if self.train:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 7919 + 1 + self.rank)
            H, W = self.x.shape[-2:]
            boxes, flips, jitter = [], [], []
            for k in range(len(self)):
                b = len(idx[k * self.batch_size:(k + 1) * self.batch_size])
                boxes.append(random_resized_crop_params(b, H, W, self.scale, self.ratio, generator=g))
                flips.append(torch.rand(b, generator=g) < self.hflip)
                if self.color_jitter > 0:
                    jitter.append(color_jitter_factors(b, self.color_jitter, generator=g))
            plan.update(boxes=torch.cat(boxes), flip=torch.cat(flips))
            if jitter:
                plan["jitter"] = torch.cat(jitter)
        return plan

    def _gather(self, index: torch.Tensor) -> torch.Tensor:
        """uint8 images ``self.x[index]`` on the device, without a host sync. ``index`` lives with the cache:
        on the device, one ``index_select``; in pinned host memory, an ``index_select`` straight into a
        pinned buffer and one non-blocking copy (the caching host allocator keeps the buffer until the
        copy is done)."""
        if self.cache_on_device or self.device.type != "cuda":
            return self.x.index_select(0, index).to(self.device)
        buf = torch.empty((len(index), *self.x.shape[1:]), dtype=self.x.dtype, pin_memory=True)
        torch.index_select(self.x, 0, index, out=buf)
        return buf.to(self.device, non_blocking=True)

    def __iter__(self):
        host_plan = self.epoch_plan()
        if self.train:   # the crop/flip as affine matrices, for the whole epoch at once (a handful of ops)
            H, W = self.x.shape[-2:]
            host_plan["theta"] = crop_flip_theta(host_plan.pop("boxes"), host_plan.pop("flip"), H, W)
        plan = {k: _to_device(v, self.device) for k, v in host_plan.items()}
        # index the cache where it lives: with a device index (device) or the host one (pinned host memory);
        # indexing a CUDA tensor with a host index would copy the index with a blocking copy
        index_on_x = plan["index"] if self.cache_on_device else host_plan["index"]
        bs = self.batch_size
        for k in range(len(self)):
            sl = slice(k * bs, (k + 1) * bs)
            xb = self._gather(index_on_x[sl]).float()
            yb = self.y.index_select(0, plan["index"][sl])
            if self.train:
                xb = affine_resize(xb, plan["theta"][sl], self.image_size)
                if "jitter" in plan:
                    xb = color_jitter_batch(xb / 255, self.color_jitter, factors=plan["jitter"][sl]) * 255
            elif xb.shape[-1] != self.image_size:
                xb = F.interpolate(xb, size=(self.image_size, self.image_size), mode="bilinear", antialias=True,
                                   align_corners=False)
            xb = (xb - self.mean) / self.std
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, yb


def _place_cache(x: torch.Tensor, device: torch.device, max_device_fraction: float) -> torch.Tensor:
    """The uint8 cache on ``device`` if it fits (CUDA: at most ``max_device_fraction`` of the free memory),
    else in pinned host memory (CUDA) or as it is (CPU)."""
    if device.type != "cuda":
        return x.to(device)
    free, _ = torch.cuda.mem_get_info(device)
    if x.numel() * x.element_size() <= max_device_fraction * free:
        return x.to(device)
    warnings.warn(f"tensor cache of {x.numel() * x.element_size() / 2**30:.1f} GiB does not fit in "
                  f"{max_device_fraction:.0%} of the free GPU memory: kept in pinned host memory")
    return x.pin_memory()


def _concrete_device(device) -> torch.device:
    """``device`` with its index: ``"cuda"`` is the current CUDA device (``torch.device("cuda")`` compares
    unequal to the ``cuda:0`` a tensor reports)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device`` without a host sync: host tensors go through pinned memory, non-blocking."""
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def build_tensor_loaders(data: DataConfig, image_size: int, batch_size: int, eval_batch_size: int, *, device,
                         seed: int, distributed: bool, rank: int, world_size: int, channels_last: bool, scale,
                         color_jitter: float, progress: bool) -> tuple[TensorLoader, TensorLoader]:
    """The tensor pipeline's ``(train_loader, val_loader)``, building the two tensor caches if needed
    (``distributed``: rank 0 builds them while the other ranks wait, then those only load them)."""
    # rank 0 builds the caches first so other ranks only load them
    if distributed and rank != 0:
        torch.distributed.barrier()
    tr = tensor_cache(data, "train", image_size, progress=progress and rank == 0)
    va = tensor_cache(data, "val", image_size, progress=progress and rank == 0)
    if distributed and rank == 0:
        torch.distributed.barrier()
    common = dict(image_size=image_size, device=device, seed=seed, rank=rank, world_size=world_size,
                  channels_last=channels_last)
    train_loader = TensorLoader(tr["x"], tr["y"], batch_size, train=True, scale=scale,
                                color_jitter=color_jitter, **common)
    val_loader = TensorLoader(va["x"], va["y"], eval_batch_size, train=False, **common)
    return train_loader, val_loader
