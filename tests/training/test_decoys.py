"""Decoy holes (training/decoys.py, photo_eval.with_decoys): the filled hole of a real pair is no
cue to the truth once a second one sits at the truth's mirror about the start."""

from pathlib import Path

import numpy as np
import pytest
import torch

from stgan_cli.composite import compositing
from stgan_cli.core import geometry
from stgan_cli.files import imageio
from stgan_cli.evaluation import photos as photo_eval
from stgan_cli.data import photos
from stgan_cli.training import decoys

from conftest import scene

ROOT = Path(__file__).resolve().parents[2]


def centroid(mask) -> np.ndarray:
    ys, xs = np.nonzero(np.asarray(mask))
    return np.array([xs.mean(), ys.mean()])


def test_push_pull_keeps_known_pixels_and_fills_from_them():
    img = torch.rand(2, 3, 30, 41)
    hole = torch.zeros(2, 1, 30, 41, dtype=torch.bool)
    hole[0, :, 5:20, 10:30] = True
    hole[1] = True  # nothing known: no NaN
    out = decoys.push_pull_fill(img, hole)
    assert torch.equal(out[~hole.expand_as(img)], img[~hole.expand_as(img)]) and torch.isfinite(out).all()
    flat = torch.full((1, 3, 30, 41), 0.3)
    flat[:, :, 10:15, 10:15] = 1.0  # what the hole hides does not leak into the fill
    filled = decoys.push_pull_fill(flat, hole[:1])
    assert torch.allclose(filled, torch.full_like(flat, 0.3), atol=1e-6)


def test_decoy_sits_at_the_mirror_of_the_truth_about_the_start():
    bg = torch.full((1, 3, 120, 160), 0.5)
    bg[..., 1] = 0.0  # a line the fill must not erase where the decoy does not reach
    fg = torch.zeros(1, 4, 120, 160)
    fg[:, :, 50:70, 60:90] = 1.0
    p0 = torch.tensor([[0.3, 0.0, 0.05, 0.0, -0.2, 0.0, 0.0, 0.0]])  # a shift and a little scale
    out = decoys.mirror_decoys(bg, fg, p0, torch.tensor([True]), dilate=0)
    changed = (out - bg).abs().sum(1)[0] > 1e-6
    start = geometry.warp_foreground(fg, p0)[0, 3] > 0.5
    truth = centroid(fg[0, 3] > 0.5)
    # the decoy is the start's move applied once more: truth -> start -> decoy in equal steps
    assert np.allclose(centroid(changed), 2 * centroid(start) - truth, atol=1.5)
    assert changed.sum() > 0.5 * (fg[0, 3] > 0.5).sum()
    off = decoys.mirror_decoys(bg, fg, p0, torch.tensor([False]))
    assert torch.equal(off, bg)
    huge = decoys.mirror_decoys(bg, fg, torch.tensor([[0.0, 0.0, -1.0, 0, 0, 0, -1.0, 0]]), torch.tensor([True]))
    assert torch.equal(huge, bg)  # a decoy over most of the frame would erase the scene: left out


def test_real_pairs_get_decoys_in_training_and_rooms_do_not(tmp_path):
    from stgan_cli.data import synth_indoor
    from stgan_cli.training import batches, config

    rooms, real = tmp_path / "rooms", tmp_path / "real"
    synth_indoor.generate(rooms, 6, seed=0, size=(48, 64), split=0.5, workers=1)
    photo = scene((96, 128), seed=1)
    mask = np.zeros((96, 128), np.uint8)
    mask[30:60, 50:80] = 1
    background, canvas = photos.make_pair(photo, mask)
    for split in ("train", "test"):
        for sub in ("backgrounds", "objects"):
            (real / split / sub).mkdir(parents=True)
        imageio.write_image(real / split / "backgrounds" / "a.png", background)
        imageio.write_image(real / split / "objects" / "a.png", canvas)
    (real / "summary.json").write_text('{"settings": {"fill": "pyramid"}}')  # what from-photos writes
    sets = ["perturb.decoy_share=1.0", "perturb.box_share=1.0", "perturb.box_std=0.3"]
    smoke = ROOT / "configs" / "smoke.yaml"
    for folder, has_holes in ((real, True), (rooms, False)):
        cfg = config.load(smoke, [f"data.path={folder}", *sets])
        b = batches.Batches(cfg, tuple(cfg.model.image_size), "cpu")
        assert b.holes.all() == has_holes and b.holes.any() == has_holes
        bg, _, p0, _ = b.train(8)
        stored = [torch.from_numpy(x) for x in b.data.batch(np.arange(len(b.data)))[0]]
        unchanged = [any(torch.equal(x, s) for s in stored) for x in bg]
        assert not any(unchanged) if has_holes else all(unchanged)
    cfg = config.load(smoke, [f"data.path={rooms}", f"data.mix=[{real}]", *sets])
    assert batches.Batches(cfg, tuple(cfg.model.image_size), "cpu").holes.sum() == 1  # one real pair in the mix


