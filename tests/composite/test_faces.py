import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from stgan_cli.composite import compositing, faces, landmarks
from stgan_cli.model import modelstore
from stgan_cli.core import frames, geometry
from stgan_cli.files import imageio
from stgan_cli.cli import app
from stgan_cli.composite.inputs import Item
from stgan_cli.composite.job import Options
from stgan_cli.composite.pipeline import Compositor

from conftest import REALDATA, random_model, scene, write_rgb, write_rgba

FACES = REALDATA / "faces" / "no_glasses"
GLASSES = REALDATA / "glasses"
needs_real = pytest.mark.skipif(not FACES.is_dir(), reason="../shared/realdata is not present")


def drawn_glasses(size=(60, 160), centres=((40, 30), (120, 30)), radius=18):
    """RGBA glasses: two rings with a bridge and temples; the lens centres are known."""
    img = np.zeros((*size, 4), np.uint8)
    for c in centres:
        cv2.circle(img, c, radius, (20, 20, 20, 255), 4)
    cv2.line(img, (centres[0][0] + radius, 30), (centres[1][0] - radius, 30), (20, 20, 20, 255), 3)
    cv2.line(img, (0, 24), (centres[0][0] - radius, 28), (20, 20, 20, 255), 3)
    cv2.line(img, (centres[1][0] + radius, 28), (size[1] - 1, 24), (20, 20, 20, 255), 3)
    return img


