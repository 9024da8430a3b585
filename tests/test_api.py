"""The Python API (``stgan_cli.load(...).composite(...)``): the same composite as the command line,
from paths, arrays or PIL images, with the warps and what the harmonizer did; and the README's
Python example as pasted."""

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import stgan_cli as stgan
from stgan_cli.cli import app
from stgan_cli.errors import StganError

from conftest import cutout_rgba, random_model, scene, write_rgb, write_rgba

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return random_model(tmp_path_factory.mktemp("api") / "m", domain="indoor")


def test_arrays_give_what_the_command_line_gives(model, tmp_path):
    fg, bg = cutout_rgba(), scene((300, 400))
    r = stgan.load(model).composite(fg, bg, box=(100, 60, 220, 220), trust_region="off")
    write_rgba(tmp_path / "fg.png", fg)
    write_rgb(tmp_path / "bg.png", bg)
    out = CliRunner().invoke(app, ["composite", str(tmp_path / "fg.png"), str(tmp_path / "bg.png"), "--out",
                                   str(tmp_path / "o.png"), "--model", str(model), "--box", "100,60,220,220",
                                   "--trust-region", "off"], catch_exceptions=False)
    assert out.exit_code == 0, out.stderr
    cli = cv2.cvtColor(cv2.imread(str(tmp_path / "o.png")), cv2.COLOR_BGR2RGB)
    assert r.image.shape == (300, 400, 3) and r.image.dtype == np.uint8
    assert np.array_equal(r.image, cli)
    assert len(r.steps) == 1 + 2 and np.allclose(r.steps[-1], r.homography)  # the model's 2 generators
    assert r.mask.shape == (300, 400) and r.mask.max() == pytest.approx(1.0)
    assert np.array_equal(r.image[r.mask == 0], bg[r.mask == 0])  # untouched outside the object


def test_one_model_opens_its_engine_once(model):
    fg, bg = cutout_rgba(), scene((300, 400))
    m = stgan.load(model)
    first = m.composite(fg, bg, box=(100, 60, 220, 220), trust_region="off")
    engine = m._last.engine
    again = m.composite(fg, bg, box=(100, 60, 220, 220), trust_region="off", iterations=1)
    assert m._last.engine is engine  # another call, other options: the same engine
    assert np.array_equal(m.composite(fg, bg, box=(100, 60, 220, 220), trust_region="off").image, first.image)
    assert np.allclose(again.steps, first.steps[:2])
    assert stgan.load(model)._last is None  # another load opens its own


def test_paths_pil_images_and_floats_are_the_same_input(model, tmp_path):
    Image = pytest.importorskip("PIL.Image")

    fg, bg = cutout_rgba(), scene((200, 260))
    m = stgan.load(model)
    ref = m.composite(fg, bg, at=(130, 120), scale=0.4, iterations=0)
    write_rgba(tmp_path / "fg.png", fg)
    assert np.array_equal(m.composite(tmp_path / "fg.png", Image.fromarray(bg), at=(130, 120), scale=0.4,
                                      iterations=0).image, ref.image)
    floats = m.composite(fg.astype(np.float32) / 255, bg, at=(130, 120), scale=0.4, iterations=0)
    assert np.abs(floats.image.astype(int) - ref.image).max() <= 1
    # an RGB cut-out with its mask
    masked = m.composite(fg[..., :3], bg, mask=fg[..., 3], at=(130, 120), scale=0.4, iterations=0)
    assert np.array_equal(masked.image, ref.image)


def test_bad_inputs_are_refused_in_one_line(model):
    m = stgan.load(model)
    with pytest.raises(StganError, match="foreground: expected uint8, uint16 or float"):
        m.composite(np.zeros((10, 10, 4), np.int64), scene((50, 50)))
    with pytest.raises(StganError, match="background: expected an image array"):
        m.composite(cutout_rgba(), np.zeros((5, 5, 2), np.uint8))
    with pytest.raises(StganError, match="expected a path, a numpy array or a PIL image"):
        m.composite(cutout_rgba(), [[1, 2]])
    with pytest.raises(StganError, match="place nowhere"):
        m.composite(cutout_rgba(), scene((50, 50)), place="nowhere")
    with pytest.raises(StganError, match="no such file"):
        m.composite("missing.png", scene((50, 50)))


def test_the_readme_python_example_runs_as_pasted(monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has a Python example"
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    result = scope["result"]
    assert result.image.shape[:2] == cv2.imread(str(ROOT / "sample_data" / "room_1.png")).shape[:2]
