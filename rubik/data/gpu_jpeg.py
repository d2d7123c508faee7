"""The ``"gpu_jpeg"`` pipeline (full-resolution ImageNet on a GPU): nvJPEG batch decode, augmentation
on the device.

For full-resolution ImageNet on a GPU, where PIL decoding in DataLoader workers cannot keep up with a
small model: workers only read the file bytes and the image size from the JPEG header, and draw the
RandomResizedCrop box and the flip (torchvision's sampling, from ``random_resized_crop_params``); the
main process decodes the whole batch at once with nvJPEG (``torchvision.io.decode_jpeg(list,
device="cuda")``), then crops, resizes (bilinear, antialiased), flips, jitters and normalises on the
device. Evaluation is the folder pipeline's transform (resize the shorter side to
``floor(size / 0.875)`` bicubic, centre crop) done on the device. Files nvJPEG cannot take (CMYK/YCCK
JPEGs, PNGs named .JPEG, as a few in ImageNet) are decoded by PIL in the worker and travel as pixels.
Without CUDA, ``build_loaders`` falls back to the folder pipeline with a warning; ``GpuJpegLoader``
itself also runs on the CPU (``torchvision``'s CPU decoder), which is how it is tested.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from rubik.data.augment import (CROP_PCT, HFLIP_PROB, IMAGENET_MEAN, IMAGENET_STD, RRC_RATIO, RRC_SCALE,
                                color_jitter_batch, random_resized_crop_params)
from rubik.data.folder_pipeline import FolderLoader
from rubik.data.locate import DataError


def _decode_jpegs(datas: list, device) -> list:
    """nvJPEG / libjpeg batch decode to RGB uint8 (3,H,W) tensors; per image with fallbacks if the batch fails."""
    # imported here: torchvision takes seconds to import (and brings nvJPEG); only this pipeline decodes with it
    from torchvision.io import ImageReadMode, decode_image, decode_jpeg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torchvision >= 0.29 deprecates its decoders in favour of TorchCodec
        try:
            return list(decode_jpeg(datas, mode=ImageReadMode.RGB, device=device))
        except RuntimeError:
            out = []
            for d in datas:
                try:
                    out.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=device))
                except RuntimeError:
                    out.append(decode_image(d, mode=ImageReadMode.RGB).to(device))
            return out


class EncodedImageFolder(Dataset):
    """Items ``(payload, is_jpeg, box, flip, label)``: the file's bytes (or, for what nvJPEG cannot decode,
    its RGB pixels), and for training a RandomResizedCrop box ``(top, left, h, w)`` and a flip flag."""

    def __init__(self, root, samples, *, train: bool, scale=RRC_SCALE, ratio=RRC_RATIO, hflip: float = HFLIP_PROB):
        self.root, self.samples, self.train = Path(root), samples, train
        self.scale, self.ratio, self.hflip = scale, ratio, hflip

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        rel, label = self.samples[i]
        path = self.root / rel
        try:
            data = path.read_bytes()
            with Image.open(io.BytesIO(data)) as im:   # the header only, unless it needs a CPU decode
                w, h = im.size
                is_jpeg = im.format == "JPEG" and im.mode in ("RGB", "L")
                if not is_jpeg:
                    pixels = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)
        except Exception as e:
            raise DataError(f"cannot read image {str(path)!r}: {type(e).__name__}: {e}") from e
        payload = torch.frombuffer(bytearray(data), dtype=torch.uint8) if is_jpeg else pixels
        box, flip = torch.zeros(4), False
        if self.train:
            box = random_resized_crop_params(1, h, w, self.scale, self.ratio)[0]
            flip = bool(torch.rand(()) < self.hflip)
        return payload, is_jpeg, box, flip, label


def _collate_encoded(items):
    # all JPEG bytes of the batch in one buffer: one shared-memory tensor per batch between processes,
    # not one per image (hundreds of file descriptors per batch otherwise)
    payloads, is_jpeg, boxes, flips, labels = zip(*items)
    jpegs = [p for p, j in zip(payloads, is_jpeg) if j]
    buffer = torch.cat(jpegs) if jpegs else torch.empty(0, dtype=torch.uint8)
    lengths = torch.tensor([len(p) for p in jpegs], dtype=torch.int64)
    pixels = [p for p, j in zip(payloads, is_jpeg) if not j]
    return (buffer, lengths, pixels, torch.tensor(is_jpeg, dtype=torch.bool), torch.stack(boxes),
            torch.tensor(flips, dtype=torch.bool), torch.tensor(labels, dtype=torch.int64))


class GpuJpegLoader(FolderLoader):
    """``FolderLoader`` over file bytes; decoding and augmentation happen on ``device`` (see the module docstring)."""

    def __init__(self, root, samples, batch_size, *, image_size: int, train: bool, device, workers: int,
                 seed: int = 0, distributed: bool = False, channels_last: bool = True, scale=RRC_SCALE,
                 ratio=RRC_RATIO, hflip: float = HFLIP_PROB, color_jitter: float = 0.0,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD):
        dataset = EncodedImageFolder(root, samples, train=train, scale=scale, ratio=ratio, hflip=hflip)
        self.image_size, self.train, self.color_jitter = image_size, train, color_jitter
        self.aug_generator = torch.Generator()
        super().__init__(dataset, batch_size, train=train, device=device, workers=workers, seed=seed,
                         distributed=distributed, channels_last=channels_last, collate_fn=_collate_encoded)
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1) * 255

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        self.aug_generator.manual_seed(self.seed * 1_000_003 + epoch * 7919 + 2)

    def decode(self, buffer, lengths, pixels, is_jpeg) -> list:
        """RGB uint8 (3,H,W) images on the device, in batch order."""
        jpegs = list(torch.split(buffer, lengths.tolist())) if len(lengths) else []
        decoded = iter(_decode_jpegs(jpegs, self.device) if jpegs else [])
        others = iter(pixels)
        return [next(decoded) if j else next(others).to(self.device, non_blocking=True) for j in is_jpeg.tolist()]

    def _train_batch(self, images, boxes, flips):
        s = self.image_size
        crops = []
        for im, (top, left, h, w) in zip(images, boxes.round().long().tolist()):
            crop = im[:, top:top + h, left:left + w].unsqueeze(0).float()
            crops.append(F.interpolate(crop, size=(s, s), mode="bilinear", antialias=True, align_corners=False))
        x = torch.cat(crops)
        flips = flips.to(self.device, non_blocking=True)
        x = torch.where(flips[:, None, None, None], x.flip(3), x)
        if self.color_jitter > 0:
            x = color_jitter_batch(x / 255, self.color_jitter, generator=self.aug_generator) * 255
        return x

    def _eval_batch(self, images):
        # torchvision's Resize(int) + CenterCrop: shorter side -> floor(size / 0.875), longer side scaled and truncated
        s, r = self.image_size, int(self.image_size / CROP_PCT)
        out = []
        for im in images:
            h, w = im.shape[-2:]
            nh, nw = (r, int(r * w / h)) if h <= w else (int(r * h / w), r)
            x = F.interpolate(im.unsqueeze(0).float(), size=(nh, nw), mode="bicubic", antialias=True,
                              align_corners=False)
            top, left = int(round((nh - s) / 2.0)), int(round((nw - s) / 2.0))
            out.append(x[:, :, top:top + s, left:left + s])
        return torch.cat(out).clamp_(0, 255)   # bicubic overshoots; PIL's uint8 output is clamped

    def __iter__(self):
        for buffer, lengths, pixels, is_jpeg, boxes, flips, y in self.loader:
            images = self.decode(buffer, lengths, pixels, is_jpeg)
            x = self._train_batch(images, boxes, flips) if self.train else self._eval_batch(images)
            x = (x - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y.to(self.device, non_blocking=True)


def gpu_jpeg_available(device) -> bool:
    """The GPU JPEG pipeline's condition: a CUDA device (nvJPEG comes with torchvision's CUDA build)."""
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


def build_gpu_jpeg_loaders(root, train_samples, val_samples, image_size, batch_size, eval_batch_size, *, device,
                           workers, seed, distributed, channels_last, scale, color_jitter):
    """The GPU JPEG pipeline's ``(train_loader, val_loader)`` over the given ``(relative path, label)`` lists."""
    common = dict(image_size=image_size, device=device, workers=workers, seed=seed, distributed=distributed,
                  channels_last=channels_last)
    train_loader = GpuJpegLoader(root, train_samples, batch_size, train=True, scale=scale, color_jitter=color_jitter,
                                 **common)
    val_loader = GpuJpegLoader(root, val_samples, eval_batch_size, train=False, **common)
    return train_loader, val_loader
