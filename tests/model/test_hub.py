"""The Hub alone (stgan_cli/model/hub.py): references checked before they can name a path, downloads
through huggingface_hub's cache (offline here: a cache laid out as the library lays it out), and the
cache listed."""

from __future__ import annotations

import pytest

from stgan_cli.errors import StganError
from stgan_cli.model import hub
from stgan_cli.model.kinds import CONFIG_FILE, WEIGHTS_FILE

from conftest import fill_cache, random_model


@pytest.mark.parametrize("ref,want", [
    ("hf-hub:someone/stgan", ("someone/stgan", None)),
    ("hf-hub:someone/stgan@v1.0", ("someone/stgan", "v1.0")),
    ("hf-hub:some.one/st_gan-2@refs/pr/3", ("some.one/st_gan-2", "refs/pr/3")),
])
def test_references_parse(ref, want):
    assert hub.parse_hub_ref(ref) == want


@pytest.mark.parametrize("ref", ["hf-hub:no-slash", "hf-hub:../etc", "hf-hub:a/b/c", "hf-hub:a--b/c",
                                 "hf-hub:a/..b", "hf-hub:a/b@../x", "hf-hub:a/b@main/"])
def test_a_reference_that_could_name_a_path_is_refused(ref):
    with pytest.raises(StganError, match="hf-hub:"):
        hub.parse_hub_ref(ref)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    import huggingface_hub.constants  # read once, when huggingface_hub is first imported

    folder = tmp_path / "hf"
    fill_cache(folder, "someone/stgan-test", random_model(tmp_path / "m", warps=2))
    monkeypatch.setenv("HF_HUB_CACHE", str(folder))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(folder))
    return folder


def test_download_offline_reads_the_cache_and_says_what_is_missing(cache):
    folder = hub.download("hf-hub:someone/stgan-test", (CONFIG_FILE, WEIGHTS_FILE), offline=True)
    assert (folder / WEIGHTS_FILE).is_file() and folder.is_relative_to(cache)
    with pytest.raises(StganError, match="not in the local Hugging Face cache, and offline mode is on"):
        hub.download("hf-hub:someone/absent", (CONFIG_FILE,), offline=True)


def test_the_cache_is_listed_with_the_files_a_model_needs(cache):
    rows = hub.cached_models({CONFIG_FILE, WEIGHTS_FILE})
    assert [r["name"] for r in rows] == ["hf-hub:someone/stgan-test@aaaaaaaa"]
    assert hub.cached_models({CONFIG_FILE, "model.onnx"}) == []


def test_offline_from_the_environment(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.is_offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not hub.is_offline() and hub.is_offline(True)
