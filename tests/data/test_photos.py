"""Real-photo data (``stgan data from-photos``) and the full-resolution evaluation of ``stgan eval``."""

import csv
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from stgan_cli.composite import compositing
from stgan_cli.files import imageio
from stgan_cli.evaluation import photos as photo_eval
from stgan_cli.cli import app
from stgan_cli.data import instances, photos
from stgan_cli.data.datasets import PairedDataset
from stgan_cli.errors import StganError

from conftest import REALDATA, scene

SEGMENTED = REALDATA / "segmented"


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def ellipse(size, centre, axes) -> np.ndarray:
    m = np.zeros(size, np.uint8)
    cv2.ellipse(m, centre, axes, 0, 0, 360, 1, -1)
    return m


@pytest.fixture
def shots(tmp_path):
    """Three generated photos with four masks: two usable objects, one cut by the border, one tiny."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    truth = {}
    for i, size in enumerate([(240, 320), (300, 400), (240, 320)]):
        photo = scene(size, seed=i)
        cv2.rectangle(photo, (100, 80), (200, 200), (200, 40, 40), -1)  # the object itself, drawn in
        cv2.imwrite(str(images / f"p{i}.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 98])
        truth[f"p{i}"] = imageio.read_image(images / f"p{i}.jpg").pixels
    cv2.imwrite(str(masks / "p0_0.png"), ellipse((240, 320), (150, 140), (45, 55)) * 255)
    cv2.imwrite(str(masks / "p1_0.png"), ellipse((300, 400), (150, 140), (50, 60)) * 255)
    cv2.imwrite(str(masks / "p1_1.png"), ellipse((300, 400), (5, 150), (40, 40)) * 255)  # cut by the left edge
    cv2.imwrite(str(masks / "p2_0.png"), ellipse((240, 320), (60, 60), (3, 3)) * 255)  # tiny
    return images, masks, truth


def test_from_photos_counts_and_cutouts_land_back_exactly(shots, tmp_path):
    images, masks, truth = shots
    out = tmp_path / "ds"
    r = run("data", "from-photos", "--images", images, "--masks", masks, "--out", out, "--split", "1.0",
            "--workers", "1")
    assert r.exit_code == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs"] == {"train": 2, "test": 0}
    assert summary["skipped"] == {"cut by the photo's border": 1, "smaller than --min-area": 1}
    assert "2 train / 0 test pairs" in r.stderr and "1 cut by the photo's border" in r.stderr
    meta = [json.loads(line) for line in (out / "train" / "meta.jsonl").read_text().splitlines()]
    assert [m["name"] for m in meta] == ["p0_0", "p1_0"] and meta[1]["size"] == [300, 400]
    for m in meta:
        photo = truth[m["name"].split("_")[0]]
        bg = imageio.read_image(out / "train" / "backgrounds" / f"{m['name']}.jpg").pixels
        obj = imageio.read_image(out / "train" / "objects" / f"{m['name']}.png").pixels
        assert bg.shape == photo.shape and obj.shape[:2] == photo.shape[:2]  # full resolution kept
        inside = obj[..., 3] == 255
        mask = imageio.read_image(masks / f"{m['name']}.png").pixels > 127
        assert np.array_equal(inside, mask)
        # At identity the object is the photo's own pixels, exactly where they were.
        assert np.array_equal(obj[inside, :3], photo[inside])
        # The hole is filled: the red object is gone from the background (JPEG noise aside).
        red = (bg[..., 0].astype(int) - bg[..., 1]) > 100
        assert red[mask].mean() < 0.02 and np.abs(bg[~mask].astype(int) - photo[~mask]).mean() < 3
        x1, y1, x2, y2 = m["bbox"]
        ys, xs = np.nonzero(mask)
        assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    ds = PairedDataset.load(out, (120, 160), split="train")  # what train/refine/eval read
    assert len(ds) == 2 and ds.fg[..., 3].max() == 255


def test_split_is_by_photo_and_fixed():
    keys = [f"src/{i}.jpg" for i in range(400)]
    a = {k: photos.split_of(k, 0, 0.8) for k in keys}
    b = {k: photos.split_of(k, 0, 0.8) for k in reversed(keys)}
    assert a == b and 0.7 < sum(v == "train" for v in a.values()) / 400 < 0.9
    assert {photos.split_of(k, 1, 0.8) for k in keys} == {"train", "test"}


def test_two_objects_of_one_photo_share_its_split(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(12):
        cv2.imwrite(str(images / f"q{i}.png"), scene((120, 160), seed=i))
        cv2.imwrite(str(masks / f"q{i}_0.png"), ellipse((120, 160), (50, 60), (20, 20)) * 255)
        cv2.imwrite(str(masks / f"q{i}_1.png"), ellipse((120, 160), (110, 60), (20, 20)) * 255)
    r = run("data", "from-photos", "--images", images, "--masks", masks, "--out", tmp_path / "ds", "--split", "0.5",
            "--workers", "2")
    assert r.exit_code == 0, r.stderr
    splits = {}
    for split in ("train", "test"):
        for line in (tmp_path / "ds" / split / "meta.jsonl").read_text().splitlines():
            splits.setdefault(json.loads(line)["image"], set()).add(split)
    assert len(splits) == 12 and all(len(s) == 1 for s in splits.values())
    assert {next(iter(s)) for s in splits.values()} == {"train", "test"}


def rle_runs(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed counts: runs down the columns, zeros first."""
    runs, current, count = [], 0, 0
    for v in mask.T.reshape(-1):
        if v != current:
            runs.append(count)
            current, count = v, 0
        count += 1
    return runs + [count]


