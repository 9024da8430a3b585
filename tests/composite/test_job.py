"""A composite job alone: its options checked before any work (job.Options.check), the batch it
plans from the command line's arguments (batch.plan), a failure's line, and the files a composite
writes landing together (outputs.write)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stgan_cli.composite import batch, compositing, outputs
from stgan_cli.composite.inputs import Item
from stgan_cli.composite.job import Options, Prepared, Result
from stgan_cli.errors import StganError, UsageError
from stgan_cli.files import imageio

from conftest import cutout_rgba, random_model, scene, write_rgb, write_rgba


@pytest.mark.parametrize("opts,words", [
    (dict(box=(0, 0, 10, 10), at=(5, 5)), "--box and --at"),
    (dict(init=Path("w.json"), scale=0.3), "--init already fixes"),
    (dict(iterations=-1), "--iterations must be 0 or more"),
    (dict(place="floor"), "--place floor: expected auto, face or scene"),
    (dict(faces="some"), "--faces some"),
    (dict(detector="eyes"), "--detector eyes"),
    (dict(scale=float("nan")), "--scale nan: must be a finite number"),
    (dict(scale=0.0), "--scale 0: expected a positive fraction"),
    (dict(box=(30, 0, 10, 10)), "X2 > X1 and Y2 > Y1"),
    (dict(trust_region="move=-1"), "move"),
    (dict(engine="tensorrt"), "--engine tensorrt: expected one of auto, torch, onnx"),
])
def test_contradicting_or_malformed_options_are_refused(opts, words):
    with pytest.raises(UsageError, match=words.replace("(", r"\(")):
        Options(**opts).check()


def test_sound_options_pass():
    Options(box=(0, 0, 10, 10), scale=0.4, iterations=0, place="scene", trust_region="move=0.3").check()


def test_a_failure_always_names_its_files():
    item = Item(Path("a/fg.png"), Path("a/bg.png"), Path("o.png"))
    assert Result.failure(item, "out of memory").error == "a/fg.png on a/bg.png: out of memory"
    assert Result.failure(item, "a/bg.png: truncated").error == "a/bg.png: truncated"
    assert Result.failure(item, "x").to_json()["status"] == "failed"


@pytest.fixture
def folders(tmp_path):
    write_rgba(tmp_path / "fg.png", cutout_rgba())
    (tmp_path / "bgs").mkdir()
    for k in range(4):
        write_rgb(tmp_path / "bgs" / f"room_{k}.png", scene((120, 160), seed=k))
    return tmp_path


def test_a_batch_plan_takes_its_shard_and_claims_its_outputs(folders):
    fg, bgs, out = str(folders / "fg.png"), str(folders / "bgs"), folders / "out"
    job = batch.plan(fg, bgs, str(out), None, Options(iterations=0), shard_spec="1/2")
    assert job.batch and job.model is None and job.iterations == 0 and len(job.items) == 2
    assert job.notes == ["shard 1/2: 2 of 4 items"] and out.is_dir()
    (out / job.items[0].out.name).write_bytes(b"there")
    with pytest.raises(UsageError, match="already exists"):
        batch.plan(fg, bgs, str(out), None, Options(iterations=0), shard_spec="1/2")
    kept = batch.plan(fg, bgs, str(out), None, Options(iterations=0), shard_spec="1/2", skip_existing=True)
    assert len(kept.items) == 1 and kept.skipped[0].out.name == job.items[0].out.name
    with pytest.raises(UsageError, match="contradict"):
        batch.plan(fg, bgs, str(out), None, Options(iterations=0), skip_existing=True, overwrite=True)


def test_one_image_cannot_be_sharded_or_sent_to_ray(folders):
    fg, bg, out = str(folders / "fg.png"), str(folders / "bgs" / "room_0.png"), str(folders / "o.png")
    with pytest.raises(UsageError, match="one image cannot be split"):
        batch.plan(fg, bg, out, None, Options(iterations=0), shard_spec="0/2")
    with pytest.raises(UsageError, match="--ray is for batches"):
        batch.plan(fg, bg, out, None, Options(iterations=0), ray=True)


def test_a_plan_opens_the_model_and_checks_the_iterations(folders):
    model = random_model(folders / "m", warps=2)
    fg, bg, out = str(folders / "fg.png"), str(folders / "bgs" / "room_0.png"), str(folders / "o.png")
    job = batch.plan(fg, bg, out, None, Options(), model_ref=str(model))
    assert not job.batch and job.model.config.warps == 2 and job.iterations == 2
    with pytest.raises(UsageError, match="--iterations 3: the model has 2 generators"):
        batch.plan(fg, bg, out, None, Options(iterations=3), model_ref=str(model))
    with pytest.raises(UsageError, match="the onnx engine runs on the CPU"):
        batch.plan(fg, bg, out, None, Options(engine="onnx"), model_ref=str(model), device="cuda")


def prepared(tmp_path) -> tuple[Prepared, np.ndarray]:
    bg = imageio.Picture(scene((60, 80)), None, "png", "bg.png")
    cutout = compositing.make_cutout(imageio.Picture(cutout_rgba((30, 20)), None, "png", "fg.png"))
    item = Item(Path("fg.png"), Path("bg.png"), tmp_path / "out" / "o.png")
    (tmp_path / "out").mkdir()
    return Prepared(item, bg, cutout, []), np.eye(3)


def test_outputs_land_together_or_not_at_all(tmp_path):
    prep, h = prepared(tmp_path)
    image, alpha = outputs.composite_all(prep.bg.pixels, prep.cutout, [h])
    opts = Options(save_mask=True)
    outputs.write(prep, opts, image, alpha, [[h]], {"homography": h.tolist()}, [image], None)
    out = prep.item.out
    assert sorted(p.name for p in out.parent.iterdir()) == ["o.json", "o.png", "o_mask.png", "o_top2.png"]
    assert np.array_equal(imageio.read_image(out).pixels, image)
    # one part that cannot be written: none of them is, and the earlier files stay as they were
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    with pytest.raises((StganError, TypeError)):
        outputs.write(prep, opts, image * 0, alpha, [[h]], {"bad": object()}, [], None)
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before
