import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from stgan_cli.model import modelstore
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


def test_default_iterations_is_honoured_by_composite_eval_and_export(tmp_path):
    import json

    import yaml
    from typer.testing import CliRunner

    from conftest import cutout_rgba, random_model, scene, write_rgb, write_rgba
    from stgan_cli.model import export, parity
    from stgan_cli.cli import app

    model = random_model(tmp_path / "m", warps=3)
    cfg = yaml.safe_load((model / "config.yaml").read_text())
    cfg["default_iterations"] = 2
    (model / "config.yaml").write_text(yaml.safe_dump(cfg))
    loaded = modelstore.load(str(model))
    assert loaded.config.iterations == 2
    run = lambda *a: CliRunner().invoke(app, [str(x) for x in a], catch_exceptions=False)
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.png", scene((240, 320)))
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "--model", model, "--save-warp")
    assert r.exit_code == 0 and "2 of 3 warps" in r.stderr
    assert len(json.loads((tmp_path / "o.json").read_text())["iterations"]) == 2
    r = run("composite", fg, bg, "--out", tmp_path / "o3.png", "--model", model, "--save-warp", "-k", "3")
    assert len(json.loads((tmp_path / "o3.json").read_text())["iterations"]) == 3
    data = tmp_path / "rooms"
    from stgan_cli.data import synth_indoor

    synth_indoor.generate(data, 4, seed=0, size=(120, 160), split=0.0, workers=1)
    r = run("eval", model, "--data", data / "test", "--n", "4", "--json")
    assert r.exit_code == 0, r.stderr
    assert len(json.loads(r.stdout)["corner_error"]) == 3  # initial, after G1, after G2
    inputs = parity.example_inputs((120, 160), batch=2)
    params, _ = export.Predictor(loaded.net, loaded.config.iterations)(*inputs)
    assert params.shape == (2, 3, 8)
    cfg["default_iterations"] = 4
    (model / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(StganError, match="default_iterations must be a whole number from 1 to warps"):
        modelstore.open_model(str(model))
