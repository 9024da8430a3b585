"""The shipped models export in every format, within the tolerance of PyTorch, and the ONNX example
runs a shipped model's graph as `stgan composite` runs the model.  Its own file, so that
pytest-xdist runs it beside the others."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from stgan_cli.cli import app

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir())


@pytest.mark.slow
# indoor as the engine it ships (its whole loop in one ONNX graph is the slowest export there is,
# ~2 min on one thread: the loop is checked in PyTorch by tests/model/test_archs.py, its update in
# ONNX here and by tests/model/test_onnx_engine.py, a whole loop in ONNX by glasses' export).
@pytest.mark.parametrize("name,fmt", [("indoor", "engine"), ("indoor", "pt2"), ("glasses", "pt2"), ("glasses", "onnx")])
def test_shipped_models_export(name, fmt, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / f"{name}.{'onnx' if fmt == 'engine' else fmt}"
    r = run("export", name, "--format", fmt, "--out", out)
    assert r.exit_code == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["max_corner_px"] <= 1e-2 and out.stat().st_mode & 0o044 == 0o044
    assert files(tmp_path) == [out.name]
    if name == "glasses" and fmt == "onnx":  # the example runs the graph as `stgan composite` runs the model
        data = ROOT / "sample_data"
        box = ",".join(str(v) for v in json.loads((data / "object_0.json").read_text())["box"])
        ex = subprocess.run([sys.executable, str(ROOT / "examples" / "onnx_composite.py"), str(out),
                             str(data / "object_0.png"), str(data / "room_0.png"), str(tmp_path / "ex.png"),
                             "--box", box], capture_output=True, text=True)
        assert ex.returncode == 0, ex.stderr
        r = run("composite", data / "object_0.png", data / "room_0.png", "--out", tmp_path / "torch.png", "--box", box,
                "--model", name, "--place", "scene")
        assert r.exit_code == 0, r.stderr
        a, b = (cv2.imread(str(tmp_path / n)).astype(int) for n in ("ex.png", "torch.png"))
        assert np.abs(a - b).mean() < 0.5
