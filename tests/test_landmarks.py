"""Facial landmarks (stgan_cli/landmarks.py, the ``landmarks`` extra) on real faces, and the Haar
fallback when they are missing."""

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from stgan_cli import faces, imageio, landmarks
from stgan_cli.cli import app
from stgan_cli.errors import StganError

from conftest import REALDATA

FACES = REALDATA / "faces"
needs_real = pytest.mark.skipif(not FACES.is_dir(), reason="../shared/realdata/faces is not present")
needs_dlib = pytest.mark.skipif(not landmarks.available(),
                                reason="dlib is not installed (pip install 'stgan-cli[landmarks]')")


def photo(name: str) -> np.ndarray:
    return imageio.read_image(FACES / name).pixels[..., :3]


@needs_real
@needs_dlib
def test_eyes_of_the_aligned_celeba_face_are_where_celeba_puts_them():
    found = faces.detect_faces(photo("no_glasses/stgan_example_face.png"))
    assert len(found) == 1 and found[0].detector == "landmarks"
    iod = np.linalg.norm(np.subtract(*faces.CANONICAL_EYES_144))
    assert np.abs(found[0].eyes - faces.CANONICAL_EYES_144).max() < 0.1 * iod


@needs_real
@needs_dlib
def test_roll_and_yaw_follow_the_head():
    img = photo("no_glasses/img1.jpg")
    h, w = img.shape[:2]
    upright = faces.detect_faces(img)[0].landmarks
    tilted = faces.detect_faces(cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), 12, 1.0), (w, h),
                                               borderMode=cv2.BORDER_REPLICATE))[0].landmarks
    # OpenCV turns positive angles counter-clockwise: the eye line's clockwise angle drops by 12 degrees
    assert landmarks.roll_degrees(tilted) - landmarks.roll_degrees(upright) == pytest.approx(-12, abs=2)
    mirrored = faces.detect_faces(np.ascontiguousarray(img[:, ::-1]))[0].landmarks
    assert landmarks.yaw(mirrored) == pytest.approx(-landmarks.yaw(upright), abs=0.1)
    assert landmarks.face_width(upright) > 1.6 * np.linalg.norm(np.subtract(*landmarks.eye_centres(upright)))


@needs_real
@needs_dlib
def test_faces_with_glasses_are_told_from_bare_ones():
    """The calibration stated in landmarks.wears_glasses, re-measured."""
    def worn(folder):
        out = []
        for f in sorted((FACES / folder).glob("*.jpg")):
            out += [x.glasses for x in faces.detect_faces(imageio.read_image(f).pixels[..., :3])]
        return out

    with_glasses, bare = worn("with_glasses"), worn("no_glasses")
    assert sum(with_glasses) >= 9 and len(with_glasses) >= 11
    assert sum(bare) == 0 and len(bare) >= 65


@needs_real
@needs_dlib
def test_landmarks_find_more_of_a_group_than_haar():
    img = photo("no_glasses/selfie-many-people.jpg")
    assert len(faces.detect_faces(img)) > len(faces.detect_faces(img, "haar"))


@needs_real
def test_the_detector_is_chosen_and_reported(tmp_path, monkeypatch):
    img = photo("no_glasses/img1.jpg")
    assert {f.detector for f in faces.detect_faces(img, "haar")} == {"haar"}
    with pytest.raises(StganError, match="expected one of auto, landmarks, haar"):
        faces.detect_faces(img, "mtcnn")
    monkeypatch.setattr(landmarks, "available", lambda: False)  # a machine without the extra
    assert {f.detector for f in faces.detect_faces(img)} == {"haar"}
    with pytest.raises(StganError, match="pip install 'stgan-cli\\[landmarks\\]'"):
        faces.detect_faces(img, "landmarks")


@needs_real
@needs_dlib
def test_composite_reports_faces_that_wear_glasses(tmp_path):
    glasses = REALDATA / "glasses" / "glasses_00.png"
    bg = next(f for f in sorted((FACES / "with_glasses").glob("*.jpg"))
              if all(x.glasses for x in faces.detect_faces(imageio.read_image(f).pixels[..., :3])))
    runner = CliRunner()
    r = runner.invoke(app, ["composite", str(glasses), str(bg), "--out", str(tmp_path / "a.jpg"), "--place", "face",
                            "--iterations", "0", "--save-warp"])
    assert r.exit_code == 0 and "already wears glasses and gets a second pair" in r.stderr
    face = json.loads((tmp_path / "a.json").read_text())["faces"][0]
    assert face["detector"] == "landmarks" and face["glasses"] is True and {"roll", "yaw", "width"} <= set(face)
    r = runner.invoke(app, ["composite", str(glasses), str(bg), "--out", str(tmp_path / "b.jpg"), "--place", "face",
                            "--iterations", "0", "--skip-glasses-faces"])
    assert r.exit_code == 1 and "every face found already wears glasses" in r.stderr
    assert not (tmp_path / "b.jpg").exists()


@needs_real
@needs_dlib
def test_detector_protocol_starts_where_haar_puts_the_eyes(tmp_path):
    """`stgan data glasses` aligns crops on the landmarks and records Haar's eyes; `eval --protocol
    detector` starts the glasses there, so its initial lens error is Haar's distance from the landmarks."""
    from test_faces import glasses_model

    photos = tmp_path / "faces"
    photos.mkdir()
    for name in ("img1.jpg", "couple.jpg", "img10.jpg"):
        (photos / name).write_bytes((FACES / "no_glasses" / name).read_bytes())
    runner = CliRunner()
    r = runner.invoke(app, ["data", "glasses", "--faces", str(photos), "--glasses", str(REALDATA / "glasses"),
                            "--out", str(tmp_path / "ds"), "--copies", "1"])
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(line) for line in (tmp_path / "ds" / "meta.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and {r["detector"] for r in rows} == {"landmarks"}
    assert all(-20 < r["roll"] < 20 and -1 <= r["yaw"] <= 1 and 1.6 < r["width_over_eyes"] < 2.8 for r in rows)
    eyes = faces.canonical_eyes((144, 144))
    iod = np.linalg.norm(eyes[1] - eyes[0])
    haar = [np.linalg.norm(np.array(r["haar_eyes"]) - eyes, axis=1).mean() / iod for r in rows if r["haar_eyes"]]
    assert len(haar) >= 3
    r = runner.invoke(app, ["eval", str(glasses_model(tmp_path / "m")), "--data", str(tmp_path / "ds"),
                            "--protocol", "detector", "--n", str(len(haar)), "--json"])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["protocol"] == "detector" and out["n"] == len(haar)
    assert out["lens_error"][0] == pytest.approx(np.mean(haar), abs=2e-3)
