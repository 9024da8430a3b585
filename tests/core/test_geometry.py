import cv2
import numpy as np
import pytest
import scipy.linalg
import torch

from stgan_cli.core import geometry as g


def random_params(n, scale=0.1, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=gen, dtype=dtype) * scale


def test_sl3_order_matches_paper():
    p = torch.arange(1, 9, dtype=torch.float64)
    a = g.sl3_matrix(p)
    expected = torch.tensor([[3, 2, 1], [6, -3 - 7, 5], [4, 8, 7]], dtype=torch.float64)
    assert torch.equal(a, expected)
    assert a.trace() == 0
    assert torch.equal(g.sl3_params(a), p)


def test_translation_params_translate():
    p = torch.zeros(8, dtype=torch.float64)
    p[0], p[4] = 0.2, -0.3  # p1, p5
    m = g.warp_matrix(p).numpy()
    np.testing.assert_allclose(m, [[1, 0, 0.2], [0, 1, -0.3], [0, 0, 1]], atol=1e-12)


def test_expm_matches_scipy_and_has_unit_determinant():
    p = random_params(16, 0.5)
    ours = g.warp_matrix(p).numpy()
    for pi, mi in zip(p, ours):
        np.testing.assert_allclose(mi, scipy.linalg.expm(g.sl3_matrix(pi).numpy()), rtol=1e-10, atol=1e-12)
        assert np.linalg.det(mi) == pytest.approx(1.0, abs=1e-10)


def test_additive_composition_and_inverse():
    p = random_params(4, 0.3, seed=1)
    np.testing.assert_allclose(
        (g.warp_matrix(p) @ g.warp_matrix(-p)).numpy(), np.broadcast_to(np.eye(3), (4, 3, 3)), atol=1e-12)
    assert torch.equal(g.compose(p, p), 2 * p)


@pytest.mark.parametrize("size", [(120, 160), (7, 5), (1080, 1920)])
def test_frames_are_inverse_and_pin_edges(size):
    h, w = size
    c = g.canon_from_pixel(size)
    np.testing.assert_allclose(c @ g.pixel_from_canon(size), np.eye(3), atol=1e-12)
    corners = g.apply_homography(c, g.box_corners(size))
    np.testing.assert_allclose(corners, [[-1, -1], [1, -1], [1, 1], [-1, 1]], atol=1e-12)
    grid = g.canonical_grid(size, torch.float64).numpy()
    ys, xs = np.mgrid[0:h, 0:w]
    np.testing.assert_allclose(grid.reshape(-1, 2), g.apply_homography(c, np.stack([xs.ravel(), ys.ravel()], 1)),
                               atol=1e-12)


