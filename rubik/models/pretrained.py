"""Released ImageNet weights: ``create_model("tinynet_a", pretrained=True)``.

The files are the authors' own releases, at the URLs timm records for them (huawei-noah
CV-Backbones GitHub releases: ``v1.2.0/tinynet_{a..e}.pth``, and ``ghostnet_pth/ghostnet_1x.pth``
for GhostNet 1.0x). They are fetched with ``torch.hub.load_state_dict_from_url`` (its cache,
``$TORCH_HOME/hub/checkpoints``, and progress bar) and mapped onto our modules by
:mod:`rubik.models.checkpoints` (timm/official key layout -> ours).

Hashes: a file name carrying a hash prefix (torch.hub's ``name-<sha256 prefix>.pth`` convention)
is checked by torch.hub while downloading; a ``sha256`` (argument or :class:`Release` field, a full
digest or a prefix of one) is checked on the local file every time it is loaded, wherever it was
found (``$RUBIK_WEIGHTS_DIR``, torch.hub's cache, a download); a mismatch is one line naming the file,
the expected hash and the URL of the real one. The authors publish no hashes for these files and
their names carry no hash prefix, so the table pins none yet (a hash we had not computed from the
real file would be invented): once a release is fetched from its URL, put
``sha256_of(file)`` in its entry. Until then a release file found on disk is loaded with a one-line
warning that gives its SHA-256, so a reader can compare it with their own download.

Without internet, put the file in place by hand: in ``$RUBIK_WEIGHTS_DIR`` (checked first, under
the release's file name), in torch.hub's cache, or pass its path (``pretrained="/path/x.pth"``,
CLI ``--weights /path/x.pth``). The error raised offline says all three.
"""
from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

import torch
from torch import nn

from rubik.errors import UserError

from .checkpoints import load_checkpoint

WEIGHTS_DIR_ENV = "RUBIK_WEIGHTS_DIR"
_CV_BACKBONES = "https://github.com/huawei-noah/CV-Backbones/releases/download"


@dataclass(frozen=True)
class Release:
    url: str
    source: str
    sha256: str | None = None
    num_classes: int = 1000

    @property
    def file_name(self) -> str:
        return os.path.basename(urlparse(self.url).path)


RELEASES: dict[str, Release] = {
    **{f"tinynet_{v}": Release(f"{_CV_BACKBONES}/v1.2.0/tinynet_{v}.pth",
                               f"huawei-noah CV-Backbones release v1.2.0 (timm: tinynet_{v}.in1k url)")
       for v in "abcde"},
    "ghostnet_100": Release("https://github.com/huawei-noah/CV-backbones/releases/download/ghostnet_pth/ghostnet_1x.pth",
                            "huawei-noah CV-Backbones release ghostnet_pth (timm: ghostnet_100.in1k, commented url)"),
}


