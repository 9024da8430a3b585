"""The shipped models export in every format, within the tolerance of PyTorch, and the ONNX example
runs on the default model as `stgan composite` does.  Its own file: it is the suite's longest unit
(~2 min on one thread), which pytest-xdist then runs beside the others."""

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
@pytest.mark.parametrize("name,fmt", [("indoor", "onnx"), ("indoor", "pt2"), ("glasses", "pt2"), ("glasses", "onnx")])
def test_shipped_models_export(name, fmt, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / f"{name}.{fmt}"
    r = run("export", name, "--format", fmt, "--out", out)
    assert r.exit_code == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["max_corner_px"] <= 1e-2 and out.stat().st_mode & 0o044 == 0o044
    assert files(tmp_path) == [out.name]
    if name == "indoor" and fmt == "onnx":
        data = ROOT / "sample_data"
        box = ",".join(str(v) for v in json.loads((data / "object_0.json").read_text())["box"])
        ex = subprocess.run([sys.executable, str(ROOT / "examples" / "onnx_composite.py"), str(out),
                             str(data / "object_0.png"), str(data / "room_0.png"), str(tmp_path / "ex.png"),
                             "--box", box], capture_output=True, text=True)
        assert ex.returncode == 0, ex.stderr
        r = run("composite", data / "object_0.png", data / "room_0.png", "--out", tmp_path / "torch.png", "--box", box)
        assert r.exit_code == 0, r.stderr
        a, b = (cv2.imread(str(tmp_path / n)).astype(int) for n in ("ex.png", "torch.png"))
        assert np.abs(a - b).mean() < 0.5
