import json

import numpy as np
import pytest
import scipy.linalg
import torch
from typer.testing import CliRunner

from stgan_cli.core import frames, geometry
from stgan_cli.core import metrics
from stgan_cli.evaluation import synthetic
from stgan_cli.cli import app
from stgan_cli.data import synth_indoor as si

from conftest import random_model

SIZE = (120, 160)


def box_canvas(x1, y1, x2, y2):
    fg = torch.zeros(1, 4, *SIZE)
    fg[:, :, y1:y2, x1:x2] = 1
    return fg


def test_object_boxes_are_canonical_pixel_edges():
    boxes = frames.object_boxes(box_canvas(40, 30, 80, 90)[:, 3])
    torch.testing.assert_close(boxes, torch.tensor([[40 / 80 - 1, 30 / 60 - 1, 80 / 80 - 1, 90 / 60 - 1]]))


@pytest.mark.parametrize("k", [1.0, 3.0, 7.5])
def test_pure_translation_of_k_pixels(k):
    boxes = frames.object_boxes(box_canvas(40, 30, 80, 90)[:, 3])
    p = torch.zeros(1, 8)
    p[0, 0] = -k * 2 / SIZE[1]  # the object shows moved by expm(-A(p)): +k pixels in x
    e = metrics.placement_errors(p, boxes, SIZE)
    assert e["corner_error"].item() == pytest.approx(k, rel=1e-5)
    assert e["shape_error"].item() == pytest.approx(0, abs=1e-5)
    assert e["x_error"].item() == pytest.approx(k, rel=1e-5) and e["y_error"].item() == pytest.approx(0, abs=1e-6)
    assert e["top_error"].item() == pytest.approx(k, rel=1e-5) and e["base_error"].item() == pytest.approx(k, rel=1e-5)


def test_identical_masks_and_disjoint_masks():
    a = box_canvas(10, 10, 50, 50)[:, 3]
    assert metrics.mask_iou(a, a).item() == 1.0
    assert metrics.mask_iou(a, box_canvas(60, 60, 90, 90)[:, 3]).item() == 0.0
    half = box_canvas(10, 10, 30, 50)[:, 3]
    assert metrics.mask_iou(a, half).item() == pytest.approx(0.5)


def test_scaling_about_the_centre_is_shape_error_only():
    """A = diag(a, a, -2a) scales the plane by e^(3a) about the centre: no translation at all."""
    a = 0.05
    boxes = torch.tensor([[-0.5, -0.5, 0.5, 0.5]])
    p = torch.zeros(1, 8)
    p[0, 2], p[0, 6] = a, -2 * a  # p3 = a, p7 = -2a: A[0,0] = a, A[1,1] = -p3 - p7 = a, A[2,2] = -2a
    e = metrics.placement_errors(p, boxes, SIZE)
    corner_distance = np.hypot(0.5 * SIZE[1] / 2, 0.5 * SIZE[0] / 2)  # 50 px from the centre
    expected = corner_distance * abs(np.exp(-3 * a) - 1)  # shown by expm(-A)
    assert e["shape_error"].item() == pytest.approx(expected, rel=1e-5)
    assert e["corner_error"].item() == pytest.approx(expected, rel=1e-5)
    assert e["x_error"].item() < 1e-5 and e["y_error"].item() < 1e-5