def rle_encode(mask: np.ndarray) -> str:
    """COCO's compressed RLE string (maskApi's rleToString), to test the decoder against."""
    runs = rle_runs(mask)
    out = []
    for i, x in enumerate(runs):
        if i > 2:
            x -= runs[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = not ((c & 0x10 == 0 and x == 0) or (c & 0x10 and x == -1))
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def test_coco_rle_and_polygons(tmp_path):
    size = (37, 53)
    mask = ellipse(size, (25, 18), (14, 9))
    mask[2:5, 40:50] = 1
    assert np.array_equal(instances.rle_mask(rle_encode(mask), size), mask)
    assert np.array_equal(instances.coco_mask({"counts": rle_runs(mask), "size": list(size)}, size), mask)
    square = instances.polygon_mask([[10.5, 5.5, 20.5, 5.5, 20.5, 15.5, 10.5, 15.5]], size)
    assert square.sum() == 11 * 11 and square[5, 10] == 1 and square[16, 21] == 0
    with pytest.raises(ValueError, match="add up"):
        instances.rle_mask([5, 5], size)


def test_from_coco_json(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), scene((120, 160)))
    m = ellipse((120, 160), (80, 60), (25, 20))
    coco = {"images": [{"id": 1, "file_name": "a.png", "height": 120, "width": 160},
                       {"id": 2, "file_name": "not-copied.png", "height": 120, "width": 160}],
            "categories": [{"id": 3, "name": "chair"}],
            "annotations": [
                {"id": 10, "image_id": 1, "category_id": 3, "iscrowd": 0,
                 "segmentation": [[55.5, 40.5, 105.5, 40.5, 105.5, 80.5, 55.5, 80.5]]},
                {"id": 11, "image_id": 1, "category_id": 3, "iscrowd": 0,
                 "segmentation": {"counts": rle_encode(m), "size": [120, 160]}},
                {"id": 12, "image_id": 1, "category_id": 3, "iscrowd": 1,
                 "segmentation": {"counts": rle_encode(m), "size": [120, 160]}},
                {"id": 13, "image_id": 2, "category_id": 3, "iscrowd": 0, "segmentation": [[1, 1, 5, 1, 5, 5]]}]}
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    r = run("data", "from-photos", "--images", images, "--coco", tmp_path / "ann.json", "--out", tmp_path / "ds",
            "--split", "1", "--workers", "1", "--categories", "chair")
    assert r.exit_code == 0, r.stderr
    summary = json.loads((tmp_path / "ds" / "summary.json").read_text())
    assert summary["pairs"]["train"] == 2 and summary["skipped"] == {"crowd region": 1}
    obj = imageio.read_image(tmp_path / "ds" / "train" / "objects" / "a_1.png").pixels
    assert np.array_equal(obj[..., 3] > 0, m > 0)


def test_a_bad_mask_is_named(tmp_path, shots):
    images, masks, _ = shots
    (masks / "p0_0.png").write_bytes(b"not a png at all")
    cv2.imwrite(str(masks / "p1_0.png"), np.zeros((10, 10), np.uint8))
    r = run("data", "from-photos", "--images", images, "--masks", masks, "--out", tmp_path / "ds", "--workers", "1")
    assert r.exit_code == 0, r.stderr
    summary = json.loads((tmp_path / "ds" / "summary.json").read_text())
    assert summary["skipped"]["unreadable mask"] == 2
    assert any("p0_0.png: not an image" in line for line in r.stderr.splitlines())
    with pytest.raises(StganError, match="p1_0.png: mask is 10x10, its photo .*p1.jpg is 400x300"):
        instances.instance_mask(instances.Instance(images / "p1.jpg", "p1_0", mask=masks / "p1_0.png"), (300, 400))
    (masks / "stray.png").write_bytes(b"")
    r = run("data", "from-photos", "--images", images, "--masks", masks, "--out", tmp_path / "ds2")
    assert r.exit_code == 1 and "stray.png: mask names must be <image-stem>_<k>" in r.stderr


