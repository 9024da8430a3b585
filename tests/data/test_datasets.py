import json

import cv2
import numpy as np
import pytest
import scipy.linalg
from typer.testing import CliRunner

from stgan_cli.core import frames, geometry
from stgan_cli.cli import app
from stgan_cli.data import datasets
from stgan_cli.core import perturb
from stgan_cli.data import synth_indoor as si
from stgan_cli.errors import StganError

from conftest import write_rgb, write_rgba

SIZE = (120, 160)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    si.generate(root, 12, seed=3, size=SIZE, split=0.75, workers=2)
    return root


# --- the generator ---------------------------------------------------------------------------

def test_samples_are_deterministic_and_independent_of_n():
    _, (bg1, obj1, _) = si.sample(5, 7, SIZE)
    _, (bg2, obj2, _) = si.sample(5, 7, SIZE)
    _, (bg3, _, _) = si.sample(6, 7, SIZE)
    assert np.array_equal(bg1, bg2) and np.array_equal(obj1, obj2)
    assert not np.array_equal(bg1, bg3)


def test_folder_layout_and_meta(dataset, tmp_path):
    for split, count in (("train", 9), ("test", 3)):
        folder = dataset / split
        names = sorted(p.stem for p in (folder / "backgrounds").iterdir())
        assert names == sorted(p.stem for p in (folder / "objects").iterdir()) and len(names) == count
        meta = [json.loads(l) for l in (folder / "meta.jsonl").read_text().splitlines()]
        assert [m["name"] for m in meta] == names
        for m in meta:
            assert m["category"] in si.CATEGORIES and len(m["corners"]) == 8 and m["image_size"] == list(SIZE)
            assert {"position", "yaw", "pitch", "focal", "height"} <= set(m["camera"])
    again = tmp_path / "again"
    si.generate(again, 12, seed=3, size=SIZE, split=0.75, workers=1)
    for f in (dataset / "test" / "objects").iterdir():
        assert f.read_bytes() == (again / "test" / "objects" / f.name).read_bytes()


@pytest.mark.parametrize("index", range(16))
def test_objects_stand_on_the_floor_inside_the_frame(index):
    scene, (bg, obj, planes) = si.sample(11, index, SIZE)
    h, w = SIZE
    corners = scene.camera.project(scene.furniture.corners())
    assert np.all(corners >= 0) and np.all(corners[:, 0] <= w - 1) and np.all(corners[:, 1] <= h - 1)
    ys, xs = np.nonzero(obj[..., 3])
    assert xs.min() > 0 and ys.min() > 0 and xs.max() < w - 1 and ys.max() < h - 1
    # The bottom face (y = 0) projects onto floor pixels of the room without the object.
    for x, y in corners[:4]:
        r, c = int(round(y)), int(round(x))
        assert (planes[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2] == si.FLOOR).any(), (x, y)
    assert scene.furniture.extent[0][1] == 0.0  # nothing below the floor


