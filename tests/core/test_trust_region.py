"""The trust region: what a correction may do to the object at inference."""

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from stgan_cli.model.archs import paper
from stgan_cli.core import geometry, trust_region as T
from stgan_cli.model import nets
from stgan_cli.cli import app
from stgan_cli.errors import UsageError

from conftest import REALDATA, cutout_rgba, random_model, scene, write_rgb, write_rgba


def as_generators(modules):
    """Stand-in generators, wrapped as the paper's architecture holds its own."""
    gens = torch.nn.ModuleList.__new__(paper.PaperGenerators)
    torch.nn.ModuleList.__init__(gens, modules)
    return gens


def square(cx=50.0, cy=40.0, half=10.0) -> torch.Tensor:
    return torch.tensor([[[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half],
                          [cx - half, cy + half]]], dtype=torch.float64)


def similarity(points, s=1.0, degrees=0.0, shift=(0.0, 0.0)):
    c = points.mean(1, keepdim=True)
    t = math.radians(degrees)
    rot = torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], dtype=torch.float64)
    return (points - c) @ rot.T * s + c + torch.tensor(shift, dtype=torch.float64)


@pytest.mark.parametrize("s,deg,shift", [(1.0, 0.0, (6.0, 8.0)), (1.3, 0.0, (0, 0)), (0.8, 12.0, (0, 0)),
                                         (1.1, -5.0, (2.0, 0))])
def test_measures_of_similarities(s, deg, shift):
    a = square()
    m = T.measure(a, similarity(a, s, deg, shift))
    assert m["move"].item() == pytest.approx(np.hypot(*shift) / 20)  # object size L = 20 px
    assert m["scale"].item() == pytest.approx(s) and m["rotate"].item() == pytest.approx(abs(deg))
    assert m["shape"].item() == pytest.approx(0.0, abs=1e-12)


def test_shape_measures_what_a_similarity_cannot_explain():
    a = square()
    sheared = a.clone()
    sheared[0, :, 0] += 0.3 * (a[0, :, 1] - 40)  # x += 0.3 y: a shear
    squashed = a.clone()
    squashed[0, :, 1] = 40 + 0.5 * (a[0, :, 1] - 40)  # half as tall
    assert T.measure(a, sheared)["shape"].item() > 0.05 and T.measure(a, squashed)["shape"].item() > 0.1


class Pusher(torch.nn.Module):
    """A generator that always asks for the same update."""

    def __init__(self, dp):
        super().__init__()
        self.dp = torch.tensor(dp, dtype=torch.float32)

    def forward(self, bg, fg):
        return self.dp.expand(bg.shape[0], 8)


def canvas(size=(120, 160), box=(60, 40, 100, 80)):
    fg = torch.zeros(1, 4, *size)
    x1, y1, x2, y2 = box
    fg[:, :, y1:y2, x1:x2] = 1.0
    return torch.rand(1, 3, *size), fg


def test_an_update_beyond_the_limits_is_shortened_along_itself():
    net = nets.STGAN(3, (120, 160), discriminator=False)
    net.generators = as_generators([Pusher([0.2, 0, 0, 0, 0.1, 0, 0, 0])] * 3)
    bg, fg = canvas()
    limit = T.TrustRegion(T.Limits(move=0.5, scale=1.2, rotate=5, shape=0.05), (120, 160))
    pred = net(bg, fg, limit=limit)
    assert bool(limit.clamped.all())
    final = pred.params[-1].double()
    free = torch.tensor([[0.6, 0, 0, 0, 0.3, 0, 0, 0]], dtype=torch.float64)
    cos = (final * free).sum() / (final.norm() * free.norm())
    assert cos.item() == pytest.approx(1.0, abs=1e-6)  # the same direction, only shorter
    start, end = (limit.corners(p.double(), limit.boxes) for p in (pred.params[0], pred.params[-1]))
    m = T.measure(start, end)
    assert 0.49 < m["move"].item() <= 0.5  # as far as allowed, not further
    off = net(bg, fg)
    assert torch.allclose(off.params[-1], free.float())


def test_limits_inside_are_untouched():
    net = nets.STGAN(2, (120, 160), discriminator=False)
    net.generators = as_generators([Pusher([0.01, 0, 0, 0, 0, 0, 0, 0])] * 2)
    bg, fg = canvas()
    limit = T.TrustRegion(T.Limits(), (120, 160))
    pred = net(bg, fg, limit=limit)
    assert not bool(limit.clamped.any()) and torch.allclose(pred.params[-1], torch.tensor([[0.02] + [0.0] * 7]))


