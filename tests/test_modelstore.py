import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from stgan_cli import modelstore
from stgan_cli.errors import StganError

from conftest import random_model


def test_roundtrip_is_float16_and_strict(tmp_path):
    folder = random_model(tmp_path / "m", warps=2)
    tensors = load_file(str(folder / "model.safetensors"))
    assert all(t.dtype == torch.float16 for t in tensors.values())
    model = modelstore.load(str(folder))
    assert model.config.warps == 2 and model.config.image_size == (120, 160)
    for k, v in model.net.state_dict().items():
        torch.testing.assert_close(v, tensors[k].float())
    assert (folder / "README.md").read_text().startswith("#")


def test_registry_name_resolves_in_models_dir(tmp_path, monkeypatch):
    random_model(tmp_path / "indoor", warps=1)
    monkeypatch.setenv("STGAN_MODELS_DIR", str(tmp_path))
    assert modelstore.load(None).path == tmp_path / "indoor"
    assert modelstore.load("indoor").config.warps == 1


def test_default_model_missing_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("STGAN_MODELS_DIR", str(tmp_path))
    with pytest.raises(StganError, match="no default model is installed yet"):
        modelstore.load(None)


def test_unknown_name_suggests(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StganError, match="did you mean 'indoor'"):
        modelstore.resolve("indor")


def test_refusals(tmp_path):
    folder = random_model(tmp_path / "m", warps=2)
    # a folder that is not a model
    (tmp_path / "empty").mkdir()
    with pytest.raises(StganError, match="not a model folder"):
        modelstore.load(str(tmp_path / "empty"))
    # a pickle, never unpickled
    pt = tmp_path / "model.pt"
    pt.write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(StganError, match="pickled PyTorch"):
        modelstore.load(str(pt))
    # a missing tensor
    tensors = load_file(str(folder / "model.safetensors"))
    del tensors["generators.1.out.bias"]
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(StganError, match="missing tensor 'generators.1.out.bias'"):
        modelstore.load(str(folder))
    # a wrong shape
    tensors["generators.1.out.bias"] = torch.zeros(9, dtype=torch.float16)
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(StganError, match=r"shape \(9,\)"):
        modelstore.load(str(folder))
    # garbage weights
    (folder / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(StganError, match="not a readable safetensors"):
        modelstore.load(str(folder))


def test_config_keys_are_checked(tmp_path):
    with pytest.raises(StganError, match="unknown key 'wraps' \\(did you mean 'warps'\\?\\)"):
        modelstore.ModelConfig.from_dict({"wraps": 3})
    with pytest.raises(StganError, match="placement.sclae"):
        modelstore.ModelConfig.from_dict({"placement": {"sclae": 0.3}})
    cfg = modelstore.ModelConfig.from_dict({"warps": 3, "image_size": [144, 144], "placement": {"scale": 0.2}})
    assert cfg.image_size == (144, 144) and cfg.placement.scale == 0.2