def test_usage_errors(tmp_path):
    r = run("data", "from-photos", "--out", tmp_path / "ds")
    assert r.exit_code == 2 and "exactly one of --masks" in r.stderr
    r = run("data", "from-photos", "--masks", tmp_path, "--out", tmp_path / "ds")
    assert r.exit_code == 2 and "needs --images" in r.stderr
    r = run("data", "from-photos", "--instances", tmp_path / "i.csv", "--fill", "magic", "--out", tmp_path / "ds")
    assert r.exit_code == 2 and "--fill magic" in r.stderr


@pytest.mark.parametrize("fill", photos.FILLS)
def test_every_fill_removes_the_object_and_keeps_the_rest(fill):
    img = scene((120, 160))
    img[40:80, 60:100] = (250, 0, 0)
    hole = np.zeros((120, 160), bool)
    hole[36:84, 56:104] = True
    out = photos.fill_hole(img, hole, fill)
    assert np.array_equal(out[~hole], img[~hole])
    assert (out[hole][:, 0].astype(int) - out[hole][:, 1]).max() < 120  # no red left inside


# --- the full-resolution metric ------------------------------------------------------------------

def case(size=(300, 400), box=(100, 50, 200, 250)) -> photo_eval.Case:
    canvas = np.zeros((*size, 4), np.uint8)
    x1, y1, x2, y2 = box
    canvas[y1:y2, x1:x2] = (200, 100, 50, 255)
    pic = imageio.Picture(canvas, None, "PNG", "obj.png")
    return photo_eval.Case("c", scene(size), compositing.make_cutout(pic))


@pytest.mark.parametrize("dx,dy", [(3, 0), (0, 5), (3, 4)])
def test_a_k_pixel_shift_is_k_pixels(dx, dy):
    c = case()
    m = photo_eval.case_metrics(c, compositing.translation(dx, dy))
    k = float(np.hypot(dx, dy))
    assert m["corner_px"] == pytest.approx(k) and m["corner_pct"] == pytest.approx(100 * k / 500)
    assert m["area_ratio"] == pytest.approx(1.0)


def test_scale_shows_in_area_and_iou():
    c = case()
    centre = np.array([149.5, 149.5])  # the box's centre in pixels
    m2 = compositing.translation(*centre) @ np.diag([2.0, 2.0, 1]) @ compositing.translation(*-centre)
    m = photo_eval.case_metrics(c, m2)
    assert m["area_ratio"] == pytest.approx(4.0) and m["iou"] == pytest.approx(0.25)
    # corners move by half the box diagonal each: (50, 100) from the centre
    assert m["corner_px"] == pytest.approx(float(np.hypot(50, 100)))


def test_box_protocol_goes_through_the_box_placement():
    c = case()
    inits = photo_eval.initial_placements([c, c], "box", np.random.default_rng(0), box_std=0.0)
    assert all(np.allclose(m, np.eye(3)) for m in inits)  # no noise: the true box, placed by --box's code
    noisy = photo_eval.initial_placements([c] * 200, "box", np.random.default_rng(0), box_std=0.12)
    shifts = np.array([m[:2, 2] + (m[0, 0] - 1) * 149.5 for m in noisy])  # where the centre went
    assert 0.09 * 100 < shifts[:, 0].std() < 0.15 * 100 and 0.09 * 200 < shifts[:, 1].std() < 0.15 * 200


def test_eval_on_a_real_pair_folder(shots, tmp_path, model_dir):
    images, masks, _ = shots
    out = tmp_path / "ds"
    assert run("data", "from-photos", "--images", images, "--masks", masks, "--out", out, "--split", "0",
               "--workers", "1").exit_code == 0
    r = run("eval", model_dir, "--data", out / "test", "--json", "--seed", "3")
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["n"] == 2 and res["protocol"] == "box" and [m["label"] for m in res["models"]] == ["identity", "rand"]
    ident, model = res["models"]
    assert ident["corner_pct"][0] == model["corner_pct"][0] > 0  # the same starts
    assert len(model["corner_pct"]) == 3 and 0 <= model["worse_share"] <= 1
    # the same runs by object size and by source: both ellipses cover 5-15 % of their photos
    sizes = [g for g in res["by_group"] if g["group"] == "size"]
    assert [(g["label"], g["n"]) for g in sizes] == [("5-15 %", 2)]
    assert sizes[0]["identity"] == pytest.approx(ident["corner_pct"][0], abs=1e-3)
    assert sizes[0]["models"]["rand"]["corner_pct"] == pytest.approx(model["corner_pct"][-1], abs=1e-3)
    assert sum(g["n"] for g in res["by_group"] if g["group"] == "source") == 2
    r = run("eval", model_dir, "--data", out / "test", "--markdown", "--decoys")
    assert r.exit_code == 0 and "| object size | 5-15 % | 2 |" in r.stdout
    r = run("eval", model_dir, "--data", out, "--json", "--protocol", "truth")
    ident, model = json.loads(r.stdout)["models"]
    assert ident["corner_px"] == [0.0] and model["corner_px"][0] == 0.0 and model["corner_px"][-1] > 0
    r = run("eval", model_dir, "--data", out, "--report", tmp_path / "rep")
    assert r.exit_code == 0 and "worse than start" in r.stdout
    grid = cv2.imread(str(tmp_path / "rep" / "grid.png"))
    assert grid.shape[0] > 3 * 300 and (tmp_path / "rep" / "histogram.png").exists()
    r = run("eval", model_dir, "--data", out, "--protocol", "nope")
    assert r.exit_code == 2