class WeightsError(UserError, RuntimeError):
    """Weights that cannot be found, fetched or verified; the message says what to do (a user error:
    the CLI prints it as one line, status 2). ``url`` and ``reason`` (when set) let a caller give its
    own hint (``rubik reproduce`` names ``-p weights_dir``)."""

    def __init__(self, message: str, *, url: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.url, self.reason = url, reason


def released_models() -> list[str]:
    """Registered names with released ImageNet weights."""
    return list(RELEASES)


def _is_url(text: str) -> bool:
    return urlparse(text).scheme in ("http", "https", "file", "ftp")


def hub_cache_path(url: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` keeps ``url``'s file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_sha256(path: Path, sha256: str | None, url: str | None = None) -> None:
    if not sha256:
        return
    got = sha256_of(path)
    if not got.startswith(sha256.lower()):
        fetch = f"fetch the real one from {url}" if url else "download it again"
        raise WeightsError(f"sha256 of {path} is {got}, expected {sha256}: a corrupt or different file "
                           f"(delete it and {fetch})")


_UNPINNED_WARNED: set = set()


def _warn_unpinned(path: Path, name: str) -> None:
    """A release with no pinned hash: say so once per file, with its hash to compare."""
    if path in _UNPINNED_WARNED:
        return
    _UNPINNED_WARNED.add(path)
    print(f"[rubik] warning: {path} is loaded as {name}'s released weights unverified (no SHA-256 is pinned "
          f"for it); its sha256 is {sha256_of(path)}", file=sys.stderr)


def _manual_hint(name: str | None, url: str) -> str:
    file_name = os.path.basename(urlparse(url).path)
    what = f"create_model({name!r}, pretrained='/path/{file_name}')" if name else f"pretrained='/path/{file_name}'"
    return (f"To install it by hand, download {url} on a machine with internet and either put it at "
            f"{hub_cache_path(url)} (torch.hub's cache), or put it in a folder named by ${WEIGHTS_DIR_ENV} "
            f"(as {file_name}), or pass its path: {what} (CLI: --weights /path/{file_name}).")


def local_weights(url: str, weights_dir=None) -> Path | None:
    """The local copy of ``url``'s file, or None: in ``weights_dir``, else in ``$RUBIK_WEIGHTS_DIR``
    (under the release's file name), else in torch.hub's cache."""
    file_name = os.path.basename(urlparse(url).path)
    for folder in (weights_dir, os.environ.get(WEIGHTS_DIR_ENV)):
        if folder and (Path(folder).expanduser() / file_name).is_file():
            return Path(folder).expanduser() / file_name
    cached = hub_cache_path(url)
    return cached if cached.is_file() else None


def _load_url(url: str, *, name: str | None, progress: bool, sha256: str | None, weights_dir=None,
              release: bool = False) -> dict:
    local = local_weights(url, weights_dir)
    if local is not None and release and not sha256:
        _warn_unpinned(local, name)
    if local is not None and local != hub_cache_path(url):
        return _load_file(local, sha256=sha256, url=url)
    try:
        sd = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=progress, check_hash=True,
                                                weights_only=True)
    except (URLError, OSError) as e:   # offline, DNS, 404, a file:// URL to nowhere
        reason = f"{type(e).__name__}: {getattr(e, 'reason', None) or e}"
        raise WeightsError(f"could not download {name + ' ' if name else ''}weights from {url} "
                           f"({reason}). {_manual_hint(name, url)}", url=url, reason=reason) from e
    except RuntimeError as e:          # torch.hub's check of a hash prefix in the file name
        if "hash" not in str(e):
            raise
        raise WeightsError(f"hash check failed for {url}: {e}. {_manual_hint(name, url)}") from e
    _check_sha256(hub_cache_path(url), sha256, url)
    return sd


def _load_file(path, *, sha256: str | None, url: str | None = None) -> dict:
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist")
    _check_sha256(path, sha256, url)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"cannot read weights file {str(path)!r}: {type(e).__name__}: {e}") from e


def load_state_dict(source, name: str | None = None, *, progress: bool = True, sha256: str | None = None,
                    weights_dir=None) -> dict:
    """The raw state dict of ``source``: ``True`` (``name``'s released weights), a local path or a URL.
    A URL's file is looked for first in ``weights_dir``, then ``$RUBIK_WEIGHTS_DIR``, then torch.hub's cache."""
    if source is True:
        if name not in RELEASES:
            raise WeightsError(f"no released weights for {name!r}; released: {', '.join(RELEASES)} "
                               f"(or pass pretrained='/path/or/url')")
        release = RELEASES[name]
        return _load_url(release.url, name=name, progress=progress, sha256=sha256 or release.sha256,
                         weights_dir=weights_dir, release=True)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"pretrained must be True, a path or a URL, got {type(source).__name__}")
    source = str(source)
    if _is_url(source):
        return _load_url(source, name=name, progress=progress, sha256=sha256, weights_dir=weights_dir)
    return _load_file(source, sha256=sha256)


def load_pretrained(model: nn.Module, source=True, *, name: str | None = None, progress: bool = True,
                    sha256: str | None = None, weights_dir=None) -> nn.Module:
    """Load released (``source=True``) or given weights (path / URL; ours or timm/official layout) into
    ``model``; ``weights_dir``: a folder holding release files by hand (see :func:`load_state_dict`)."""
    name = name or getattr(model, "variant", None)
    sd = load_state_dict(source, name, progress=progress, sha256=sha256, weights_dir=weights_dir)
    try:
        return load_checkpoint(model, sd)
    except (ValueError, RuntimeError) as e:
        where = RELEASES[name].url if source is True else source
        raise WeightsError(f"weights from {where} do not fit {name or 'this model'}: {e}") from e


__all__ = ["RELEASES", "Release", "WeightsError", "WEIGHTS_DIR_ENV", "released_models", "load_pretrained",
           "load_state_dict", "local_weights", "hub_cache_path", "sha256_of"]