def test_eval_end_to_end(tmp_path):
    data = tmp_path / "d"
    si.generate(data, 6, seed=2, size=SIZE, split=1.0, workers=1)
    model = random_model(tmp_path / "m", warps=2, std=1e-3)
    runner = CliRunner()
    r = runner.invoke(app, ["eval", str(model), "--data", str(data / "train"), "--n", "12", "--json", "--report",
                            str(tmp_path / "rep")], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == 12 and set(out) >= {"corner_error", "shape_error", "iou"}
    assert len(out["corner_error"]) == 3 and len(out["iou"]) == 3 and len(out["realism"]) == 3
    assert out["corner_error"][0] > 0 and 0 <= out["iou"][-1] <= 1
    assert out["corner_error_pct"][0] == pytest.approx(out["corner_error"][0] / 2, abs=1e-3)  # diagonal 200 px
    assert (tmp_path / "rep" / "cases.png").exists() and (tmp_path / "rep" / "histogram.png").exists()
    r = runner.invoke(app, ["eval", str(model), "--data", str(data / "train"), "--n", "12"], catch_exceptions=False)
    assert r.exit_code == 0 and "after G2" in r.stdout
    # an identity model with zero perturbation measures zero error and IoU 1
    r = runner.invoke(app, ["eval", str(model), "--data", str(data / "train"), "--n", "4", "--json",
                            "--homography", "0", "--translation", "0"], catch_exceptions=False)
    assert json.loads(r.stdout)["corner_error"][0] == 0 and json.loads(r.stdout)["iou"][0] == 1
    # a set of 6 without --n: all 6, not 200 cycled; with --n 12 the cycling is said
    r = runner.invoke(app, ["eval", str(model), "--data", str(data / "train"), "--json"], catch_exceptions=False)
    assert json.loads(r.stdout)["n"] == 6 and "6 samples" in r.stderr and "cycled" not in r.stderr
    r = runner.invoke(app, ["eval", str(model), "--data", str(data / "train"), "--n", "12", "--json"],
                      catch_exceptions=False)
    assert "holds 6 samples: each is used 2.0 times" in r.stderr


def test_eval_compares_several_models_on_the_same_perturbations(tmp_path):
    data = tmp_path / "d"
    si.generate(data, 4, seed=2, size=SIZE, split=1.0, workers=1)
    still = random_model(tmp_path / "still", warps=1, seed=1)
    moving = random_model(tmp_path / "moving", warps=2, std=5e-3)
    runner = CliRunner()
    args = ["eval", str(still), str(moving), "--data", str(data / "train"), "--n", "8"]
    both = json.loads(runner.invoke(app, args + ["--json"], catch_exceptions=False).stdout)
    assert [m["label"] for m in both["models"]] == ["still", "moving"] and both["n"] == 8
    a, b = both["models"]
    assert a["corner_error"][0] == b["corner_error"][0]  # one set of perturbations for all
    assert a["corner_error"][1] != b["corner_error"][1] and len(b["corner_error"]) == 3
    alone = json.loads(runner.invoke(app, ["eval", str(moving), "--data", str(data / "train"), "--n", "8", "--json"],
                                     catch_exceptions=False).stdout)
    assert alone["corner_error"] == b["corner_error"] and alone["iou"] == b["iou"]
    r = runner.invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0 and "identity" in r.stdout and "moving" in r.stdout
    md = runner.invoke(app, args + ["--markdown"], catch_exceptions=False).stdout.splitlines()
    assert len(md) == 5 and md[2].startswith("| identity") and md[4].startswith("| moving (2 G) |")
    assert f"| {b['corner_error'][-1]:.2f} ({b['corner_error_pct'][-1]:.1f} %) |" in md[4]
    small = random_model(tmp_path / "small", warps=1, image_size=(48, 64))
    r = runner.invoke(app, ["eval", str(still), str(small), "--data", str(data / "train")])
    assert r.exit_code == 1 and "small" in r.stderr and "comparable" in r.stderr


class _Brightness(torch.nn.Module):
    """A critic that finds brighter composites more real: a white object cut off by the image edge
    scores lower than the whole object."""

    def forward(self, x):
        return x.mean(1, keepdim=True)


class _OneBox:
    def batch(self, idx):
        fg = box_canvas(100, 40, 150, 90).numpy()
        return np.zeros((len(idx), 3, *SIZE), np.float32), np.repeat(fg, len(idx), 0)


def test_truth_preferred_counts_scenes_where_the_critic_ranks_the_truth_higher():
    from stgan_cli.model import nets

    net = nets.STGAN(1, SIZE, discriminator=False)
    torch.nn.init.zeros_(net.generators[0].out.weight)
    torch.nn.init.zeros_(net.generators[0].out.bias)  # G_1 leaves every placement as it is
    net.discriminator = _Brightness()
    p0 = torch.zeros(4, 8)
    p0[:2, 0] = -20 * 2 / SIZE[1]  # two scenes move 20 px right, past the edge; two stay at the truth
    out = synthetic.evaluate_batches(net, _OneBox(), [0, 1, 2, 3], p0, SIZE)
    assert out["per_sample"]["truth_preferred"].tolist() == [[1, 1, 0, 0], [1, 1, 0, 0]]
    assert out["means"]["truth_preferred"] == [0.5, 0.5] and "truth_preferred" not in out["medians"]


def test_stretching_about_the_base_moves_only_the_top():
    """An object made 10 % taller about its bottom edge: the two bottom corners stay, the top ones
    move by a tenth of its height; the corner error is their mean."""
    boxes = frames.object_boxes(box_canvas(40, 30, 80, 90)[:, 3])
    x1, y1, x2, y2 = boxes[0].tolist()
    shown = torch.tensor([[1.0, 0, 0], [0, 1.1, -0.1 * y2], [0, 0, 1]], dtype=torch.float64)  # y -> y2 + 1.1 (y - y2)
    a = torch.from_numpy(scipy.linalg.logm(shown.numpy() / np.cbrt(np.linalg.det(shown.numpy()))).real)
    p = geometry.sl3_params(-a[None])  # the canvas is shown by expm(-A(p))
    e = metrics.placement_errors(p.float(), boxes, SIZE)
    height_px = (y2 - y1) * SIZE[0] / 2
    assert e["base_error"].item() == pytest.approx(0, abs=0.05 * height_px * 0.1)
    assert e["top_error"].item() == pytest.approx(0.1 * height_px, rel=0.05)


def test_lenses_against_the_faces_own_eyes():
    """Sideways and downward offsets, spacing and tilt, in the face's eye distances (issue 35)."""
    eyes = torch.tensor([[[40.0, 50.0], [80.0, 50.0]], [[0.0, 0.0], [30.0, 40.0]]])  # iod 40 and 50
    lenses = eyes.clone()
    lenses[0] += torch.tensor([4.0, 2.0])  # 0.1 along, 0.05 down
    u = torch.tensor([0.6, 0.8])
    down = torch.tensor([-0.8, 0.6])
    lenses[1, 0] += -2.5 * u  # wider by 0.1 eye distances, about the midpoint
    lenses[1, 1] += 2.5 * u + 5 * down
    lenses[1] -= 2.5 * down  # net: the centre stays, the lens line tilts
    got = metrics.against_eyes(lenses, eyes)
    assert got["centre_along"].tolist() == pytest.approx([0.1, 0.0], abs=1e-6)
    assert got["centre_across"].tolist() == pytest.approx([0.05, 0.0], abs=1e-6)
    assert got["eye_lens_error"][0].item() == pytest.approx(np.hypot(4, 2) / 40)
    tilt = np.degrees(np.arctan2(5, 55))
    assert got["tilt_deg"].tolist() == pytest.approx([0.0, tilt], abs=1e-4)