def test_eval_decoys_mirror_the_start_at_full_resolution():
    size, box = (300, 400), (100, 50, 200, 250)
    canvas = np.zeros((*size, 4), np.uint8)
    canvas[box[1]:box[3], box[0]:box[2]] = (200, 100, 50, 255)
    c = photo_eval.Case("c", scene(size), compositing.make_cutout(imageio.Picture(canvas, None, "PNG", "o.png")))
    shift = compositing.translation(40, -10)
    same, moved = photo_eval.with_decoys([c, c], [np.eye(3), shift])
    assert same is c  # a start at the truth: its mirror is the hole itself
    changed = np.abs(moved.bg.astype(int) - c.bg).sum(2) > 0
    assert np.allclose(centroid(changed), [149.5 + 80, 149.5 - 20], atol=1.0)
    assert not changed[box[1]:box[3], box[0]:box[0] + 40].any()  # the truth's own place is untouched


def test_the_detail_batch_is_the_frame_batch_at_a_higher_resolution(tmp_path):
    """model.detail: real pairs are read at that resolution, rooms upsampled; mirroring and decoys
    land on the same pixels of both (area-downsampled, the detail batch is the frame's)."""
    from stgan_cli.data import synth_indoor
    from stgan_cli.training import batches, config

    rooms, real = tmp_path / "rooms", tmp_path / "real"
    synth_indoor.generate(rooms, 4, seed=0, size=(48, 64), split=0.5, workers=1)
    for split in ("train", "test"):
        for sub in ("backgrounds", "objects"):
            (real / split / sub).mkdir(parents=True)
        for k in range(3):
            mask = np.zeros((96, 128), np.uint8)
            mask[20 + 8 * k:60, 30:70 + 10 * k] = 1
            background, canvas = photos.make_pair(scene((96, 128), seed=k), mask)
            imageio.write_image(real / split / "backgrounds" / f"{k}.png", background)
            imageio.write_image(real / split / "objects" / f"{k}.png", canvas)
    (real / "summary.json").write_text('{"settings": {"fill": "pyramid"}}')
    cfg = config.load(ROOT / "configs" / "smoke.yaml", [
        f"data.path={rooms}", f"data.mix=[{real}]", "data.mix_share=0.7", "model.arch=refiner-crop", "model.detail=2",
        "perturb.decoy_share=1.0", "perturb.box_share=1.0", "perturb.box_std=0.3", "perturb.flip=0.5"])
    b = batches.Batches(cfg, tuple(cfg.model.image_size), "cpu")
    assert [p is not None for p in b.detail.parts] == [False, True]  # rooms are made at the frame's size
    bg, fg, p0, real_img, bg_d, fg_d = b.train(16)
    assert bg_d.shape[-2:] == fg_d.shape[-2:] == (96, 128)
    down = lambda t: torch.nn.functional.avg_pool2d(t, 2)  # noqa: E731
    assert (down(fg_d) - fg).abs().mean((1, 2, 3)).max() < 0.005  # the same object, mirrored alike
    err = (down(bg_d) - bg).abs().mean(1).flatten(1)
    assert err.quantile(0.98, 1).max() < 0.03 and err.max() < 0.1  # the same photo, decoys where the frame's are


def test_decoys_carried_up_replace_what_the_hole_covers_and_nothing_else():
    detail = torch.rand(2, 3, 64, 80)
    frame = torch.nn.functional.avg_pool2d(detail, 4)
    hole = torch.zeros(2, 1, 16, 20, dtype=torch.bool)
    hole[0, :, 4:9, 5:12] = True
    filled = decoys.push_pull_fill(frame, hole)
    out = decoys.carry_up(detail, filled, hole)
    assert torch.equal(out[1], detail[1])  # no hole, no change
    up = torch.nn.functional.interpolate(filled, size=(64, 80), mode="bilinear", align_corners=False)
    assert torch.equal(out[0, :, 18:34, 22:46], up[0, :, 18:34, 22:46])  # inside: the fill
    assert torch.equal(out[0, :, :12], detail[0, :, :12]) and torch.equal(out[0, :, :, 52:], detail[0, :, :, 52:])
