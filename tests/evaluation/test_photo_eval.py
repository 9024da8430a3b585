"""The real-photo evaluation and its report, alone (stgan_cli/evaluation/photos.py, report.py):
errors of a placement against the truth, the summary and its breakdown by size and source, and the
tables written from them."""

from __future__ import annotations

import numpy as np
import pytest

from stgan_cli.composite import compositing
from stgan_cli.evaluation import photos, report, runs
from stgan_cli.errors import UsageError
from stgan_cli.files import imageio

from conftest import cutout_rgba, scene


def case(name: str, size=(200, 300), box=(40, 60, 100, 160), source="coco_sample") -> photos.Case:
    """A photo with an object at ``box`` (x1, y1, x2, y2 pixels) on a canvas the photo's size."""
    canvas = np.zeros((*size, 4), np.uint8)
    x1, y1, x2, y2 = box
    canvas[y1:y2, x1:x2] = cutout_rgba((y2 - y1, x2 - x1))
    canvas[y1:y2, x1:x2, 3] = 255
    cutout = compositing.make_cutout(imageio.Picture(canvas, None, "png", f"{name}.png"))
    return photos.Case(name, scene(size), cutout, source)


def shift(dx: float) -> np.ndarray:
    return np.array([[1, 0, dx], [0, 1, 0], [0, 0, 1]], float)


def test_the_truth_scores_zero_and_a_shift_its_length():
    c = case("a")
    assert photos.case_metrics(c, np.eye(3)) == pytest.approx(
        {"corner_px": 0.0, "corner_pct": 0.0, "area_ratio": 1.0, "iou": 1.0})
    moved = photos.case_metrics(c, shift(10))
    assert moved["corner_px"] == pytest.approx(10) and moved["corner_pct"] == pytest.approx(100 * 10 / np.hypot(300, 200))
    assert moved["iou"] == pytest.approx(50 / 70)  # a 60 px wide box moved by 10: 50 of 70 columns shared


def test_summary_and_breakdown_count_what_got_worse_by_size_and_source():
    cases = [case("small", box=(10, 10, 30, 30)), case("large", box=(0, 0, 200, 150), source="furniture_x")]
    starts = [[shift(8)], [shift(8)]]
    identity = {"label": "identity", "model": None, "warps": 0, **photos.summarise(cases, starts)}
    model = {"label": "m", "model": "m", "warps": 1,
             **photos.summarise(cases, [[shift(8), shift(2)], [shift(8), shift(12)]])}
    assert model["n"] == 2 and model["worse_share"] == 0.5 and len(model["corner_px"]) == 2
    groups = {(g["group"], g["label"]): g for g in photos.breakdown(cases, [identity, model])}
    assert set(groups) == {("size", "< 5 %"), ("size", "> 40 %"), ("source", "COCO photos"),
                           ("source", "furniture photos")}
    assert groups[("size", "< 5 %")]["models"]["m"]["worse_share"] == 0.0
    assert groups[("size", "> 40 %")]["models"]["m"]["worse_share"] == 1.0
    text = report.photo_markdown([identity, model]) + "\n" + report.breakdown_markdown(list(groups.values()))
    assert "| identity (no correction) |" in text and "| m (1 G) |" in text and "worse 100 %" in text


def test_labels_tell_models_apart_by_their_folders():
    assert report.labels(["indoor", "runs/a/model", "runs/b/model"]) == ["indoor", "a/model", "b/model"]


def test_iterations_beyond_a_model_are_refused():
    class Model:
        ref, config = "m", type("C", (), {"warps": 2})

    runs.check_iterations([Model], 2)
    with pytest.raises(UsageError, match="--iterations 3: m has 2 generators"):
        runs.check_iterations([Model], 3)