def test_default_limits_come_from_the_training_perturbation_per_object():
    tr = T.TrustRegion(T.Limits(perturbation=(0.1, 0.1)), (120, 160))
    small, large = torch.tensor([[-0.1, -0.1, 0.1, 0.1], [-0.6, -0.6, 0.6, 0.6]], dtype=torch.float64)
    limits = tr.resolve(torch.stack([small, large]))
    assert limits["move"][0] > 3 * limits["move"][1]  # the same frame shift is a larger part of a small object
    assert all(limits[k].min() > 0 for k in T.MEASURES)
    tighter = T.TrustRegion(T.Limits(perturbation=(0.05, 0.05)), (120, 160)).resolve(large[None])
    assert tighter["move"][0] < limits["move"][1] and tighter["rotate"][0] < limits["rotate"][1]
    fixed = T.TrustRegion(T.Limits(move=0.2), (120, 160)).resolve(large[None])
    assert fixed["move"].item() == 0.2


@pytest.mark.parametrize("spec,ok", [("default", True), ("off", True), ("move=0.3,scale=1.2", True),
                                     ("move=-1", False), ("scale=0.5", False), ("size=2", False), ("move=nan", False)])
def test_parse(spec, ok):
    if ok:
        T.parse(spec, T.Limits())
    else:
        with pytest.raises(UsageError):
            T.parse(spec, T.Limits())
    assert T.parse("off", T.Limits()) is None and T.parse("rotate=3", T.Limits()).rotate == 3


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_sidecar_reports_the_limits_and_whether_they_acted(tmp_path):
    model = random_model(tmp_path / "m", warps=2, std=0.0)
    from safetensors.torch import load_file, save_file

    weights = load_file(str(model / "model.safetensors"))
    for k in ("generators.0.out.bias", "generators.1.out.bias"):
        weights[k] = torch.tensor([0.5, 0, 0, 0, 0, 0, 0, 0], dtype=torch.float16)  # a big push to the side
    save_file(weights, str(model / "model.safetensors"))
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.png", scene((480, 640)))
    sides = {}
    for spec in ("default", "off", "move=0.1"):
        out = tmp_path / f"{spec.replace('=', '')}.png"
        r = run("composite", fg, bg, "--out", out, "--model", model, "--box", "200,150,440,460", "--save-warp",
                "--trust-region", spec)
        assert r.exit_code == 0, r.stderr
        sides[spec] = json.loads(out.with_suffix(".json").read_text())
    assert sides["off"]["trust_region"] is None and sides["off"]["clamped"] is False
    assert sides["move=0.1"]["clamped"] is True and sides["move=0.1"]["trust_region"]["move"] == 0.1
    assert sides["default"]["trust_region"]["quantile"] == 0.99
    shift = lambda s: abs(np.array(s["homography"])[0, 2] - np.array(s["initial_homography"])[0, 2])
    assert shift(sides["move=0.1"]) < shift(sides["off"])
    r = run("composite", fg, bg, "--out", tmp_path / "x.png", "--trust-region", "move=x")
    assert r.exit_code == 2 and "--trust-region move=x" in r.stderr


@pytest.mark.skipif(not (REALDATA / "segmented").is_dir(), reason="needs ../shared/realdata/segmented (real photos)")
def test_a_person_is_not_squashed_or_rotated_past_the_limits(tmp_path):
    """Out of domain for the shipped indoor model: its correction stays inside the trust region."""
    import csv

    import cv2

    folder = REALDATA / "segmented" / "coco128_seg_goodccccl"
    rows = [r for r in csv.DictReader(open(folder / "instances.csv")) if r["category"] == "person"
            and int(r["area"]) > 20000][:3]
    assert rows
    for r in rows:
        mask = cv2.imread(str(folder / "masks" / r["mask"]), 0)
        ys, xs = np.nonzero(mask > 127)
        box = f"{xs.min()},{ys.min()},{xs.max() + 1},{ys.max() + 1}"
        out = tmp_path / f"{r['mask']}"
        res = run("composite", folder / "images" / r["image"], folder / "images" / r["image"], "--mask",
                  folder / "masks" / r["mask"], "--box", box, "--out", out, "--save-warp")
        assert res.exit_code == 0, res.stderr
        side = json.loads(out.with_suffix(".json").read_text())
        limits = side["trust_region"]
        h0, h1 = np.array(side["initial_homography"]), np.array(side["homography"])
        corners = np.array([[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.max(), ys.max()], [xs.min(), ys.max()]], float)
        a, b = (torch.from_numpy(geometry.apply_homography(h, corners))[None] for h in (h0, h1))
        m = T.measure(a, b)
        assert m["rotate"].item() <= limits["rotate"] + 0.5 and m["shape"].item() <= limits["shape"] + 0.01
        # 1 % either way: the limits hold in the model's 120x160 frame, this measures at full resolution
        assert 1 / (limits["scale"] * 1.01) <= m["scale"].item() <= limits["scale"] * 1.01
