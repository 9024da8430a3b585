import cv2
import numpy as np
import pytest
import torch

from stgan_cli.composite import compositing as comp
from stgan_cli.core import geometry
from stgan_cli.model import modelstore
from stgan_cli.files.imageio import Picture

from conftest import cutout_rgba, scene


def picture(pixels, path="mem.png"):
    return Picture(pixels, None, "PNG", path)


def iou(a, b):
    return np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1)


def centroid(alpha):
    ys, xs = np.mgrid[0:alpha.shape[0], 0:alpha.shape[1]]
    return np.array([(xs * alpha).sum(), (ys * alpha).sum()]) / alpha.sum()


def lowres_alpha(cutout, bg, bg_from_fg, p, size=(120, 160)):
    bg_low, fg_low = comp.lowres_inputs(bg, cutout, bg_from_fg, size)
    fg_t = torch.from_numpy(fg_low).permute(2, 0, 1)[None].double()
    warped = geometry.warp_foreground(fg_t, torch.as_tensor(p, dtype=torch.float64)[None])
    low = geometry.composite(torch.from_numpy(bg_low).permute(2, 0, 1)[None].double(), warped)
    return warped[0, 3].numpy(), low[0].permute(1, 2, 0).numpy()


# --- the central property --------------------------------------------------------------------

@pytest.mark.parametrize("bg_size", [(480, 640), (1080, 1920), (1728, 2592), (1000, 600), (512, 512)])
@pytest.mark.parametrize("seed", range(4))
def test_full_resolution_matches_what_the_network_saw(bg_size, seed):
    rng = np.random.default_rng(seed)
    cutout = comp.make_cutout(picture(cutout_rgba((300 + 40 * seed, 220))))
    bg = scene(bg_size, seed)
    border = lambda a: max(a[0].max(), a[-1].max(), a[:, 0].max(), a[:, -1].max())
    # The object must stay inside the frame, before and after the warp: the low-res canvas clips
    # what hangs outside before warping, the full-resolution path keeps the whole cut-out, and the
    # comparison below is about registration, not clipping.  Draws that leave the frame are redrawn.
    for _ in range(50):
        init = comp.place_scaled(cutout, bg_size, (rng.uniform(0.35, 0.65), rng.uniform(0.4, 0.6)),
                                 rng.uniform(0.25, 0.45))
        p = rng.normal(0, 0.1, 8)
        p[[3, 7]] *= 0.3  # keep the perspective terms well-conditioned
        _, canvas = comp.lowres_inputs(bg, cutout, init, (120, 160))
        alpha_low, comp_low = lowres_alpha(cutout, bg, init, p)
        if border(canvas[..., 3]) == 0 and border(alpha_low) == 0:
            break
    else:
        pytest.fail("no draw kept the object inside the frame")
    full, alpha_full = comp.composite(bg, cutout, geometry.bg_from_fg_pixels(p, bg_size, init))
    alpha_small = cv2.resize(alpha_full, (160, 120), interpolation=cv2.INTER_AREA)
    assert iou(alpha_small > 0.5, alpha_low > 0.5) >= 0.97
    # Sub-pixel registration: a half-pixel frame mistake moves the centroid by ~0.5 low-res pixels.
    np.testing.assert_allclose(centroid(alpha_small), centroid(alpha_low), atol=0.15)
    full_small = cv2.resize(full.astype(np.float32) / 255, (160, 120), interpolation=cv2.INTER_AREA)
    assert np.abs(full_small - comp_low).mean() < 0.02


def test_full_resolution_matches_the_models_own_lowres_output(tmp_path):
    from conftest import random_model

    model = modelstore.load(str(random_model(tmp_path / "m", warps=3, std=1e-3)))
    cutout = comp.make_cutout(picture(cutout_rgba()))
    bg_size = (1080, 1920)
    bg = scene(bg_size)
    init = comp.place_scaled(cutout, bg_size, (0.5, 0.55), 0.3)
    bg_low, fg_low = comp.lowres_inputs(bg, cutout, init, model.config.image_size)
    to_t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]
    with torch.no_grad():
        pred = model.net(to_t(bg_low), to_t(fg_low))
    p = pred.params[-1][0].double().numpy()
    assert np.abs(p).max() > 0.02  # the generators really moved the object
    _, alpha_full = comp.composite(bg, cutout, geometry.bg_from_fg_pixels(p, bg_size, init))
    alpha_small = cv2.resize(alpha_full, (160, 120), interpolation=cv2.INTER_AREA)
    assert iou(alpha_small > 0.5, pred.warped[-1][0, 3].numpy() > 0.5) >= 0.97


# --- cut-outs and placement ----------------------------------------------------------------

