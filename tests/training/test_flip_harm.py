"""Mirrored training pairs (perturb.flip) and the hinge on cases left worse (optim.harm_weight)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from stgan_cli.core import geometry
from stgan_cli.data import synth_indoor as si
from stgan_cli.errors import StganError
from stgan_cli.training import batches, config as C, losses

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"


@pytest.fixture(scope="module")
def rooms(tmp_path_factory):
    root = tmp_path_factory.mktemp("rooms")
    si.generate(root, 8, seed=0, size=(48, 64), split=0.5, workers=1)
    return root


def draw(rooms, *sets, n=16):
    cfg = C.load(SMOKE, [f"data.path={rooms}", *sets])
    return batches.Batches(cfg, tuple(cfg.model.image_size), "cpu"), n


def test_flipped_samples_are_stored_pairs_mirrored_together(rooms):
    b, n = draw(rooms, "perturb.flip=1.0")
    bg, fg, _, real = b.train(n)
    stored_bg, stored_fg = (torch.from_numpy(x) for x in b.data.batch(np.arange(len(b.data))))
    for x, y in zip(bg, fg):
        k = [i for i in range(len(stored_bg)) if torch.equal(x, stored_bg[i].flip(-1))]
        assert k, "every background is a stored one, mirrored"
        assert any(torch.equal(y, stored_fg[i].flip(-1)) for i in k), "its object mirrored with it"
    # the real image D sees is the mirrored pair at its true place
    assert torch.allclose(real, geometry.composite(bg, fg))


def test_flip_off_draws_what_it_drew_before(rooms):
    a, n = draw(rooms)
    b, _ = draw(rooms, "perturb.flip=0.0")
    for x, y in zip(a.train(n), b.train(n)):
        assert torch.equal(x, y)
    half, _ = draw(rooms, "perturb.flip=0.5", n=200)
    bg = half.train(200)[0]
    stored = torch.from_numpy(half.data.batch(np.arange(len(half.data)))[0])
    plain = np.mean([any(torch.equal(x, s) for s in stored) for x in bg])
    assert 0.35 < plain < 0.65


@pytest.mark.parametrize("sets,message", [
    (["perturb.flip=1.5"], "perturb.flip must be a share"),
    (["optim.harm_weight=-1"], "harm_weight must be a finite number >= 0"),
    (["optim.harm_warmup=1.5"], r"harm_warmup must be a share, in \[0, 1\]"),
])
def test_flip_and_harm_are_checked(sets, message):
    with pytest.raises(StganError, match=message):
        C.load(SMOKE, sets)


def test_harm_counts_only_cases_left_worse_than_their_start():
    boxes = torch.tensor([[-0.5, -0.5, 0.5, 0.5], [-0.2, -0.3, 0.4, 0.6]])
    size = (120, 160)
    start = torch.zeros(2, 8)
    start[:, 0] = 0.1  # both start shifted right by 0.1 canonical units (8 px)
    better = start * 0.5
    worse = start * 2.0
    assert float(losses.harm(better, start, boxes, size)) == 0.0
    each = losses.corner_l1_each(worse, boxes, size) - losses.corner_l1_each(start, boxes, size)
    assert torch.allclose(losses.harm(worse, start, boxes, size), each.mean())
    assert torch.allclose(each, torch.full((2,), 0.1 * 160 / 2 / 2), atol=1e-4)  # x only: 8 px, half of |dx|+|dy|
    mixed = torch.stack([better[0], worse[1]])
    assert torch.allclose(losses.harm(mixed, start, boxes, size), each[1] / 2)
    # the start is a constant: only the prediction gets a gradient
    p = worse.clone().requires_grad_(True)
    s = start.clone().requires_grad_(True)
    losses.harm(p, s, boxes, size).backward()
    assert p.grad.abs().sum() > 0 and s.grad is None
    assert torch.isclose(losses.corner_l1(worse, boxes, size), losses.corner_l1_each(worse, boxes, size).mean())


def test_a_relative_hinge_weighs_a_small_object_made_worse_as_much_as_a_large_one():
    size = (120, 160)
    # a 16 x 12 px box and a 64 x 48 px one, both pushed 4 px further right than they started
    boxes = torch.tensor([[-0.1, -0.1, 0.1, 0.1], [-0.4, -0.4, 0.4, 0.4]])
    start, worse = torch.zeros(2, 8), torch.zeros(2, 8)
    worse[:, 0] = 4 / 80  # translation x: 4 px at 160 wide
    plain = [float(losses.harm(worse[i:i + 1], start[i:i + 1], boxes[i:i + 1], size)) for i in range(2)]
    rel = [float(losses.harm(worse[i:i + 1], start[i:i + 1], boxes[i:i + 1], size, relative=True)) for i in range(2)]
    assert abs(plain[0] - plain[1]) < 1e-3  # pixels: the same
    assert rel[0] == pytest.approx(4 * rel[1], rel=1e-3)  # its own size: four times as bad for the small one
    # half-sizes 7 and 28 px (mean of 8 x 6 and 32 x 24) against the 17.5 px reference
    assert rel[1] == pytest.approx(plain[1] * 17.5 / 28, rel=1e-3)
    assert float(losses.harm(start, start, boxes, size, relative=True)) == 0.0


def test_the_hinge_weight_ramps_up_over_its_warmup_then_holds():
    from stgan_cli.training import stages

    o = C.load(SMOKE, ["optim.harm_weight=0.5", "optim.harm_warmup=0.25"]).optim
    stage = stages.Stage("pretrain", 400, start=200)
    w = [stages.harm_weight(stage, 200 + k, o) for k in range(400)]
    assert w[0] == pytest.approx(0.5 / 100) and w[49] == pytest.approx(0.25) and w[99] == 0.5
    assert all(a < b for a, b in zip(w[:100], w[1:100])) and set(w[99:]) == {0.5}
    o.harm_warmup = 0.0
    assert stages.harm_weight(stage, 200, o) == 0.5


def test_a_refiner_run_with_flips_and_the_hinge_trains(rooms, tmp_path):
    from safetensors.torch import load_file

    from stgan_cli.training.trainer import Trainer

    base = [f"data.path={rooms}", "model.arch=refiner", "model.warps=2", "optim.pretrain_rounds=2",
            "optim.corner_loss=l1", "optim.lr_pretrain=1e-3", "stages.pretrain=3", "stages.warp=0",
            "stages.d_pretrain=0", "stages.end_to_end=0", "perturb.truth_share=0.5"]
    runs = {}
    for name, extra in (("plain", []), ("hinge", ["optim.harm_weight=2.0", "perturb.flip=0.5"])):
        out = Trainer(C.load(SMOKE, base + extra), tmp_path / name, "cpu", log=lambda *a: None).run()
        runs[name] = load_file(str(out / "model.safetensors"))
    a, b = runs["plain"], runs["hinge"]
    assert all(torch.isfinite(v.float()).all() for v in b.values())
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_a_pretrained_backbone_gets_its_own_share_of_the_rate():
    from types import SimpleNamespace

    from stgan_cli.model import archs
    from stgan_cli.training.trainer import Trainer

    cfg = C.load(SMOKE, ["optim.optimizer=adamw", "optim.backbone_lr_scale=0.25"])
    host = SimpleNamespace(cfg=cfg, _adam=None)
    lite = archs.build("refiner-lite", 3, (120, 160))
    opt = Trainer._g_optimizer(host, [lite.block], 1e-3)
    scales = sorted(g["lr_scale"] for g in opt.param_groups)
    assert scales == [0.25, 1.0]
    backbone = next(g for g in opt.param_groups if g["lr_scale"] == 0.25)
    assert sum(p.numel() for p in backbone["params"]) == sum(p.numel() for p in lite.block.backbone.parameters())
    crop = archs.build("refiner-crop", 3, (120, 160))
    assert [g["lr_scale"] for g in Trainer._g_optimizer(host, [crop.block], 1e-3).param_groups] == [1.0]