def glasses_model(folder, warps=2):
    path = random_model(folder, warps=warps, image_size=(144, 144), std=5e-4)
    cfg = modelstore.read_config(path)
    cfg.domain = "glasses"
    (path / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    return path


def test_similarity_maps_points_and_keeps_angles():
    src = np.array([[10.0, 20.0], [50.0, 30.0]])
    dst = np.array([[100.0, 100.0], [140.0, 80.0]])
    m = faces.similarity(src, dst)
    np.testing.assert_allclose(frames.apply_homography(m, src), dst, atol=1e-9)
    a, b = m[0, 0], m[1, 0]
    np.testing.assert_allclose(m[:2, :2], [[a, -b], [b, a]])  # rotation and uniform scale only


def test_canonical_eyes_scale_with_the_frame():
    np.testing.assert_allclose(faces.canonical_eyes((144, 144)), faces.CANONICAL_EYES_144)
    e = faces.canonical_eyes((288, 288))
    np.testing.assert_allclose(e[1] - e[0], 2 * (faces.CANONICAL_EYES_144[1] - faces.CANONICAL_EYES_144[0]))


def test_lens_centres_of_drawn_glasses():
    g = drawn_glasses()
    np.testing.assert_allclose(faces.lens_centres(g[..., 3] / 255), [[40, 30], [120, 30]], atol=1.0)


def given_face(monkeypatch, eyes):
    face = faces.Face((0, 0, 10, 10), np.array(eyes, float), True)
    monkeypatch.setattr(faces, "detect_faces", lambda rgb, detector="auto": [face])


def face_folders(tmp_path, monkeypatch, photos: int):
    """``faces/`` with generated photos (whose one face is given) and ``glasses/`` with drawn glasses."""
    given_face(monkeypatch, [[140, 120], [200, 122]])
    (tmp_path / "faces").mkdir()
    (tmp_path / "glasses").mkdir()
    for i in range(photos):
        write_rgb(tmp_path / "faces" / f"p{i}.jpg", scene((300, 340), seed=i))
    write_rgba(tmp_path / "glasses" / "g.png", drawn_glasses())
    return tmp_path / "faces", tmp_path / "glasses"


@pytest.mark.parametrize("eyes", [[[200, 150], [260, 150]], [[300, 200], [380, 240]]])
def test_glasses_land_on_the_eyes_scaled_and_rolled(tmp_path, monkeypatch, eyes):
    """Placement logic on a given face: the lens centres go where real wearers have them, over the
    eyes (scale and roll follow)."""
    given_face(monkeypatch, eyes)
    g = drawn_glasses()
    write_rgba(tmp_path / "g.png", g)
    write_rgb(tmp_path / "face.png", scene((480, 640)))
    comp = Compositor(None, Options(iterations=0, place="face"))
    prep = comp.prepare(Item(tmp_path / "g.png", tmp_path / "face.png", tmp_path / "o.png"))
    (slot,) = prep.slots
    m = slot.initial()
    np.testing.assert_allclose(frames.apply_homography(m, [[40, 30], [120, 30]]),
                               landmarks.glasses_from_eyes(np.array(eyes, float)), atol=1.0)


def test_face_frame_transfer_matches_the_low_res_frame(tmp_path, monkeypatch):
    """The central property for faces: the full-res glasses, seen in the face frame, are where the
    generators saw them."""
    given_face(monkeypatch, [[310, 220], [390, 236]])
    write_rgba(tmp_path / "g.png", drawn_glasses())
    write_rgb(tmp_path / "face.png", scene((720, 960)))
    model = modelstore.load(str(glasses_model(tmp_path / "m")))
    comp = Compositor(model, Options(place="face"))
    comp.ready()
    prep = comp.prepare(Item(tmp_path / "g.png", tmp_path / "face.png", tmp_path / "o.png"))
    (params,) = comp.predict([prep])
    slot = prep.slots[0]
    p = params[0][-1]
    assert np.abs(p).max() > 0.02
    _, alpha = compositing.composite(prep.bg.pixels, prep.cutout, slot.corrected(p))
    seen = cv2.warpPerspective(alpha, slot.frame_from_image, (144, 144), flags=cv2.INTER_AREA)
    low = geometry.warp_foreground(torch.from_numpy(slot.fg_low).permute(2, 0, 1)[None].double(),
                                   torch.from_numpy(p)[None])[0, 3].numpy()
    inter = ((seen > 0.5) & (low > 0.5)).sum()
    union = ((seen > 0.5) | (low > 0.5)).sum()
    assert inter / union > 0.85  # thin frames: a pixel of resampling is a large share of them


def test_a_photo_without_a_face_is_reported(tmp_path):
    write_rgba(tmp_path / "g.png", drawn_glasses())
    write_rgb(tmp_path / "room.png", scene((240, 320)))
    r = CliRunner().invoke(app, ["composite", str(tmp_path / "g.png"), str(tmp_path / "room.png"), "--out",
                                 str(tmp_path / "o.png"), "--iterations", "0", "--place", "face"])
    assert r.exit_code == 1 and "room.png: no face found" in r.stderr
    assert not (tmp_path / "o.png").exists()


@needs_real
def test_real_photos_one_pair_per_face_between_the_eyes(tmp_path):
    model = glasses_model(tmp_path / "m")
    out = tmp_path / "out"
    out.mkdir()
    r = CliRunner().invoke(app, ["composite", str(GLASSES / "glasses_00.png"), str(FACES / "couple.jpg"), "--out",
                                 str(out / "couple.jpg"), "--model", str(model), "--save-warp", "--iterations", "0"])
    assert r.exit_code == 0, r.stderr
    side = json.loads((out / "couple.json").read_text())
    assert len(side["faces"]) == 2
    lenses = faces.lens_centres(imageio.to_unit_float(imageio.read_image(GLASSES / "glasses_00.png").pixels)[..., 3])
    for face in side["faces"]:
        eyes, anchor = np.array(face["eyes"]), np.array(face["lenses_at"])
        placed = frames.apply_homography(np.array(face["homography"]), lenses)
        np.testing.assert_allclose(placed, anchor, atol=1.5)  # where the landmarks say the lenses go
        # which is on the eyes to within the nose bridge's shift and the face's breadth
        iod = np.linalg.norm(eyes[1] - eyes[0])
        assert np.abs(anchor - eyes).max() < 0.25 * iod
    r = CliRunner().invoke(app, ["composite", str(GLASSES / "glasses_00.png"), str(FACES / "couple.jpg"), "--out",
                                 str(tmp_path / "one.jpg"), "--faces", "largest", "--place", "face", "--save-warp",
                                 "--iterations", "0"])
    assert r.exit_code == 0 and len(json.loads((tmp_path / "one.json").read_text())["faces"]) == 1


@needs_real
def test_rotating_the_face_rotates_the_glasses(tmp_path):
    photo = imageio.read_image(FACES / "img1.jpg").pixels
    h, w = photo.shape[:2]
    angles = {}
    for deg in (0, 12):
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
        img = cv2.warpAffine(photo, rot, (w, h), borderMode=cv2.BORDER_REPLICATE)
        found = faces.detect_faces(img)
        assert found and found[0].eyes_found
        e = found[0].eyes
        angles[deg] = math.degrees(math.atan2(e[1][1] - e[0][1], e[1][0] - e[0][0]))
    # OpenCV rotates counter-clockwise for positive angles: the eye line turns by about -12 degrees
    assert abs((angles[12] - angles[0]) + 12) < 4, angles


def test_data_glasses_builds_the_unpaired_layout(tmp_path, monkeypatch):
    face_folders(tmp_path, monkeypatch, 2)
    r = CliRunner().invoke(app, ["data", "glasses", "--faces", str(tmp_path / "faces"), "--glasses",
                                 str(tmp_path / "glasses"), "--out", str(tmp_path / "ds"), "--copies", "3"])
    assert r.exit_code == 0, r.stderr
    assert len(list((tmp_path / "ds" / "backgrounds").iterdir())) == 6
    assert len(list((tmp_path / "ds" / "real").iterdir())) == 6
    assert len(list((tmp_path / "ds" / "objects").iterdir())) == 2  # the glasses and their mirror image
    canvas = imageio.read_image(tmp_path / "ds" / "objects" / "g.png").pixels
    assert canvas.shape == (144, 144, 4)
    np.testing.assert_allclose(faces.lens_centres(canvas[..., 3] / 255), faces.canonical_eyes((144, 144)), atol=1.5)
    from stgan_cli.data.datasets import UnpairedDataset

    ds = UnpairedDataset.load(tmp_path / "ds", (144, 144))
    assert ds.bg.shape[0] == 6 and ds.fg.shape[0] == 2


@needs_real
def test_data_glasses_on_real_faces_aligns_the_eyes(tmp_path):
    small = tmp_path / "faces"
    small.mkdir()
    for name in ("img1.jpg", "couple.jpg"):
        (small / name).write_bytes((FACES / name).read_bytes())
    r = CliRunner().invoke(app, ["data", "glasses", "--faces", str(small), "--glasses", str(GLASSES), "--out",
                                 str(tmp_path / "ds"), "--copies", "1"])
    assert r.exit_code == 0, r.stderr
    crops = sorted((tmp_path / "ds" / "backgrounds").iterdir())
    assert len(crops) == 3  # one face in img1, two in the couple
    from stgan_cli.data.glasses import read_meta

    meta = read_meta(tmp_path / "ds")
    checked = 0
    for crop in crops:  # detecting again in the crop finds the eyes where meta.jsonl says they were put
        found = faces.detect_faces(imageio.read_image(crop).pixels)
        put = np.array(meta[crop.name]["eyes_in_crop"])
        # the crop is aligned on where the glasses go, which is near the eyes but not on them
        assert np.abs(put - faces.canonical_eyes((144, 144))).max() < 0.25 * np.linalg.norm(put[1] - put[0])
        if found and found[0].eyes_found:
            np.testing.assert_allclose(found[0].eyes, put, atol=6)
            checked += 1
    assert checked >= 2, f"the eyes were found again in only {checked} of {len(crops)} crops"


def test_lens_error_is_normalised_by_the_eye_distance():
    from stgan_cli.core import metrics

    eyes = torch.from_numpy(faces.canonical_eyes((144, 144))).float()
    p = torch.zeros(2, 8)
    p[1, 0] = -0.1 * 2 / 144 * 39  # shows the glasses moved right by 0.1 eye distances (39 px)
    err = metrics.lens_errors(p, eyes, (144, 144))
    assert err[0].item() == pytest.approx(0, abs=1e-6) and err[1].item() == pytest.approx(0.1, rel=1e-3)


def test_eval_on_a_glasses_folder_reports_the_lens_error(tmp_path, monkeypatch):
    face_folders(tmp_path, monkeypatch, 3)
    runner = CliRunner()
    assert runner.invoke(app, ["data", "glasses", "--faces", str(tmp_path / "faces"), "--glasses",
                               str(tmp_path / "glasses"), "--out", str(tmp_path / "ds"), "--copies", "1"]).exit_code == 0
    model = glasses_model(tmp_path / "m")
    r = runner.invoke(app, ["eval", str(model), "--data", str(tmp_path / "ds"), "--n", "6", "--json"],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["lens_error"]) == 3 and out["lens_error"][0] > 0.05
    assert out["protocol"] == "sl3" and len(out["glasses_width"]) == 3 and 0 <= out["width_plausible"][0] <= 1
    r = runner.invoke(app, ["eval", str(model), "--data", str(tmp_path / "ds"), "--n", "6"], env={"COLUMNS": "320"},
                      catch_exceptions=False)
    assert "lens err / eye dist" in r.stdout and "width / eye dist" in r.stdout
    r = runner.invoke(app, ["eval", str(model), "--data", str(tmp_path / "ds"), "--protocol", "truth", "--json"])
    assert json.loads(r.stdout)["lens_error"][0] == 0
    # the given face was not found by landmarks: no Haar-against-landmarks start to measure from
    r = runner.invoke(app, ["eval", str(model), "--data", str(tmp_path / "ds"), "--protocol", "detector"])
    assert r.exit_code == 1 and "--protocol detector needs faces aligned on landmarks" in r.stderr
    r = runner.invoke(app, ["eval", str(model), "--data", str(tmp_path / "ds"), "--protocol", "box"])
    assert r.exit_code == 2 and "expected one of sl3, truth, detector" in r.stderr


def test_holdout_split_and_glasses_training(tmp_path, monkeypatch):
    """`--holdout` writes train/ and test/; `data.kind: glasses` trains on it, every stage kind."""
    face_folders(tmp_path, monkeypatch, 5)
    runner = CliRunner()
    r = runner.invoke(app, ["data", "glasses", "--faces", str(tmp_path / "faces"), "--glasses", str(tmp_path / "glasses"),
                            "--out", str(tmp_path / "ds"), "--copies", "2", "--holdout", "5"])
    assert r.exit_code == 0, r.stderr
    assert len(list((tmp_path / "ds" / "train" / "backgrounds").iterdir())) == 8  # 4 photos x 2 copies
    assert len(list((tmp_path / "ds" / "test" / "backgrounds").iterdir())) == 1  # p4, unaugmented
    from stgan_cli.training import config as C
    from stgan_cli.training.trainer import Trainer

    cfg = C.load(None, [f"data.path={tmp_path / 'ds'}", "data.kind=glasses", "model.image_size=[48, 48]",
                        "model.warps=1", "stages.pretrain=2", "stages.d_pretrain=1", "stages.warp=1",
                        "optim.batch_size=2", "data.eval_samples=2", "run.sample_every=0"])
    trainer = Trainer(cfg, tmp_path / "run", "cpu", log=lambda *a: None)
    assert trainer.run() is not None
    assert len(trainer.evaluate()["corner_error"]) == 2


SHIPPED = Path(__file__).resolve().parents[2] / "models" / "glasses"


@needs_real
@pytest.mark.skipif(not (SHIPPED / "model.safetensors").exists(), reason="models/glasses is not trained yet")
def test_shipped_glasses_model_beats_the_perturbed_start(tmp_path):
    """A fast regression guard: on held-out real faces the shipped model at least halves the lens error."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in sorted(p.name for p in FACES.iterdir())[4::5][:4]:  # photos the model never saw
        (photos / name).write_bytes((FACES / name).read_bytes())
    r = CliRunner().invoke(app, ["data", "glasses", "--faces", str(photos), "--glasses", str(GLASSES), "--out",
                                 str(tmp_path / "ds"), "--copies", "1"])
    assert r.exit_code == 0, r.stderr
    r = CliRunner().invoke(app, ["eval", str(SHIPPED), "--data", str(tmp_path / "ds"), "--n", "20", "--json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    lens = json.loads(r.stdout)["lens_error"]
    assert lens[-1] <= 0.5 * lens[0] and lens[-1] <= 0.15, lens


def test_data_glasses_from_celeba(tmp_path):
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, 5)]
    for n in names:
        write_rgb(root / "img_align_celeba" / n, scene((218, 178)))
    (root / "list_attr_celeba.txt").write_text("4\nEyeglasses Male\n" + "".join(
        f"{n} {g} 1\n" for n, g in zip(names, (1, -1, -1, 1))))
    (root / "list_eval_partition.txt").write_text("".join(f"{n} 0\n" for n in names))
    (tmp_path / "glasses").mkdir()
    write_rgba(tmp_path / "glasses" / "g.png", drawn_glasses())
    r = CliRunner().invoke(app, ["data", "glasses", "--celeba", str(root), "--glasses", str(tmp_path / "glasses"),
                                 "--out", str(tmp_path / "ds")])
    assert r.exit_code == 0, r.stderr
    assert len(list((tmp_path / "ds" / "backgrounds").iterdir())) == 2
    assert len(list((tmp_path / "ds" / "real").iterdir())) == 2
    r = CliRunner().invoke(app, ["data", "glasses", "--glasses", str(tmp_path / "glasses"), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2