def test_rescale_homography_matches_cv2_resize():
    rng = np.random.default_rng(0)
    img = rng.random((60, 80)).astype(np.float32)
    big = cv2.resize(img, (160, 120), interpolation=cv2.INTER_LINEAR)
    m = g.rescale_homography((60, 80), (120, 160))
    warped = cv2.warpPerspective(img, m, (160, 120), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Interior only: cv2.resize clamps at the border, which is not a homography.
    np.testing.assert_allclose(warped[2:-2, 2:-2], big[2:-2, 2:-2], atol=1e-4)


@pytest.mark.parametrize("seed", range(4))
def test_warp_image_matches_cv2_warp_perspective(seed):
    size = (48, 64)
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((*size, 3)).astype(np.float64), (0, 0), 2)
    p = random_params(1, 0.1, seed=seed)
    src_from_dst = g.warp_matrix(p)
    out = g.warp_image(torch.from_numpy(img).permute(2, 0, 1)[None], src_from_dst)[0].permute(1, 2, 0).numpy()
    dst_from_src_pix = g.pixel_from_canon(size) @ np.linalg.inv(src_from_dst[0].numpy()) @ g.canon_from_pixel(size)
    ref = cv2.warpPerspective(img, dst_from_src_pix, size[::-1], flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
    # Compare where both sample well inside the source (borders differ in how they fade).
    src_pts = g.apply_homography(np.linalg.inv(dst_from_src_pix), np.stack(
        np.meshgrid(np.arange(size[1]), np.arange(size[0])), -1).reshape(-1, 2)).reshape(*size, 2)
    inside = ((src_pts[..., 0] > 1) & (src_pts[..., 0] < size[1] - 2) &
              (src_pts[..., 1] > 1) & (src_pts[..., 1] < size[0] - 2))
    assert inside.mean() > 0.5
    np.testing.assert_allclose(out[inside], ref[inside], atol=2e-3)


def test_warp_gradcheck_float64():
    torch.manual_seed(0)
    img = torch.rand(1, 4, 6, 8, dtype=torch.float64)
    p = (torch.randn(1, 8, dtype=torch.float64) * 0.05).requires_grad_()
    assert torch.autograd.gradcheck(lambda q, im: g.warp_foreground(im, q), (p, img.requires_grad_()))


def test_expm_gradcheck_float64():
    p = random_params(3, 0.3).requires_grad_()
    assert torch.autograd.gradcheck(g.warp_matrix, (p,))


def test_zero_params_are_identity_warp():
    img = torch.rand(2, 4, 12, 16, dtype=torch.float64)
    out = g.warp_foreground(img, torch.zeros(2, 8, dtype=torch.float64))
    torch.testing.assert_close(out, img)


def test_full_resolution_transfer_moves_points_like_the_canvas():
    """A point of the cut-out lands where the low-res canvas shows it, at any resolution."""
    p = random_params(1, 0.1, seed=3)[0]
    bg_size = (1080, 1920)
    bg_from_fg0 = np.array([[2.0, 0.1, 300], [0.05, 1.5, 200], [0, 0, 1]])
    full = g.bg_from_fg_pixels(p, bg_size, bg_from_fg0)
    pts = np.array([[10.0, 20.0], [150.0, 250.0], [190.0, 5.0]])
    # Through the low-res canvas: cut-out -> canvas (low res) -> moved by inverse sampling map.
    low = (120, 160)
    lowcanvas_from_fg = g.rescale_homography(bg_size, low) @ bg_from_fg0
    moved = g.pixel_from_canon(low) @ np.linalg.inv(g.warp_matrix(p).numpy()) @ g.canon_from_pixel(low)
    via_low = g.apply_homography(g.rescale_homography(low, bg_size) @ moved @ lowcanvas_from_fg, pts)
    np.testing.assert_allclose(g.apply_homography(full, pts), via_low, rtol=1e-9)


def test_full_resolution_transfer_needs_no_inverse_and_refuses_a_diverged_warp():
    """The transfer exponentiates -A(p) instead of inverting expm(A(p)): a large warp (which made the
    inverse singular in float64) still maps the object; one beyond float64 is a one-line error."""
    from stgan_cli.core import frames
    from stgan_cli.errors import StganError

    p = np.array([0.0, 0, 30.0, 0, 0, 0, -10.0, 0])  # expm(A) has entries near e^40: its inverse is singular
    m = frames.bg_from_fg_pixels(p, (480, 640), np.eye(3))
    assert np.all(np.isfinite(m))
    np.testing.assert_allclose(m, np.linalg.inv(frames.bg_from_fg_pixels(-p, (480, 640), np.eye(3))), rtol=1e-6)
    with pytest.raises(StganError, match="diverged"):
        frames.bg_from_fg_pixels(np.full(8, 1e6), (480, 640), np.eye(3))


def test_params_showing_a_similarity_give_it_back():
    from stgan_cli.composite import faces
    from stgan_cli.core import frames

    rng = np.random.default_rng(0)
    for _ in range(20):
        src, dst = rng.normal(0, 0.5, (2, 2)), rng.normal(0, 0.5, (2, 2))
        s = faces.similarity(src, dst)
        p = frames.params_showing_similarity(s)
        shown = frames.expm(-frames.sl3_matrix(p))
        np.testing.assert_allclose(shown / shown[2, 2], s, atol=1e-9)
    np.testing.assert_allclose(frames.params_showing_similarity(np.eye(3)), 0, atol=1e-15)
    with pytest.raises(ValueError):
        frames.params_showing_similarity(np.array([[1.0, 0.2, 0], [0, 1, 0], [0, 0, 1]]))  # a shear