@pytest.mark.parametrize("index", range(6))
def test_contact_shadow_darkens_the_floor_under_the_footprint_only(index):
    scene, (bg, obj, planes) = si.sample(13, index, SIZE)
    plain, (bg0, obj0, _) = si.sample(13, index, SIZE, shadows=False)
    assert np.array_equal(obj, obj0) and plain.meta()["corners"] == scene.meta()["corners"]
    assert 0.3 <= scene.shadow <= 0.6 and plain.shadow == 0
    darker = bg0.astype(float).mean(-1) - bg.astype(float).mean(-1)
    assert darker.min() >= -0.5  # a shadow never brightens (rounding aside)
    assert np.all(darker[planes != si.FLOOR] <= 0.5)  # walls stay as they were
    footprint = np.zeros(SIZE, np.uint8)
    bottom = scene.camera.project(scene.furniture.corners()[:4])
    cv2.fillPoly(footprint, [np.round(bottom * 16).astype(np.int32)], 1, shift=4)
    inside = (footprint > 0) & (planes == si.FLOOR)
    # under the footprint the floor loses about `shadow` of its brightness; far from it, nothing
    ratio = darker[inside] / np.maximum(bg0.astype(float).mean(-1)[inside], 1)
    assert np.median(ratio) == pytest.approx(scene.shadow, abs=0.08)
    # 40 cm or more from the footprint (measured on the floor itself) the shadow has faded to nothing
    d = scene.camera.rays(4)
    t = -scene.camera.position[1] / np.minimum(d[..., 1], -1e-9)
    on_floor = np.asarray(scene.camera.position) + d * t[..., None]
    near = si._footprint_shadow(scene.furniture, on_floor).reshape(SIZE[0], 4, SIZE[1], 4).max((1, 3))
    far = (near < np.exp(-4)) & (planes == si.FLOOR)
    assert far.sum() > 1000 and np.abs(darker[far]).max() <= 1 + 255 * scene.shadow * np.exp(-4)


