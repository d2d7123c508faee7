"""Released-weights plumbing, offline: timm-format TinyNet and GhostNet files served from file:// URLs."""
import hashlib

import pytest
import torch

import rubik
from rubik.models import pretrained as P

timm = pytest.importorskip("timm")

from test_checkpoints import _randomize_bn  # noqa: E402  (non-trivial BN statistics)


@pytest.fixture()
def hub_home(tmp_path, monkeypatch):
    """A private torch.hub cache (TORCH_HOME) and no weights folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(P.WEIGHTS_DIR_ENV, raising=False)
    return tmp_path / "torch_home"


def _timm_file(name, path, seed=0):
    torch.manual_seed(seed)
    ref = timm.create_model(name, pretrained=False).eval()
    _randomize_bn(ref, seed)
    torch.save(ref.state_dict(), path)
    return ref


@pytest.mark.parametrize("name", ["tinynet_e", "ghostnet_100"])
def test_pretrained_url_gives_timm_outputs(name, tmp_path, hub_home):
    ref = _timm_file(name, tmp_path / f"{name}.pth")
    ours = rubik.create_model(name, pretrained=(tmp_path / f"{name}.pth").as_uri()).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert expected.abs().max() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    # the download went through torch.hub's cache
    assert (hub_home / "hub" / "checkpoints" / f"{name}.pth").is_file()
    # a plain path works too
    again = rubik.create_model(name, pretrained=str(tmp_path / f"{name}.pth")).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), expected, rtol=1e-4, atol=1e-5)


def test_pretrained_true_uses_release_table(tmp_path, hub_home, monkeypatch):
    ref = _timm_file("tinynet_e", tmp_path / "tinynet_e.pth", seed=3)
    digest = hashlib.sha256((tmp_path / "tinynet_e.pth").read_bytes()).hexdigest()
    monkeypatch.setitem(P.RELEASES, "tinynet_e", P.Release((tmp_path / "tinynet_e.pth").as_uri(), "test", digest))
    ours = rubik.create_model("tinynet_e", pretrained=True).eval()
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)


def test_weights_dir_is_checked_first(tmp_path, hub_home, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    ref = _timm_file("tinynet_e", folder / "tinynet_e.pth", seed=4)
    monkeypatch.setenv(P.WEIGHTS_DIR_ENV, str(folder))
    # the release URL is unreachable (nothing there); the file in the folder is used instead
    monkeypatch.setitem(P.RELEASES, "tinynet_e", P.Release((tmp_path / "nowhere" / "tinynet_e.pth").as_uri(), "t"))
    ours = rubik.create_model("tinynet_e", pretrained=True).eval()
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)


def test_bad_hash_is_refused(tmp_path, hub_home):
    _timm_file("tinynet_e", tmp_path / "tinynet_e-deadbeef.pth")
    # torch.hub's convention: a hash prefix in the file name is checked while downloading
    with pytest.raises(P.WeightsError, match="hash check failed.*tinynet_e-deadbeef.pth"):
        rubik.create_model("tinynet_e", pretrained=(tmp_path / "tinynet_e-deadbeef.pth").as_uri())
    assert not (hub_home / "hub" / "checkpoints" / "tinynet_e-deadbeef.pth").exists()
    # an explicit sha256 is checked on the local file
    model = rubik.create_model("tinynet_e")
    with pytest.raises(P.WeightsError, match="sha256 of .* expected 0123"):
        P.load_pretrained(model, str(tmp_path / "tinynet_e-deadbeef.pth"), sha256="0123")


def test_missing_file_and_offline_errors_say_what_to_do(tmp_path, hub_home):
    with pytest.raises(P.WeightsError, match="does not exist"):
        rubik.create_model("tinynet_e", pretrained=str(tmp_path / "absent.pth"))
    url = (tmp_path / "absent" / "tinynet_e.pth").as_uri()
    with pytest.raises(P.WeightsError) as e:
        rubik.create_model("tinynet_e", pretrained=url)
    msg = str(e.value)
    assert url in msg and P.WEIGHTS_DIR_ENV in msg and "--weights" in msg
    assert str(hub_home / "hub" / "checkpoints" / "tinynet_e.pth") in msg
    with pytest.raises(P.WeightsError, match="no released weights for 'tinynet_x'|no released weights"):
        P.load_state_dict(True, "resnet50")


def test_wrong_architecture_names_the_source(tmp_path, hub_home):
    _timm_file("tinynet_e", tmp_path / "tinynet_e.pth")
    with pytest.raises(P.WeightsError, match="do not fit tinynet_d"):
        rubik.create_model("tinynet_d", pretrained=str(tmp_path / "tinynet_e.pth"))


def test_release_table():
    assert P.released_models() == ["tinynet_a", "tinynet_b", "tinynet_c", "tinynet_d", "tinynet_e", "ghostnet_100"]
    assert P.RELEASES["tinynet_c"].url == "https://github.com/huawei-noah/CV-Backbones/releases/download/v1.2.0/tinynet_c.pth"
    assert P.RELEASES["ghostnet_100"].file_name == "ghostnet_1x.pth"
    assert all(n in rubik.list_models() for n in P.RELEASES)


def test_torch_hub_local(tmp_path):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    model = torch.hub.load(str(repo), "tinynet_e", source="local", num_classes=5)
    assert model.variant == "tinynet_e" and model.resolution == 106
    ref = _timm_file("tinynet_e", tmp_path / "w.pth", seed=5)
    loaded = torch.hub.load(str(repo), "tinynet_e", source="local", pretrained=str(tmp_path / "w.pth")).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), ref(x), rtol=1e-4, atol=1e-5)
    import importlib.util

    spec = importlib.util.spec_from_file_location("_rubik_hubconf", repo / "hubconf.py")
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    assert all(callable(getattr(hub, n)) for n in rubik.list_models())