def test_cutout_premultiplies_and_crops():
    rgba = cutout_rgba((100, 80))
    c = comp.make_cutout(picture(rgba))
    ys, xs = np.nonzero(rgba[..., 3])
    assert c.crop_origin == (xs.min(), ys.min())
    assert c.rgba.shape[:2] == (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    a = rgba[..., 3].astype(np.float32) / 255
    crop = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    np.testing.assert_allclose(c.rgba[..., 0], (rgba[..., 0] / 255 * a)[crop], atol=1e-6)


def test_mask_replaces_alpha_and_sizes_must_match():
    rgb = cutout_rgba((60, 50))[..., :3]
    mask = np.zeros((60, 50, 3), np.uint8)
    mask[10:40, 5:20] = 255
    c = comp.make_cutout(picture(rgb, "fg.jpg"), picture(mask, "m.jpg"))
    assert c.rgba.shape[:2] == (30, 15) and c.crop_origin == (5, 10)
    with pytest.raises(comp.StganError, match="m.jpg: mask is 49x60"):
        comp.make_cutout(picture(rgb, "fg.jpg"), picture(mask[:, :49], "m.jpg"))
    with pytest.raises(comp.StganError, match="empty"):
        comp.make_cutout(picture(rgb), picture(np.zeros((60, 50), np.uint8), "zero.png"))
    with pytest.raises(comp.StganError, match="no alpha"):
        comp.make_cutout(picture(rgb, "fg.jpg"))


def test_box_placement_fits_inside_keeping_aspect():
    c = comp.make_cutout(picture(np.full((100, 50, 4), 255, np.uint8)))
    m = comp.place_in_box(c, (100, 100, 300, 200))
    corners = geometry.apply_homography(m, geometry.box_corners((100, 50)))
    # libcom boxes are slices bg[y1:y2, x1:x2]: their outer edges sit half a pixel before x1 and x2.
    np.testing.assert_allclose(corners, np.array([[175, 100], [225, 100], [225, 200], [175, 200]]) - 0.5,
                               atol=1e-9)


def test_box_outside_background_is_refused():
    comp.check_box((10, 10, 50, 50), (100, 100))
    with pytest.raises(comp.StganError, match="outside the background"):
        comp.check_box((200, 10, 250, 50), (100, 100))
    with pytest.raises(comp.UsageError):
        comp.check_box((50, 10, 10, 50), (100, 100))


# --- blending --------------------------------------------------------------------------------

def test_blend_is_premultiplied_over_and_touches_only_the_object():
    bg = scene((200, 300))
    rgba = np.zeros((50, 40, 4), np.uint8)
    rgba[...] = (200, 10, 10, 128)
    c = comp.make_cutout(picture(rgba))
    out, alpha = comp.composite(bg, c, comp.translation(100, 60))
    a = 128 / 255
    expected = np.round(np.array([200, 10, 10]) / 255 * a * 255 + bg[80, 120] * (1 - a))
    np.testing.assert_allclose(out[80, 120], expected, atol=1)
    assert np.array_equal(out[:50], bg[:50]) and np.array_equal(out[120:], bg[120:])
    assert alpha[80, 120] == pytest.approx(a, abs=1e-3) and alpha[0, 0] == 0


def test_sixteen_bit_and_rgba_backgrounds_keep_their_format():
    bg16 = (scene((64, 64)).astype(np.uint16) * 257)
    c = comp.make_cutout(picture(np.full((10, 10, 4), 255, np.uint8)))
    out, _ = comp.composite(bg16, c, comp.translation(20, 20))
    assert out.dtype == np.uint16 and out[25, 25, 0] == 65535
    bga = np.zeros((64, 64, 4), np.uint8)  # fully transparent background
    out, _ = comp.composite(bga, c, comp.translation(20, 20))
    assert out.shape == (64, 64, 4) and out[25, 25, 3] == 255 and out[0, 0, 3] == 0


def test_strong_shrink_is_antialiased():
    stripes = np.zeros((800, 800, 4), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: plain bilinear at 1/16 scale aliases them
    stripes[..., 3] = 255
    c = comp.make_cutout(picture(stripes))
    out, _ = comp.composite(np.zeros((100, 100, 3), np.uint8), c, np.diag([1 / 16, 1 / 16, 1.0]))
    inner = out[5:45, 5:45, 0].astype(float)
    assert abs(inner.mean() - 127.5) < 8 and inner.std() < 10


def test_object_entirely_outside_leaves_background():
    bg = scene((50, 50))
    c = comp.make_cutout(picture(np.full((10, 10, 4), 255, np.uint8)))
    out, alpha = comp.composite(bg, c, comp.translation(500, 500))
    assert np.array_equal(out, bg) and alpha.max() == 0


def test_degenerate_warp_is_refused():
    c = comp.make_cutout(picture(np.full((10, 10, 4), 255, np.uint8)))
    with pytest.raises(comp.StganError, match="degenerate"):
        comp.composite(scene((50, 50)), c, np.array([[1, 0, 0], [0, 1, 0], [-0.5, 0, 1.0]]))
