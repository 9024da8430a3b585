"""Facial landmarks (stgan_cli/composite/landmarks.py, the ``landmarks`` extra) on real faces, and the Haar
fallback when they are missing."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from stgan_cli.composite import faces, landmarks
from stgan_cli.files import imageio
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


def synthetic_face(iod=60.0, nose_shift=0.0, jaw=2.22, roll=0.0, at=(300.0, 200.0)):
    """68 points of a face: eyes ``iod`` apart, the nose tip moved along the eye line by a fraction of
    ``iod`` (a turned head), jaw ends ``jaw`` eye distances apart."""
    pts = np.zeros((68, 2))
    pts[landmarks.LEFT_EYE] = (-iod / 2, 0)
    pts[landmarks.RIGHT_EYE] = (iod / 2, 0)
    pts[landmarks.NOSE_TIP] = (nose_shift * iod, 0.8 * iod)
    pts[landmarks.JAW_LEFT], pts[landmarks.JAW_RIGHT] = (-jaw * iod / 2, 0.2 * iod), (jaw * iod / 2, 0.2 * iod)
    a = np.radians(roll)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return pts @ rot.T + at


def test_a_face_looking_ahead_gets_the_lenses_of_real_wearers():
    """The measured rule (tools/glasses_lenses.py): 1.10 eye distances apart, 0.08 below the eyes."""
    np.testing.assert_allclose(landmarks.glasses_anchor(synthetic_face(iod=60.0)),
                               [[300 - 33.0, 200 + 4.8], [300 + 33.0, 200 + 4.8]], atol=1e-9)


def test_a_turned_or_broad_face_keeps_the_lenses_over_its_eyes():
    ahead = landmarks.glasses_anchor(synthetic_face())
    turned = synthetic_face(nose_shift=0.4, jaw=2.6)
    assert landmarks.yaw(turned) == pytest.approx(0.31, abs=0.01)
    np.testing.assert_allclose(landmarks.glasses_anchor(turned), ahead, atol=1e-9)
    np.testing.assert_allclose(landmarks.glasses_anchor(synthetic_face(jaw=2.9)), ahead, atol=1e-9)


def test_the_anchor_turns_and_scales_with_the_head():
    upright = landmarks.glasses_anchor(synthetic_face(iod=50.0, at=(0, 0)))
    a = np.radians(17)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    rolled = landmarks.glasses_anchor(synthetic_face(iod=100.0, roll=17, at=(0, 0)))
    np.testing.assert_allclose(rolled, 2 * upright @ rot.T, atol=1e-9)
    # the drop is down the face, not down the image: perpendicular to the eye line
    mid, line = rolled.mean(0), rolled[1] - rolled[0]
    assert np.dot(mid, line) == pytest.approx(0, abs=1e-9)
    assert np.linalg.norm(mid) == pytest.approx(8.0)


def test_faces_without_landmarks_get_the_same_rule_from_their_eyes():
    eyes = np.array([[10.0, 20.0], [50.0, 22.0]])
    face = faces.Face((0, 0, 60, 60), eyes, True)
    np.testing.assert_allclose(faces.glasses_anchor(face), landmarks.glasses_from_eyes(eyes))
    assert np.linalg.norm(np.subtract(*faces.glasses_anchor(face))) == pytest.approx(
        landmarks.LENS_SPACING * np.linalg.norm(eyes[1] - eyes[0]))


@needs_real
@needs_dlib
def test_the_anchor_sits_where_real_wearers_lenses_do():
    """On the photos of people wearing glasses, the anchor's lens midpoint against the rims read off
    them (tools/glasses_lenses.py): within 0.04 eye distances along the eye line on average (0.07 at most), and
    the vertical within the frames' own spread."""
    import importlib.util
    import sys

    tool_path = Path(__file__).resolve().parents[2] / "tools" / "glasses_lenses.py"
    spec = importlib.util.spec_from_file_location("glasses_lenses", tool_path)
    tool = importlib.util.module_from_spec(spec)
    sys.modules["glasses_lenses"] = tool
    spec.loader.exec_module(tool)
    along, below = [], []
    for name, (left, right) in tool.RIMS.items():
        points = tool.face_points(FACES / "with_glasses" / name)
        rims = np.array([[(left[0] + left[1]) / 2, (left[2] + left[3]) / 2],
                         [(right[0] + right[1]) / 2, (right[2] + right[3]) / 2]])
        rim_mid = (rims.mean(0) - [tool.W / 2, tool.H / 2]) / tool.PER_EYE  # eye distances, levelled
        eyes = landmarks.eye_centres(points)
        iod = np.linalg.norm(eyes[1] - eyes[0])
        u = (eyes[1] - eyes[0]) / iod
        off = landmarks.glasses_anchor(points).mean(0) - eyes.mean(0)
        along.append(rim_mid[0] - np.dot(off, u) / iod)
        below.append(rim_mid[1] - np.dot(off, [-u[1], u[0]]) / iod)
    assert np.abs(along).max() < 0.08 and abs(np.mean(along)) < 0.04
    assert abs(np.median(below)) < 0.01 and np.abs(below).max() < 0.16


@pytest.mark.slow
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
    # the crops are aligned on where the glasses belong, and Haar's start is the same rule on Haar's
    # eyes; errors are over each face's own eye distance
    haar = [np.linalg.norm(landmarks.glasses_from_eyes(np.array(r["haar_eyes"])) - eyes, axis=1).mean()
            / np.linalg.norm(np.subtract(*r["eyes_in_crop"])) for r in rows if r["haar_eyes"]]
    assert len(haar) >= 3
    r = runner.invoke(app, ["eval", str(glasses_model(tmp_path / "m")), "--data", str(tmp_path / "ds"),
                            "--protocol", "detector", "--n", str(len(haar)), "--json"])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["protocol"] == "detector" and out["n"] == len(haar)
    assert out["lens_error"][0] == pytest.approx(np.mean(haar), abs=2e-3)
    # the report's sketch shows the cases from the landmarks: lines on white, none of the faces' pixels
    r = runner.invoke(app, ["eval", str(glasses_model(tmp_path / "m")), "--data", str(tmp_path / "ds"),
                            "--protocol", "detector", "--n", str(len(haar)), "--report", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.stderr
    sketch = imageio.read_image(tmp_path / "rep" / "sketch.png").pixels
    assert sketch.shape[0] == 22 + 3 * 144 and sketch.shape[1] == 3 * 3 * 144 + 4
    assert (sketch == 255).all(-1).mean() > 0.85
    green = (sketch[..., 1] > 140) & (sketch[..., 0] < 80) & (sketch[..., 2] < 100)
    assert green[22:].any()  # the model's glasses
