"""torch.hub entry points: every registered rubik model name.

    import torch
    model = torch.hub.load("/path/to/this/repo", "tinynet_e", source="local", pretrained=True)
    torch.hub.load("OWNER/REPO", "tinynet_a", pretrained=True)   # from GitHub

``OWNER/REPO``: the GitHub repository this file was pushed to (the repository does not name a
public home of its own, so set it to yours); without one, load from a clone with ``source="local"``.

``pretrained=True`` loads the authors' released ImageNet weights where they exist (TinyNet-A..E,
GhostNet 1.0x; see ``rubik.models.pretrained``); a path or URL loads those weights instead.
Other keyword arguments go to ``rubik.create_model`` (``num_classes``, ``twist``, ...).
"""
dependencies = ["torch", "torchvision"]

from rubik.models import create_model as _create_model  # noqa: E402
from rubik.models import get_model_spec as _get_model_spec  # noqa: E402
from rubik.models import list_models as _list_models  # noqa: E402


def _entry_point(name):
    def entry(pretrained=False, **kwargs):
        return _create_model(name, pretrained=pretrained, **kwargs)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = f"{_get_model_spec(name).description} (rubik.create_model({name!r}, pretrained=..., **kwargs))"
    return entry


for _name in _list_models():
    globals()[_name] = _entry_point(_name)
del _name