@pytest.mark.parametrize("index", range(16))
def test_projected_corners_match_the_object_mask(index):
    scene, (_, obj, _) = si.sample(12, index, SIZE)
    corners = scene.camera.project(scene.furniture.corners()).astype(np.float32)
    hull = np.zeros(SIZE, np.uint8)
    cv2.fillConvexPoly(hull, np.round(cv2.convexHull(corners)[:, 0] * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    hull = cv2.dilate(hull, np.ones((3, 3), np.uint8))
    mask = obj[..., 3] > 0
    assert (mask & ~hull.astype(bool)).sum() == 0  # the object lies inside its projected box
    ys, xs = np.nonzero(mask)
    x0, y0 = corners.min(0)
    x1, y1 = corners.max(0)
    gaps = np.array([xs.min() - x0, x1 - xs.max(), ys.min() - y0, y1 - ys.max()])
    assert gaps.min() > -0.5
    # Boxy furniture fills its box to the edges; a chair's or bed's box has corners of air, but
    # the object still reaches at least two of the box's sides.
    if scene.furniture.category in ("cabinet", "table", "bookshelf"):
        assert gaps.max() < 3
    assert (gaps < 2).sum() >= 2


def test_every_category_renders():
    rng = np.random.default_rng(0)
    for cat in si.CATEGORIES:
        scene = si.random_scene(rng, SIZE, categories=(cat,))
        _, obj, _ = si.render(scene)
        assert scene.furniture.category == cat and (obj[..., 3] > 0).sum() > 200


# --- loaders ---------------------------------------------------------------------------------

def test_paired_loader(dataset):
    ds = datasets.PairedDataset.load(dataset, SIZE, split="train")
    assert len(ds) == 9 and ds.bg.shape == (9, 120, 160, 3) and ds.fg.shape == (9, 120, 160, 4)
    assert (ds.fg[..., :3] <= ds.fg[..., 3:]).all()  # premultiplied
    bg, fg = ds.batch([0, 2])
    assert bg.shape == (2, 3, 120, 160) and fg.dtype == np.float32 and fg.max() <= 1
    caches = list((dataset / "train").glob(".stgan-cache-paired-*"))
    assert len(caches) == 1
    again = datasets.PairedDataset.load(dataset / "train", SIZE)
    assert np.array_equal(again.fg, ds.fg)
    small = datasets.PairedDataset.load(dataset, (60, 80), split="test")
    assert small.bg.shape == (3, 60, 80, 3)


def test_paired_loader_refuses_broken_folders(dataset, tmp_path):
    with pytest.raises(StganError, match="no such dataset folder"):
        datasets.PairedDataset.load(tmp_path / "nope")
    with pytest.raises(StganError, match="it has splits"):
        datasets.PairedDataset.load(dataset)
    broken = tmp_path / "broken"
    (broken / "backgrounds").mkdir(parents=True)
    with pytest.raises(StganError, match="no objects/"):
        datasets.PairedDataset.load(broken)
    (broken / "objects").mkdir()
    with pytest.raises(StganError, match="backgrounds: no images"):
        datasets.PairedDataset.load(broken)
    bg = np.zeros((120, 160, 3), np.uint8)
    obj = np.zeros((120, 160, 4), np.uint8)
    obj[40:80, 50:90] = 200
    write_rgb(broken / "backgrounds" / "a.png", bg)
    write_rgba(broken / "objects" / "b.png", obj)
    with pytest.raises(StganError, match="b.png: no background with the same name"):
        datasets.PairedDataset.load(broken, cache=False)
    (broken / "objects" / "b.png").unlink()
    write_rgb(broken / "objects" / "a.png", bg)
    with pytest.raises(StganError, match="a.png: object has no alpha"):
        datasets.PairedDataset.load(broken, cache=False)
    write_rgba(broken / "objects" / "a.png", obj[:100])
    with pytest.raises(StganError, match="is 160x100 but its background is 160x120"):
        datasets.PairedDataset.load(broken, cache=False)
    (broken / "objects" / "a.png").write_text("not a png")
    with pytest.raises(StganError, match="objects/a.png: not an image"):
        datasets.PairedDataset.load(broken, cache=False)
    write_rgba(broken / "objects" / "a.png", np.zeros((120, 160, 4), np.uint8))
    with pytest.raises(StganError, match="fully transparent"):
        datasets.PairedDataset.load(broken, cache=False)


def test_unpaired_loader(tmp_path):
    root = tmp_path / "glasses"
    for sub in ("backgrounds", "objects", "real"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        write_rgb(root / "backgrounds" / f"f{i}.jpg", rng.integers(0, 255, (144, 144, 3), np.uint8))
        write_rgb(root / "real" / f"r{i}.png", rng.integers(0, 255, (200, 180, 3), np.uint8))
    glasses = np.zeros((144, 144, 4), np.uint8)
    glasses[60:80, 30:110] = (20, 20, 20, 255)
    write_rgba(root / "objects" / "g.png", glasses)
    ds = datasets.UnpairedDataset.load(root, (72, 72))
    assert ds.bg.shape == (3, 72, 72, 3) and ds.fg.shape == (1, 72, 72, 4) and ds.real.shape == (3, 72, 72, 3)
    for f in (root / "real").iterdir():
        f.unlink()
    with pytest.raises(StganError, match="real: no images"):
        datasets.UnpairedDataset.load(root, (72, 72), cache=False)


def test_celeba_adapter(tmp_path):
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    for i, n in enumerate(names):
        face = np.full((218, 178, 3), 40 * i, np.uint8)
        face[124, 89] = 255  # the crop centre
        write_rgb(root / "img_align_celeba" / n, face)
    attrs = ["Bald", "Eyeglasses", "Male"]
    glasses = [1, -1, 1, -1, -1, 1]
    lines = [str(len(names)), " ".join(attrs)] + [f"{n} -1 {g} 1" for n, g in zip(names, glasses)]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(f"{n} {0 if i < 4 else 2}" for i, n in enumerate(names)))
    with_glasses = datasets.celeba_faces(root, True, "train")
    without = datasets.celeba_faces(root, False, "train", size=(72, 72))
    assert with_glasses.shape == (2, 144, 144, 3) and without.shape == (2, 72, 72, 3)
    assert with_glasses[0, 72, 72].max() > 200  # (row 124, col 89) lands in the crop's centre
    assert datasets.celeba_faces(root, True, "test").shape[0] == 1
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(StganError, match="not a CelebA folder"):
        datasets.celeba_faces(root, True)


# --- perturbations ---------------------------------------------------------------------------

def test_warp_noise_statistics():
    p = perturb.warp_noise(40000, 0.1, 0.05, np.random.default_rng(0))
    std = p.std(0)
    np.testing.assert_allclose(np.delete(std, [0, 4]), 0.1, rtol=0.03)
    np.testing.assert_allclose(std[[0, 4]], np.hypot(0.1, 0.05), rtol=0.03)
    np.testing.assert_allclose(p.mean(0), 0, atol=0.003)
    assert np.allclose(perturb.warp_noise(5, 0, 0), 0)


def test_numpy_expm_matches_scipy():
    a = frames.sl3_matrix(np.random.default_rng(1).normal(0, 0.4, (5, 8)))
    for m in a:
        np.testing.assert_allclose(frames.expm(m[None])[0], scipy.linalg.expm(m), rtol=1e-10, atol=1e-12)


def test_perturb_background():
    bg = (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8)
    assert np.array_equal(perturb.perturb_background(bg, 0.0), bg)
    moved = perturb.perturb_background(bg, 0.1, np.random.default_rng(2))
    assert moved.shape == bg.shape and not np.array_equal(moved, bg)


# --- commands --------------------------------------------------------------------------------

def test_synth_indoor_no_shadows_option(tmp_path):
    r = CliRunner().invoke(app, ["data", "synth-indoor", "--out", str(tmp_path / "d"), "--n", "3", "--split", "1",
                                 "--workers", "1", "--no-shadows"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    meta = [json.loads(l) for l in (tmp_path / "d" / "train" / "meta.jsonl").read_text().splitlines()]
    assert [m["contact_shadow"] for m in meta] == [0, 0, 0]
    _, (bg, _, _) = si.sample(0, 1, SIZE, shadows=False)
    assert np.array_equal(cv2.imread(str(tmp_path / "d" / "train" / "backgrounds" / "000001.png"))[..., ::-1], bg)


def test_synth_indoor_and_sheet_commands(tmp_path):
    run = lambda *a: CliRunner().invoke(app, [str(x) for x in a], catch_exceptions=False)
    r = run("data", "synth-indoor", "--out", tmp_path / "d", "--n", "6", "--size", "64x80", "--workers", "1")
    assert r.exit_code == 0, r.stderr
    assert len(list((tmp_path / "d" / "train" / "objects").iterdir())) == 5
    r = run("data", "synth-indoor", "--out", tmp_path / "d", "--n", "6")
    assert r.exit_code == 1 and "already there" in r.stderr
    r = run("data", "synth-indoor", "--out", tmp_path / "d", "--n", "6", "--size", "64by80")
    assert r.exit_code == 2
    r = run("data", "sheet", tmp_path / "d", "--out", tmp_path / "sheet.png", "--n", "4", "--columns", "2")
    assert r.exit_code == 0, r.stderr
    assert cv2.imread(str(tmp_path / "sheet.png")).shape[:2] == (2 * 64 + 2, 2 * 80 + 2)


def test_box_noise_shows_the_object_where_a_rough_box_would_put_it():
    import torch

    from stgan_cli.core.perturb import box_noise

    boxes = np.array([[-0.5, -0.2, 0.1, 0.6], [0.0, 0.0, 0.4, 0.3], [-0.9, -0.9, 0.9, 0.9]])
    p = box_noise(boxes, 0.12, np.random.default_rng(1))
    r = np.random.default_rng(1)
    sx, sy, log_s = (r.normal(0, 0.12, 3) for _ in range(3))
    pts = geometry.box_points(torch.tensor(boxes))
    shown = geometry.displayed(pts, torch.tensor(p)).numpy()
    centre, size = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]
    expect = (pts.numpy() - centre[:, None]) * np.exp(log_s)[:, None, None] + centre[:, None] \
        + (np.stack([sx, sy], 1) * size)[:, None]
    np.testing.assert_allclose(shown, expect, atol=1e-12)
    np.testing.assert_array_equal(box_noise(boxes, 0.0, np.random.default_rng(0)), np.zeros((3, 8)))