# --- on the real photos ---------------------------------------------------------------------------------

needs_segmented = pytest.mark.skipif(not SEGMENTED.is_dir(), reason="needs ../shared/realdata/segmented (real photos)")


@needs_segmented
def test_decoders_match_the_shared_masks():
    """COCO polygons and (crowd) RLE of the real annotation files give the masks shipped beside them."""
    folder = SEGMENTED / "coco_mini_obmutescence"
    rows = {r["ann_id"]: r for r in csv.DictReader(open(folder / "instances.csv"))}
    anns = {}
    for f in (folder / "annotations").glob("*train2017.json"):
        anns.update({str(a["id"]): a for a in json.loads(f.read_text())["annotations"]})
    crowd = [k for k, r in rows.items() if r["iscrowd"] == "1" and k in anns][:2]
    # large objects: the rasterisers of polygon edges differ by a pixel, which small masks feel most
    plain = [k for k, r in rows.items() if r["iscrowd"] == "0" and k in anns and int(r["area"]) > 5000][:6]
    assert crowd and plain
    for k in crowd + plain:
        shipped = cv2.imread(str(folder / "masks" / rows[k]["mask"]), 0) > 127
        ours = instances.coco_mask(anns[k]["segmentation"], shipped.shape) > 0
        iou = (ours & shipped).sum() / (ours | shipped).sum()
        assert iou > (0.999 if k in crowd else 0.9), (k, iou)


@needs_segmented
def test_from_photos_on_a_real_folder(tmp_path):
    r = run("data", "from-photos", "--instances", SEGMENTED / "coco128_seg_goodccccl" / "instances.csv",
            "--out", tmp_path / "ds", "--categories", "person,bowl", "--split", "0.8")
    assert r.exit_code == 0, r.stderr
    s = json.loads((tmp_path / "ds" / "summary.json").read_text())
    assert s["pairs"]["train"] > 20 and s["pairs"]["test"] > 3 and s["skipped"]["cut by the photo's border"] > 0
    cases = photo_eval.load_cases(tmp_path / "ds")
    assert len(cases) == s["pairs"]["test"] and max(c.size[1] for c in cases) >= 480  # full resolution


def test_breakdown_rows_are_their_subsets_of_the_same_runs():
    from stgan_cli.composite import compositing
    from stgan_cli.evaluation.photos import Case, breakdown

    def case(area, source):
        side = int(round(100 * area ** 0.5))
        rgba = np.zeros((100, 100, 4), np.uint8)
        rgba[:side, :side] = 255
        return Case(f"c{area}", np.zeros((100, 100, 3), np.uint8),
                    compositing.make_cutout(imageio.Picture(rgba, None, "png", "x.png")), source=source)

    cases = [case(0.04, "coco_tiny"), case(0.09, "coco_mini"), case(0.25, "furniture_seg"), case(0.64, "furniture_seg")]
    start = np.array([[2.0], [4.0], [8.0], [10.0]])
    rows = [{"label": "identity", "per_case_pct": start},
            {"label": "m", "per_case_pct": np.hstack([start, [[3.0], [2.0], [4.0], [10.0]]])}]
    got = {(e["group"], e["label"]): e for e in breakdown(cases, rows)}
    assert [k[1] for k in got] == ["< 5 %", "5-15 %", "15-40 %", "> 40 %", "COCO photos", "furniture photos"]
    coco = got[("source", "COCO photos")]
    assert coco["n"] == 2 and coco["identity"] == 3.0 and coco["models"]["m"]["corner_pct"] == 2.5
    assert coco["models"]["m"]["worse_share"] == 0.5 and coco["models"]["m"]["change_pct"] == pytest.approx(-16.7)
    assert got[("size", "> 40 %")]["models"]["m"]["worse_share"] == 0.0
