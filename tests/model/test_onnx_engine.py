"""The onnx engine (`composite --engine onnx`): the same placements as PyTorch without importing it."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from stgan_cli.model import export, modelstore, onnx_engine, parity
from stgan_cli.cli import app
from stgan_cli.core.trust_region import Limits

from conftest import cutout_rgba, random_model, scene, write_rgb, write_rgba

ROOT = Path(__file__).resolve().parents[2]
HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
pytestmark = pytest.mark.skipif(not HAS_ONNX, reason="the stgan-cli[export] extra is not installed")


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


# One architecture of each kind of graph: per-iteration generators (paper) and one shared block with
# a window (refiner-crop, the shipped default).  refiner and refiner-global are refiner-crop's block
# without the window; refiner-lite adds EfficientNet-Lite0, whose graph the placement critic's export
# checks (tests/composite/test_auto_place.py).  Every export checks its own graph against PyTorch
# (stgan_cli.model.parity) whatever the architecture: these tests hold the loop around the graphs.
ENGINE_ARCHS = ["paper", "refiner-crop"]


@pytest.fixture(scope="module", params=ENGINE_ARCHS)
def engined(request, tmp_path_factory):
    """A model folder of each kind of architecture with its model.onnx (an export takes 15-40 s on one
    thread: the tests that use one are marked slow)."""
    folder = random_model(tmp_path_factory.mktemp(request.param) / "model", warps=3, std=1e-3, arch=request.param)
    r = run("export", folder, "--format", "engine")
    assert r.exit_code == 0, r.stderr
    assert (folder / onnx_engine.ENGINE_FILE).is_file() and json.loads(r.stdout)["max_corner_px"] < parity.TOLERANCE_PX
    return folder


@pytest.fixture
def images(tmp_path):
    return (write_rgba(tmp_path / "fg.png", cutout_rgba()), write_rgb(tmp_path / "bg.png", scene((480, 640))))


def corners(side: dict) -> np.ndarray:
    h = np.array(side["homography"])
    fh, fw = side["foreground_size"]["height"], side["foreground_size"]["width"]
    pts = np.array([[0, 0, 1], [fw, 0, 1], [fw, fh, 1], [0, fh, 1]], float) @ h.T
    return pts[:, :2] / pts[:, 2:]


@pytest.mark.parametrize("trust", ["default", "move=0.001", "off"])
@pytest.mark.slow
def test_both_engines_put_the_object_in_the_same_place(engined, images, tmp_path, trust):
    fg, bg = images
    sides = {}
    for engine in ("torch", "onnx"):
        out = tmp_path / f"{engine}.png"
        r = run("composite", fg, bg, "--out", out, "--model", engined, "--box", "200,150,440,460", "--save-warp",
                "--engine", engine, "--trust-region", trust)
        assert r.exit_code == 0, r.stderr
        assert ("onnxruntime on cpu" in r.stderr) == (engine == "onnx")
        sides[engine] = json.loads(out.with_suffix(".json").read_text())
        assert sides[engine]["model"]["engine"] == engine
    # 1e-2 px in the 120x160 frame is 0.04 px in this 640x480 background
    assert np.abs(corners(sides["torch"]) - corners(sides["onnx"])).max() < 0.04
    assert sides["torch"]["clamped"] == sides["onnx"]["clamped"]
    assert (trust == "move=0.001") <= sides["onnx"]["clamped"]  # a tight limit acts in both


@pytest.mark.slow
def test_engine_loop_matches_the_torch_loop_with_the_trust_region(engined):
    model = modelstore.load(str(engined))
    bg, fg, p0 = parity.example_inputs(model.config.image_size, batch=4, seed=3)
    limits = Limits(move=0.001, scale=1.001, rotate=0.1, shape=0.001)  # tight: every sample is clamped
    onnx_run = onnx_engine.open_engine(model, "onnx").predict(bg.numpy(), fg.numpy(), 3, limits, p0.numpy())
    torch_run = onnx_engine.open_engine(model, "torch").predict(bg.numpy(), fg.numpy(), 3, limits, p0.numpy())
    assert onnx_run.clamped.all() and torch_run.clamped.all()
    assert np.abs(onnx_run.params - torch_run.params).max() < 1e-4
    assert all(np.allclose(onnx_run.resolved[k], torch_run.resolved[k]) for k in onnx_run.resolved)


@pytest.mark.slow
def test_a_stale_graph_is_refused_or_passed_over(engined, images, tmp_path):
    folder = tmp_path / "retrained"
    shutil.copytree(engined, folder)
    from safetensors.torch import load_file, save_file

    weights = load_file(str(folder / "model.safetensors"))
    key = next(k for k in weights if k.endswith("out.bias"))
    weights[key] = weights[key] + 0.01  # the weights change; model.onnx does not
    save_file(weights, str(folder / "model.safetensors"))
    fg, bg = images
    r = run("composite", fg, bg, "--out", tmp_path / "a.png", "--model", folder, "--engine", "onnx")
    assert r.exit_code == 1 and "exported from other weights" in r.stderr and "--format engine" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "a.png").exists()
    r = run("composite", fg, bg, "--out", tmp_path / "b.png", "--model", folder)
    assert r.exit_code == 0 and "torch on cpu" in r.stderr and "exported from other weights" in r.stderr
    (folder / "model.onnx").write_bytes(b"not a graph")
    r = run("composite", fg, bg, "--out", tmp_path / "c.png", "--model", folder, "--engine", "onnx")
    assert r.exit_code == 1 and "not a readable ONNX graph" in r.stderr


@pytest.mark.slow
def test_engine_choice(engined, images, tmp_path):
    model = modelstore.open_model(str(engined))
    assert onnx_engine.choose(model, "auto", "auto") == ("onnx", None)
    name, why = onnx_engine.choose(model, "auto", "cuda")
    assert name == "torch" and "runs on the CPU" in why
    bare = random_model(tmp_path / "bare", warps=1)
    name, why = onnx_engine.choose(modelstore.open_model(str(bare)), "auto", "cpu")
    assert name == "torch" and "model.onnx is missing" in why
    fg, bg = images
    r = run("composite", fg, bg, "--out", tmp_path / "x.png", "--model", bare, "--engine", "onnx")
    assert r.exit_code == 1 and "--engine onnx:" in r.stderr and "--format engine" in r.stderr
    r = run("composite", fg, bg, "--out", tmp_path / "y.png", "--engine", "fast")
    assert r.exit_code == 2 and "--engine fast" in r.stderr


@pytest.mark.slow
def test_the_onnx_path_imports_no_torch(engined, images, tmp_path):
    fg, bg = images
    # app() rather than main(): main ends the process with os._exit, before the check could run
    code = ("import sys; from stgan_cli.cli import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('no torch')")
    r = subprocess.run([sys.executable, "-c", code, "composite", str(fg), str(bg), "--out", str(tmp_path / "o.png"),
                        "--model", str(engined), "--save-warp", "--engine", "onnx"], capture_output=True, text=True)
    assert r.returncode == 0 and "no torch" in r.stdout, r.stderr


def test_the_shipped_default_carries_its_current_graph():
    folder = ROOT / "models" / modelstore.DEFAULT_MODEL
    graph = folder / onnx_engine.ENGINE_FILE
    assert graph.is_file(), "models/indoor/model.onnx: make it with `stgan export indoor --format engine`"
    onnx_engine.OnnxEngine(graph, folder, modelstore.read_config(folder))  # refuses a stale graph


@pytest.mark.slow
def test_one_graph_per_generator_and_a_missing_one_is_named(engined, images, tmp_path):
    model = modelstore.open_model(str(engined))
    per_iteration = export.distinct_updates(modelstore.load(str(engined)).net.generators) > 1
    graphs = sorted(p.name for p in engined.glob("*.onnx"))
    assert graphs == (["model.onnx", "model.step2.onnx", "model.step3.onnx"] if per_iteration else ["model.onnx"])
    if per_iteration:
        folder = tmp_path / "partial"
        shutil.copytree(engined, folder)
        (folder / "model.step3.onnx").unlink()
        fg, bg = images
        r = run("composite", fg, bg, "--out", tmp_path / "a.png", "--model", folder, "--engine", "onnx")
        assert r.exit_code == 1 and "model.step3.onnx: missing" in r.stderr
