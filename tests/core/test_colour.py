"""The colour changes of harmonization data, the statistics baseline and the predicted transform."""

import numpy as np
import pytest
import torch

from stgan_cli.core import colour, colour_map
from stgan_cli.model.harmonizer import apply_torch


def _photo(seed=0, size=(40, 50)):
    rng = np.random.default_rng(seed)
    img = rng.uniform(0.2, 0.8, (*size, 3)).astype(np.float32)
    mask = np.zeros(size, bool)
    mask[10:30, 12:38] = True
    return img, mask


def test_a_change_touches_only_the_object():
    img, mask = _photo()
    out = colour.apply_change(img, mask, {"exposure": 0.5, "white_balance": [0.1, -0.05], "contrast": 1.2,
                                          "saturation": 0.7, "gamma": 1.1})
    assert np.array_equal(out[~mask], img[~mask])
    assert np.abs(out[mask] - img[mask]).mean() > 0.02
    assert np.array_equal(colour.apply_change(img, mask, {}), img)


def test_exposure_is_a_gain_in_linear_light():
    img, mask = _photo()
    out = colour.apply_change(img, mask, {"exposure": 1.0})
    want = np.clip(colour.srgb_to_linear(img[mask]) * 2, 0, 1)
    np.testing.assert_allclose(colour.srgb_to_linear(out[mask]), want, atol=1e-5)
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(colour.linear_to_srgb(colour.srgb_to_linear(x)), x, atol=1e-6)


def test_saturation_zero_is_grey_and_white_balance_tints():
    img, mask = _photo()
    grey = colour.apply_change(img, mask, {"saturation": 0.0})[mask]
    assert np.abs(grey - grey.mean(1, keepdims=True)).max() < 1e-5
    warm = colour.apply_change(img, mask, {"white_balance": [0.2, 0.0]})[mask]
    assert (warm[:, 0] >= img[mask][:, 0] - 1e-6).all() and (warm[:, 2] <= img[mask][:, 2] + 1e-6).all()


def test_a_full_transfer_gives_the_object_the_targets_lab_statistics():
    img, mask = _photo()
    target = (np.array([55.0, 10.0, -8.0], np.float32), np.array([6.0, 4.0, 5.0], np.float32))
    out = colour.apply_change(img, mask, {"transfer": {"mean": target[0].tolist(), "std": target[1].tolist(),
                                                       "strength": 1.0}})
    mean, std = colour.lab_stats(out, mask)
    np.testing.assert_allclose(mean, target[0], atol=0.5)
    np.testing.assert_allclose(std, target[1], atol=0.5)


def test_drawn_changes_are_visible_and_reproducible():
    img, mask = _photo()
    other = (np.array([40.0, 5.0, 5.0]), np.array([10.0, 5.0, 5.0]))
    a = colour.draw_visible_change(img, mask, np.random.default_rng(3), other)
    b = colour.draw_visible_change(img, mask, np.random.default_rng(3), other)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    assert colour.fmse(a[1], img, mask) >= colour.MIN_FMSE


def test_statistics_transfer_matches_the_ring_around_the_object():
    img, mask = _photo()
    img[mask] = img[mask] * 0.3  # a dark object on a mid-grey photo
    out = colour.stats_transfer(img, mask)
    ring = colour.ring(mask)
    assert ring.any() and not (ring & mask).any()
    np.testing.assert_allclose(colour.lab_stats(out, mask)[0], colour.lab_stats(img, ring)[0], atol=0.5)
    assert np.array_equal(out[~mask], img[~mask])


def test_measures_on_the_0_255_scale():
    a = np.zeros((4, 4, 3), np.float32)
    b = a + 1 / 255
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    assert colour.mse(a, b) == pytest.approx(1.0)
    assert colour.fmse(a, b, mask) == pytest.approx(1.0)
    assert colour.psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2))


def test_the_zero_transform_changes_nothing():
    x = np.random.default_rng(0).random((30, 3)).astype(np.float32)
    np.testing.assert_allclose(colour_map.apply(x, np.zeros(colour_map.N_PARAMS)), x, atol=1e-6)


def test_a_curve_through_the_knots_is_followed_exactly():
    theta = np.zeros(colour_map.N_PARAMS, np.float32)
    k = colour_map.KNOTS
    theta[:3 * k] = np.tile(colour_map.GRID ** 2 - colour_map.GRID, 3)  # curve1: y = x^2 at the knots
    x = np.tile(colour_map.GRID[:, None], (1, 3))
    np.testing.assert_allclose(colour_map.apply(x, theta), x ** 2, atol=1e-6)


def test_numpy_and_torch_transforms_agree():
    rng = np.random.default_rng(1)
    theta = rng.normal(0, 0.1, (3, colour_map.N_PARAMS)).astype(np.float32)
    x = rng.random((3, 3, 7, 9)).astype(np.float32)
    got = apply_torch(torch.from_numpy(x), torch.from_numpy(theta)).numpy()
    want = np.stack([colour_map.apply(x[i].transpose(1, 2, 0), theta[i]).transpose(2, 0, 1) for i in range(3)])
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_premultiplied_cutouts_keep_their_alpha():
    rgba = np.random.default_rng(2).random((5, 6, 4)).astype(np.float32)
    rgba[..., :3] *= rgba[..., 3:]
    theta = np.zeros(colour_map.N_PARAMS, np.float32)
    theta[3 * colour_map.KNOTS + 9:3 * colour_map.KNOTS + 12] = 0.1  # offset
    out = colour_map.apply_premultiplied(rgba, theta)
    assert np.array_equal(out[..., 3], rgba[..., 3])
    colour_in = rgba[..., :3] / rgba[..., 3:]
    np.testing.assert_allclose(out[..., :3] / rgba[..., 3:], colour_map.apply(colour_in, theta), atol=1e-5)


def test_transform_gradients():
    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.uniform(0.05, 0.95, (2, 3, 3, 4))).double()
    theta = torch.from_numpy(rng.normal(0, 0.02, (2, colour_map.N_PARAMS))).double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: apply_torch(x, t), (theta,), eps=1e-6, atol=1e-4)
