"""The architecture registry and the refiner: its corner-offset update against OpenCV, its gradients,
its identity start, and its round trip through model folders, exports and training."""

import cv2
import numpy as np
import pytest
import torch

from stgan_cli.model import archs
from stgan_cli.model import export, parity, modelstore, nets
from stgan_cli.core import geometry
from stgan_cli.model.archs import refiner
from stgan_cli.errors import StganError

from conftest import random_model


def box_and_pts(batch=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    center = (torch.rand(batch, 2, generator=g, dtype=torch.float64) - 0.5) * 0.6
    half = torch.rand(batch, 2, generator=g, dtype=torch.float64) * 0.3 + 0.1
    return center, half, geometry.box_points(torch.cat([center - half, center + half], 1))


def test_registry_names_and_refusal():
    assert {"paper", "refiner"} <= set(archs.names())
    with pytest.raises(StganError, match="unknown architecture 'refinr'.*did you mean 'refiner'"):
        archs.get("refinr")


def test_corner_update_is_exact_to_first_order():
    center, half, pts = box_and_pts()
    offsets = torch.randn(5, 4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 1e-5
    dp = refiner.corner_update(offsets, center, half, refiner.box_jacobian_inverse())
    moved = geometry.displayed(pts, dp) - pts
    assert (moved - offsets).abs().max() < 1e-3 * offsets.abs().max()


def test_update_moves_corners_where_opencv_says():
    """The refiner's update (first order plus its quasi-Newton steps) puts the object's corners where
    the block asked: the homography it displays the canvas by is OpenCV's four-point one."""
    torch.manual_seed(0)
    net = refiner.Refiner(3, (120, 160)).double()
    torch.nn.init.normal_(net.block.out.weight, std=0.3)  # moves of a few pixels
    fg = torch.zeros(2, 4, 120, 160, dtype=torch.float64)
    fg[0, :, 30:90, 40:120] = 1
    fg[1, :, 50:110, 20:60] = 1
    bg, p = torch.rand(2, 3, 120, 160, dtype=torch.float64), torch.zeros(2, 8, dtype=torch.float64)
    pts = refiner.canvas_corners(fg)
    offsets = net.block(bg, fg, pts)
    dp = net.update(0, bg, fg, fg, p)
    size = (120, 160)
    for i in range(2):
        src = geometry.pixel_from_canon(size) @ np.c_[pts[i].numpy(), np.ones(4)].T
        dst = geometry.pixel_from_canon(size) @ np.c_[(pts[i] + offsets[i]).detach().numpy(), np.ones(4)].T
        expected = cv2.getPerspectiveTransform(src[:2].T.astype(np.float32), dst[:2].T.astype(np.float32))
        shown = np.linalg.inv(geometry.warp_matrix(dp[i].detach()).numpy())  # bg_from_canvas, canonical
        got = geometry.pixel_from_canon(size) @ shown @ geometry.canon_from_pixel(size)
        moved_px = (offsets[i].detach().numpy() * [80, 60])
        for x in (src[:2].T):
            a, b = geometry.apply_homography(got, x[None]), geometry.apply_homography(expected, x[None])
            assert np.abs(a - b).max() < 0.01 * np.abs(moved_px).max() + 1e-3


def test_corner_update_gradients():
    center, half, _ = box_and_pts(2)
    offsets = (torch.randn(2, 4, 2, dtype=torch.float64) * 0.05).requires_grad_()
    jinv = refiner.box_jacobian_inverse()
    assert torch.autograd.gradcheck(lambda o: refiner.corner_update(o, center, half, jinv), (offsets,))


REFINERS = ["refiner", "refiner-global", "refiner-crop", "refiner-lite", "refiner-lite-frozen"]


@pytest.mark.parametrize("arch", REFINERS)
def test_untrained_refiner_is_identity_and_trains(arch):
    torch.manual_seed(0)
    net = nets.STGAN(3, (120, 160), discriminator=False, arch=arch)
    bg, fg = torch.rand(2, 3, 120, 160), torch.zeros(2, 4, 120, 160)
    fg[:, :, 40:80, 50:110] = 0.7
    p0 = torch.randn(2, 8) * 0.05
    pred = net(bg, fg, p0)
    assert all(torch.equal(p, p0) for p in pred.params)
    pred.params[-1].sum().backward()
    assert net.generators.block.out.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", REFINERS)
def test_empty_canvas_does_not_break_the_update(arch):
    torch.manual_seed(0)  # a seed on which refiner-lite's update ran away before the guard
    net = nets.STGAN(2, (60, 80), discriminator=False, arch=arch)
    torch.nn.init.normal_(net.generators.block.out.weight, std=0.1)
    pred = net(torch.rand(1, 3, 60, 80), torch.zeros(1, 4, 60, 80))
    assert torch.equal(pred.params[-1], torch.zeros(1, 8))  # nothing to move


def test_refiner_model_folder_round_trip(tmp_path):
    folder = random_model(tmp_path / "r", warps=3, std=1e-2, arch="refiner")
    loaded = modelstore.load(str(folder))
    assert loaded.config.arch == "refiner" and isinstance(loaded.net.generators, refiner.Refiner)
    inputs = parity.example_inputs((120, 160))
    params, _ = parity.reference(loaded.net, *inputs)
    assert params.shape == (3, 4, 8) and not torch.equal(params[:, -1], params[:, 0])
    cfg = (folder / "config.yaml").read_text().replace("arch: refiner", "arch: paper")
    (folder / "config.yaml").write_text(cfg)
    with pytest.raises(StganError, match="does not match config.yaml"):
        modelstore.load(str(folder))


@pytest.mark.parametrize("arch", REFINERS)
def test_export_predictor_matches_the_model(arch):
    """The exportable loop (series exponential) is the model's own loop: same corners."""
    torch.manual_seed(0)
    net = nets.STGAN(3, (120, 160), discriminator=True, arch=arch).eval()
    torch.nn.init.normal_(net.generators.block.out.weight, std=1e-2)
    inputs = parity.example_inputs((120, 160))
    pred = export.Predictor(net, 3)
    assert not any(n.startswith("net.discriminator") for n, _ in pred.named_parameters())
    with torch.no_grad():
        got = pred(*inputs)
    expected = parity.reference(net, *inputs, iterations=3)
    assert parity.corner_distance(got, expected, inputs, (120, 160)) < parity.TOLERANCE_PX


def test_window_samples_like_opencv():
    """The refiners' window (object-frame features, the crop) is an affine resampling of the frame:
    OpenCV's warpAffine with the same map (pixel centres, bilinear, zeros outside) gives the same pixels."""
    rng = np.random.default_rng(0)
    img = rng.random((60, 80, 3))
    center, half = torch.tensor([[0.1, -0.2]], dtype=torch.float64), torch.tensor([[0.3, 0.45]], dtype=torch.float64)
    got = refiner.window(torch.from_numpy(img).permute(2, 0, 1)[None], center, half, size=16)[0].permute(1, 2, 0).numpy()
    # window pixel (u, v) -> canonical center + half * ((u + 0.5) / 8 - 1) -> frame pixel
    pix_from_canon = geometry.pixel_from_canon((60, 80))
    canon_from_win = np.array([[half[0, 0] / 8, 0, center[0, 0] + half[0, 0] * (0.5 / 8 - 1)],
                               [0, half[0, 1] / 8, center[0, 1] + half[0, 1] * (0.5 / 8 - 1)], [0, 0, 1]])
    frame_from_win = (pix_from_canon @ canon_from_win)[:2]
    expected = cv2.warpAffine(img, frame_from_win, (16, 16), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inner = (slice(2, -2), slice(2, -2))  # OpenCV and grid_sample blend the border pixel differently
    assert np.abs(got[inner] - expected[inner]).max() < 1e-6
