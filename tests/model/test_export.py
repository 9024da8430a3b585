import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from stgan_cli.model import export, parity, modelstore
from stgan_cli.core import geometry
from stgan_cli.cli import app
from stgan_cli.errors import StganError

from conftest import cutout_rgba, fill_cache, random_model, scene, write_rgb, write_rgba

ROOT = Path(__file__).resolve().parents[2]
HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="the stgan-cli[export] extra is not installed")


def run(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return random_model(tmp_path_factory.mktemp("m") / "model", warps=3, std=1e-3)


@pytest.fixture(scope="module")
def onnx_file(model, tmp_path_factory):
    if not HAS_ONNX:
        pytest.skip("the stgan-cli[export] extra is not installed")
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    r = run("export", model, "--format", "onnx", "--out", out)
    assert r.exit_code == 0, r.stderr
    return out, json.loads(r.stdout)


def test_expm_series_matches_matrix_exp():
    from stgan_cli.core import geometry

    p = torch.randn(64, 8, dtype=torch.float64) * 0.3
    a = geometry.sl3_matrix(p)
    torch.testing.assert_close(geometry.expm_series(a), torch.linalg.matrix_exp(a), rtol=1e-9, atol=1e-9)


def test_package_export_reloads_identically(model, tmp_path):
    out = tmp_path / "pkg"
    r = run("export", model, "--format", "package", "--out", out)
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.yaml", "model.safetensors"]
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: stgan") and "license:" in card and "tags:" in card
    a, b = modelstore.load(str(model)), modelstore.load(str(out))
    inputs = parity.example_inputs(a.config.image_size)
    for x, y in zip(parity.reference(a.net, *inputs), parity.reference(b.net, *inputs)):
        assert torch.equal(x, y)
    r = run("export", model, "--format", "package", "--out", out)
    assert r.exit_code == 1 and "not empty" in r.stderr


@pytest.mark.slow
@needs_onnx
def test_onnx_parity_and_dynamic_batch(onnx_file, model):
    import onnx
    import onnxruntime as ort

    path, result = onnx_file
    assert result["max_corner_px"] <= parity.TOLERANCE_PX and result["opset"] >= 17
    graph = onnx.load(str(path))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert not [f for f in path.parent.iterdir() if f.name != path.name]  # no external data, no leftovers
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    net = modelstore.load(str(model)).net
    for batch in (1, 7):
        inputs = parity.example_inputs((120, 160), batch=batch, seed=batch)
        params, warp = session.run(None, {k: v.numpy() for k, v in zip(("bg", "fg", "p0"), inputs)})
        ref_params, ref_warp = parity.reference(net, *inputs)
        assert params.shape == (batch, 4, 8) and warp.shape == (batch, 3, 3)
        assert parity.check("onnx", (params, warp), (ref_params, ref_warp), inputs, (120, 160), path) \
            <= parity.TOLERANCE_PX
        assert (ref_params[:, -1] - ref_params[:, 0]).abs().max() > 1e-3  # the generators do move


def test_pt2_parity(model, tmp_path):
    out = tmp_path / "model.pt2"
    r = run("export", model, "--format", "pt2", "--out", out)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["max_corner_px"] <= parity.TOLERANCE_PX
    program = torch.export.load(str(out)).module()
    inputs = parity.example_inputs((120, 160), batch=2, seed=9)
    got = program(*inputs)
    ref = parity.reference(modelstore.load(str(model)).net, *inputs)
    assert parity.check("pt2", got, ref, inputs, (120, 160), out) <= parity.TOLERANCE_PX


def test_a_failed_check_keeps_nothing(model, tmp_path, monkeypatch):
    monkeypatch.setattr(parity, "TOLERANCE_PX", -1.0)  # no export can pass this
    with pytest.raises(StganError, match="from where PyTorch puts them"):
        export.export(str(model), "pt2", tmp_path / "bad.pt2")
    assert list(tmp_path.iterdir()) == []


def test_corner_check_measures_pixels_in_the_models_frame():
    """A warp that moves the object by exactly 1 px (x) at 120x160 is 1 px away."""
    inputs = parity.example_inputs((120, 160), batch=2)
    p = torch.zeros(2, 3, 8, dtype=torch.float64)
    shifted = p.clone()
    shifted[..., 0] = -2.0 / 160  # canvas_from_bg moves sampling left: the object moves right by 1 px
    warp = lambda q: torch.linalg.matrix_exp(geometry.sl3_matrix(q[:, -1]))
    diff = parity.corner_distance((shifted, warp(shifted)), (p, warp(p)), inputs, (120, 160))
    assert diff == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(StganError, match="1.00e[+]00 px from where PyTorch puts them"):
        parity.check("test", (shifted, warp(shifted)), (p, warp(p)), inputs, (120, 160), Path("x"))


def test_exports_get_ordinary_permissions(model, tmp_path):
    old = os.umask(0o022)
    try:
        for fmt, name in (("pt2", "m.pt2"), ("package", "pkg")):
            r = run("export", model, "--format", fmt, "--out", tmp_path / name)
            assert r.exit_code == 0, r.stderr
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.pt2").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "pkg").stat().st_mode) == 0o755
    assert {stat.S_IMODE(f.stat().st_mode) for f in (tmp_path / "pkg").iterdir()} == {0o644}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt2", "pkg"]  # no temporary left


def test_missing_extra_says_what_to_install(model, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "_missing", lambda mods: list(mods))
    r = run("export", model, "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert r.exit_code == 1 and "pip install 'stgan-cli[export]'" in r.stderr


@pytest.mark.parametrize("case", ["not_model", "pickle", "missing_tensor", "wrong_shape", "unknown_format"])
def test_export_refusals(model, tmp_path, case):
    from safetensors.torch import load_file, save_file

    target = model
    if case == "not_model":
        target = tmp_path / "empty"
        target.mkdir()
    elif case == "pickle":
        target = tmp_path / "model.pt"
        torch.save({"w": torch.zeros(2)}, target)
    elif case in ("missing_tensor", "wrong_shape"):
        target = tmp_path / "broken"
        target.mkdir()
        for f in model.iterdir():
            (target / f.name).write_bytes(f.read_bytes())
        tensors = load_file(str(target / "model.safetensors"))
        if case == "missing_tensor":
            del tensors["generators.0.fc.weight"]
        else:
            tensors["generators.0.fc.weight"] = torch.zeros(3, 3, dtype=torch.float16)
        save_file(tensors, str(target / "model.safetensors"))
    fmt = "tflite" if case == "unknown_format" else "pt2"
    r = run("export", target, "--format", fmt, "--out", tmp_path / "x.pt2")
    assert r.exit_code in (1, 2) and "Traceback" not in r.stderr
    errors = [l for l in r.stderr.splitlines() if l.startswith("stgan: error")]
    assert len(errors) == 1, r.stderr
    assert not (tmp_path / "x.pt2").exists()


# --- the Hub, offline ------------------------------------------------------------------------

def test_hf_hub_model_from_the_local_cache_offline(model, tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    fill_cache(cache, "someone/stgan-test", model)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants  # read once, when huggingface_hub is first imported (maybe by another test)

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    folder = modelstore.resolve("hf-hub:someone/stgan-test")
    assert (folder / "model.safetensors").exists()
    assert modelstore.load("hf-hub:someone/stgan-test").config.warps == 3
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.png", scene((240, 320)))
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "--model", "hf-hub:someone/stgan-test", "--offline")
    assert r.exit_code == 0, r.stderr
    r = run("models", "list")
    assert "hf-hub:someone/stgan-test" in r.stdout
    r = run("models", "info", "hf-hub:someone/stgan-test")
    assert r.exit_code == 0 and "warps: 3" in r.stdout
    with pytest.raises(StganError, match="not in the local Hugging Face cache"):
        modelstore.resolve("hf-hub:someone/not-downloaded")
    with pytest.raises(StganError, match="expected hf-hub:ORG/REPO"):
        modelstore.resolve("hf-hub:no-slash")


def test_push_without_token_or_network(model, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where the staged package goes
    (tmp_path / "tmp").mkdir()
    env = {"HF_HOME": str(tmp_path / "home"), "HF_TOKEN": ""}
    r = run("export", model, "--push-to-hub", "someone/repo", env=env)
    assert r.exit_code == 1 and "no Hugging Face token" in r.stderr
    # a token, but the Hub address is a closed port on this machine
    env = {"HF_HOME": str(tmp_path / "home"), "HF_TOKEN": "hf_fake", "HF_ENDPOINT": "http://127.0.0.1:9"}
    r = run("export", model, "--push-to-hub", "someone/repo", env=env)
    assert r.exit_code == 1 and "cannot reach the Hugging Face Hub" in r.stderr, r.stderr
    assert list((tmp_path / "tmp").iterdir()) == []  # the staged package is gone


@pytest.mark.slow
@needs_onnx
def test_example_script_matches_stgan_composite(onnx_file, model, tmp_path):
    path, _ = onnx_file
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba((240, 180)))
    bg = write_rgb(tmp_path / "bg.png", scene((480, 640)))
    box = "200,150,400,420"
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "onnx_composite.py"), str(path), str(fg), str(bg),
                          str(tmp_path / "onnx.png"), "--box", box], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    r = run("composite", fg, bg, "--out", tmp_path / "torch.png", "--model", model, "--box", box)
    assert r.exit_code == 0, r.stderr
    a = cv2.imread(str(tmp_path / "onnx.png")).astype(int)
    b = cv2.imread(str(tmp_path / "torch.png")).astype(int)
    background = cv2.imread(str(bg)).astype(int)
    assert np.abs(a - background).max() > 50  # the object is there
    assert np.abs(a - b).mean() < 0.5 and (np.abs(a - b).max(2) > 24).mean() < 0.003
