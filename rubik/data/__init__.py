"""Data: ImageNet-1k, ImageNet-100 (the paper's subset) and Imagenette, through three pipelines.

``DataConfig`` picks the dataset and options; ``build_loaders`` returns ``(train_loader, val_loader,
num_classes)``, both loaders yielding ``(images, labels)`` batches already on the device (float,
normalised, channels_last), with ``set_epoch(epoch)`` and ``len()``. Modules, one idea each:

* :mod:`~rubik.data.locate`: ``DataConfig``, ``DataError``, the ImageFolder root (or an Imagenette
  download), class and file lists, subsampling, the ImageNet-100 manifest, the data's fingerprint;
* :mod:`~rubik.data.cache`: the decoded uint8 tensor cache (decoding, keys, digests, pruning);
* :mod:`~rubik.data.augment`: normalisation and eval-crop constants; batched crop/flip/resize and
  colour jitter as tensor ops;
* :mod:`~rubik.data.tensor_pipeline`: ``"tensor"``, ``TensorLoader`` over the tensor cache (proxy
  runs at small resolution);
* :mod:`~rubik.data.folder_pipeline`: ``"folder"``, torchvision transforms in DataLoader workers
  (full-resolution ImageNet);
* :mod:`~rubik.data.gpu_jpeg`: ``"gpu_jpeg"``, nvJPEG batch decode and augmentation on a CUDA device;
* :mod:`~rubik.data.loaders`: ``choose_pipeline`` and ``build_loaders``, the entry point.

The held-out ``select`` / ``test`` halves of the val set and the per-image outcomes of an evaluation
live in :mod:`rubik.heldout` (they score results, they do not load data); they are re-exported here.

Errors are loud: a wrong root, a missing split, an empty class folder or an image that cannot be
decoded raises a ``DataError`` naming the folder or file.
"""
from rubik.data.augment import (CROP_PCT, HFLIP_PROB, IMAGENET_MEAN, IMAGENET_STD, RRC_RATIO, RRC_SCALE,
                                affine_resize, color_jitter_batch, color_jitter_factors, crop_flip_resize,
                                crop_flip_theta, random_resized_crop_params)
from rubik.data.cache import CACHE_VERSION, cache_files, open_rgb, prune_cache, tensor_cache, tensor_digest
from rubik.data.folder_pipeline import (FolderDataset, FolderLoader, build_folder_loaders, folder_transforms,
                                        worker_errors)
from rubik.data.gpu_jpeg import EncodedImageFolder, GpuJpegLoader, build_gpu_jpeg_loaders, gpu_jpeg_available
from rubik.data.loaders import PIPELINES, build_loaders, choose_pipeline
from rubik.data.locate import (DATASETS, IMAGENETTE_CLASS_NAMES, IMG_EXTENSIONS, DataConfig, DataError,
                               build_imagenet100_manifest, class_name,
                               count_classes, data_difference, data_fingerprint, dataset_samples, list_classes,
                               list_split, resolve_root, subsample)
from rubik.data.tensor_pipeline import TensorLoader, build_tensor_loaders
from rubik.heldout import SPLIT_SEED, pack_correct, split_top1, unpack_correct, val_split
from rubik.rundir import atomic_torch_save  # noqa: F401  (re-exported, as the single-module rubik.data did)

# private names imported from rubik.data elsewhere (rubik.compact, benchmarks/cache_digest.py, tests/test_data.py);
# to patch one, patch it in the module that defines it (e.g. rubik.data.cache._decode_all)
from rubik.data.cache import _decode_all  # noqa: F401
from rubik.data.locate import _default_cache_dir, _is_image  # noqa: F401

__all__ = [
    # locating data (rubik.data.locate)
    "IMG_EXTENSIONS", "DATASETS", "DataConfig", "DataError", "resolve_root", "list_classes", "count_classes",
    "list_split", "subsample", "build_imagenet100_manifest", "dataset_samples", "data_fingerprint",
    "data_difference", "IMAGENETTE_CLASS_NAMES", "class_name",
    # held-out halves of val (rubik.heldout)
    "SPLIT_SEED", "val_split", "pack_correct", "unpack_correct", "split_top1",
    # the tensor cache (rubik.data.cache)
    "CACHE_VERSION", "open_rgb", "tensor_cache", "cache_files", "prune_cache", "tensor_digest",
    # batched augmentation (rubik.data.augment)
    "IMAGENET_MEAN", "IMAGENET_STD", "CROP_PCT", "RRC_SCALE", "RRC_RATIO", "HFLIP_PROB",
    "random_resized_crop_params", "crop_flip_theta", "affine_resize", "crop_flip_resize", "color_jitter_factors",
    "color_jitter_batch",
    # the pipelines
    "TensorLoader", "build_tensor_loaders",
    "FolderDataset", "folder_transforms", "FolderLoader", "worker_errors", "build_folder_loaders",
    "EncodedImageFolder", "GpuJpegLoader", "gpu_jpeg_available", "build_gpu_jpeg_loaders",
    # the entry point (rubik.data.loaders)
    "PIPELINES", "choose_pipeline", "build_loaders",
]
