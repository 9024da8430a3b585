import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from stgan_cli.cli import app

from conftest import REALDATA, cutout_rgba, scene, write_rgb, write_rgba

ROOT = Path(__file__).resolve().parents[1]


def run(*args, env=None):
    result = CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
    return result


def read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_help_and_version_do_not_import_torch():
    code = ("import sys; from stgan_cli.cli import app\n"
            "for args in (['--help'], ['--version'], ['composite', '--help']):\n"
            "    try: app(args, standalone_mode=False)\n"
            "    except SystemExit: pass\n"
            "bad = [m for m in ('torch', 'cv2', 'numpy') if m in sys.modules]\n"
            "assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "composite" in out.stdout and "stgan 0." in out.stdout


def test_composite_rgba_with_every_output(images, model_dir, tmp_path):
    fg, bg = images
    out = tmp_path / "res.png"
    r = run("composite", fg, bg, "--out", out, "--model", model_dir, "--box", "200,150,440,460",
            "--save-warp", "--save-mask", "--steps", tmp_path / "steps")
    assert r.exit_code == 0, r.stderr
    result, background = read(out), read(bg)
    assert result.shape == background.shape
    side = json.loads((tmp_path / "res.json").read_text())
    for key in ("homography", "iterations", "initial_homography", "model", "foreground_size", "background_size"):
        assert key in side
    assert len(side["iterations"]) == 2 and side["background_size"] == {"height": 480, "width": 640}
    # The mask file is where the composite differs from the background.
    mask = read(tmp_path / "res_mask.png")
    changed = np.abs(result.astype(int) - background.astype(int)).max(2) > 8
    assert mask.shape == (480, 640) and (mask[changed] > 0).mean() > 0.99
    assert changed.sum() > 0.5 * (mask > 128).sum()
    # The warp moved the object from the initial box, as the generators asked.
    h0, h = np.array(side["initial_homography"]), np.array(side["homography"])
    assert not np.allclose(h0, h, atol=1e-3)
    steps = sorted(p.name for p in (tmp_path / "steps").iterdir())
    assert steps == ["res_step0.png", "res_step1.png", "res_step2.png", "res_steps.png"]
    assert read(tmp_path / "steps" / "res_step2.png").tobytes() == result.tobytes()


def test_rgb_with_three_channel_jpeg_mask(tmp_path, model_dir):
    rgba = cutout_rgba()
    fg = write_rgb(tmp_path / "fg.jpg", np.ascontiguousarray(rgba[..., :3]))
    mask = write_rgb(tmp_path / "mask.jpg", np.repeat(rgba[..., 3:], 3, 2))
    bg = write_rgb(tmp_path / "bg.png", scene((300, 500)))
    r = run("composite", fg, bg, "--mask", mask, "--out", tmp_path / "o.jpg", "--model", model_dir,
            "--at", "250,180", "--scale", "0.3", "--save-mask", "--iterations", "0")
    assert r.exit_code == 0, r.stderr
    ys, xs = np.nonzero(read(tmp_path / "o_mask.png") > 0)
    # --scale is the visible object's width (soft edge included): 0.3 of 500 px, centred at --at.
    assert abs((xs.max() + xs.min()) / 2 - 250) < 2 and abs(xs.max() + 1 - xs.min() - 150) < 4


def test_iterations_zero_needs_no_model_and_init_resumes(images, tmp_path, monkeypatch):
    monkeypatch.setenv("STGAN_MODELS_DIR", str(tmp_path / "nothing"))
    fg, bg = images
    r = run("composite", fg, bg, "--out", tmp_path / "a.png")
    assert r.exit_code == 1 and "no default model is installed yet" in r.stderr
    r = run("composite", fg, bg, "--out", tmp_path / "a.png", "--iterations", "0", "--box", "100,100,300,400",
            "--save-warp")
    assert r.exit_code == 0, r.stderr
    first = json.loads((tmp_path / "a.json").read_text())
    r = run("composite", fg, bg, "--out", tmp_path / "b.png", "--iterations", "0", "--init", tmp_path / "a.json",
            "--save-warp")
    assert r.exit_code == 0, r.stderr
    np.testing.assert_allclose(json.loads((tmp_path / "b.json").read_text())["homography"], first["homography"])
    assert read(tmp_path / "a.png").tobytes() == read(tmp_path / "b.png").tobytes()


def test_init_continues_refining(images, model_dir, tmp_path):
    fg, bg = images
    run("composite", fg, bg, "--out", tmp_path / "a.png", "--model", model_dir, "--iterations", "1", "--save-warp")
    r = run("composite", fg, bg, "--out", tmp_path / "b.png", "--model", model_dir, "--init", tmp_path / "a.json",
            "--iterations", "1", "--save-warp")
    assert r.exit_code == 0, r.stderr
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    np.testing.assert_allclose(b["initial_homography"], a["homography"], atol=1e-9)
    assert not np.allclose(b["homography"], a["homography"], atol=1e-4)


def test_full_size_canvas_is_taken_as_placed(tmp_path):
    bg = write_rgb(tmp_path / "bg.png", scene((120, 160)))
    canvas = np.zeros((120, 160, 4), np.uint8)
    canvas[40:80, 60:100] = (255, 0, 0, 255)
    fg = write_rgba(tmp_path / "fg.png", canvas)
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "--iterations", "0")
    assert r.exit_code == 0, r.stderr
    out = read(tmp_path / "o.png")
    assert tuple(out[60, 80]) == (0, 0, 255) and tuple(out[10, 10]) == tuple(read(bg)[10, 10])


# --- bad input ------------------------------------------------------------------------------

def _bad_case(tmp_path, case):
    """(args, file that must be named, expected exit code) for each bad input of the issue."""
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.png", scene((200, 300)))
    png = cv2.imencode(".png", read(bg))[1].tobytes()
    jpg = cv2.imencode(".jpg", read(bg))[1].tobytes()
    extra, named, code = [], None, 1
    if case == "missing":
        bg = tmp_path / "nope.png"
    elif case == "zero_bytes":
        bg.write_bytes(b"")
    elif case == "text_png":
        bg.write_text("not an image")
    elif case == "truncated_png":
        bg.write_bytes(png[: len(png) // 2])
    elif case == "truncated_jpeg":
        bg = tmp_path / "bg.jpg"
        bg.write_bytes(jpg[: len(jpg) // 2])
    elif case == "one_pixel":
        cv2.imwrite(str(bg), np.zeros((1, 1, 3), np.uint8))
    elif case == "transparent":
        fg = write_rgba(fg, np.zeros((50, 50, 4), np.uint8))
    elif case == "zero_mask":
        named = write_rgb(tmp_path / "m.png", np.zeros((240, 180, 3), np.uint8))
        extra = ["--mask", named]
    elif case == "mask_size":
        named = write_rgb(tmp_path / "m.png", np.full((100, 180, 3), 255, np.uint8))
        extra = ["--mask", named]
    elif case == "box_outside":
        extra, named = ["--box", "400,10,500,100"], "--box"
    elif case == "pixel_limit":
        extra = ["--max-pixels", "50000"]
    elif case == "unwritable":
        (tmp_path / "blocker").write_text("a file where a folder should be")
        named = tmp_path / "blocker"
        return [fg, bg, "--out", named / "o.png", *extra], named, code, named / "o.png"
    named = named or (fg if case == "transparent" else bg)
    return [fg, bg, "--out", tmp_path / "out.png", *extra], named, code, tmp_path / "out.png"


BAD = ["missing", "zero_bytes", "text_png", "truncated_png", "truncated_jpeg", "one_pixel", "transparent",
       "zero_mask", "mask_size", "box_outside", "pixel_limit", "unwritable"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_clear_line(tmp_path, model_dir, case):
    args, named, code, out = _bad_case(tmp_path, case)
    r = run("composite", *args, "--model", model_dir)
    assert r.exit_code == code
    lines = [l for l in r.stderr.splitlines() if l.startswith("stgan: error")]
    assert len(lines) == 1 and str(named) in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()
    leftovers = [p for p in tmp_path.rglob("*") if ".part" in p.name]
    assert not leftovers


@pytest.mark.parametrize("case", ["sixteen_bit", "grey", "palette", "non_ascii"])
def test_unusual_inputs_that_must_work(tmp_path, model_dir, case):
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg_rgb = scene((200, 300))
    bg = tmp_path / "bg.png"
    if case == "sixteen_bit":
        cv2.imwrite(str(bg), bg_rgb.astype(np.uint16) * 257)
    elif case == "grey":
        cv2.imwrite(str(bg), bg_rgb[..., 0])
    elif case == "palette":
        from PIL import Image

        rgba = cutout_rgba()
        Image.fromarray(rgba).quantize(16, method=Image.Quantize.FASTOCTREE).save(fg, transparency=0)
        write_rgb(bg, bg_rgb)
    elif case == "non_ascii":
        folder = tmp_path / "Bilder ü 图片"
        folder.mkdir()
        fg = write_rgba(folder / "stuhl é.png", cutout_rgba())
        bg = folder / "zimmer ö.png"
        bg.write_bytes(cv2.imencode(".png", bg_rgb)[1].tobytes())
    out = bg.parent / "out é.png"
    r = run("composite", fg, bg, "--out", out, "--model", model_dir)
    assert r.exit_code == 0, r.stderr
    result = cv2.imdecode(np.fromfile(out, np.uint8), cv2.IMREAD_UNCHANGED)
    assert result.shape[:2] == (200, 300)
    if case == "sixteen_bit":
        assert result.dtype == np.uint16


def test_bad_options_are_usage_errors(images, model_dir, tmp_path):
    fg, bg = images
    for args in (["--box", "1,2,3"], ["--box", "1,2,3,4", "--at", "5,5"], ["--iterations", "9"],
                 ["--device", "tpu"]):
        r = run("composite", fg, bg, "--out", tmp_path / "o.png", "--model", model_dir, *args)
        assert r.exit_code == 2, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = run("composite", fg, bg, "--out", tmp_path / "o.gif", "--model", model_dir)
    assert r.exit_code == 2 and "unknown output format" in r.stderr


# --- batch ----------------------------------------------------------------------------------

@pytest.fixture
def folders(tmp_path):
    fgs, bgs = tmp_path / "fgs", tmp_path / "bgs"
    fgs.mkdir()
    bgs.mkdir()
    for i, name in enumerate(["a", "b", "c"]):
        write_rgba(fgs / f"{name}.png", cutout_rgba(seed=i))
        write_rgb(bgs / f"{name}.jpg", scene((180 + 20 * i, 240), seed=i))
    return fgs, bgs


def test_one_foreground_many_backgrounds_survives_a_bad_file(folders, model_dir, tmp_path):
    fgs, bgs = folders
    (bgs / "broken.png").write_text("not an image")
    out = tmp_path / "out"
    r = run("composite", fgs / "a.png", bgs, "--out", out, "--model", model_dir, "--json", "--batch-size", "2")
    assert r.exit_code == 1
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert [l["status"] for l in lines] == ["ok", "ok", "failed", "ok"]  # sorted: a b broken c
    assert "broken.png" in lines[2]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
    assert "3 composited, 0 skipped, 1 failed" in r.stderr
    for name in "abc":
        assert read(out / f"{name}.png").shape == read(bgs / f"{name}.jpg").shape


def test_two_folders_pair_by_name_or_cross(folders, model_dir, tmp_path):
    fgs, bgs = folders
    write_rgba(fgs / "lonely.png", cutout_rgba())
    r = run("composite", fgs, bgs, "--out", tmp_path / "paired", "--model", model_dir, "--format", "jpg")
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "paired").iterdir()) == ["a.jpg", "b.jpg", "c.jpg"]
    assert "lonely.png: no background" in r.stderr
    r = run("composite", f"{fgs}/[ab].png", bgs, "--out", tmp_path / "cross", "--model", model_dir, "--cross")
    assert r.exit_code == 0, r.stderr
    assert len(list((tmp_path / "cross").iterdir())) == 6


def test_shards_split_a_batch_without_overlap(folders, model_dir, tmp_path):
    fgs, bgs = folders
    write_rgb(bgs / "d.jpg", scene((200, 240), seed=7))
    whole = tmp_path / "whole"
    assert run("composite", fgs / "a.png", bgs, "--out", whole, "--model", model_dir).exit_code == 0
    parts = []
    for k in range(3):  # 4 backgrounds in 3 shards: 2 + 1 + 1
        out = tmp_path / f"part{k}"
        r = run("composite", fgs / "a.png", bgs, "--out", out, "--model", model_dir, "--shard", f"{k}/3")
        assert r.exit_code == 0, r.stderr
        parts.append(sorted(p.name for p in out.iterdir()))
        for name in parts[-1]:  # the same bytes as the unsharded batch
            assert (out / name).read_bytes() == (whole / name).read_bytes()
    assert [len(p) for p in parts] == [2, 1, 1] and sorted(sum(parts, [])) == sorted(p.name for p in whole.iterdir())
    for bad, message in (("3/3", "K counts from 0 to N-1"), ("a/b", "expected K/N")):
        r = run("composite", fgs / "a.png", bgs, "--out", tmp_path / "x", "--shard", bad)
        assert r.exit_code == 2 and message in r.stderr
    r = run("composite", fgs / "a.png", bgs / "a.jpg", "--out", tmp_path / "one.png", "--shard", "1/2")
    assert r.exit_code == 2 and "--shard is for folders" in r.stderr


def test_existing_outputs(folders, model_dir, tmp_path):
    fgs, bgs = folders
    out = tmp_path / "out"
    args = ["composite", fgs / "a.png", bgs, "--out", out, "--model", model_dir]
    assert run(*args).exit_code == 0
    before = (out / "a.png").stat().st_mtime_ns
    r = run(*args)
    assert r.exit_code == 2 and "--overwrite or --skip-existing" in r.stderr
    r = run(*args, "--skip-existing", "--json")
    assert r.exit_code == 0 and {json.loads(l)["status"] for l in r.stdout.splitlines()} == {"skipped"}
    assert (out / "a.png").stat().st_mtime_ns == before
    assert run(*args, "--overwrite").exit_code == 0


def test_installed_console_script_runs(images, model_dir, tmp_path):
    fg, bg = images
    exe = Path(sys.executable).with_name("stgan")
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    out = subprocess.run([str(exe), "composite", str(fg), str(bg), "--out", str(tmp_path / "o.png"),
                          "--model", str(model_dir), "--device", "cpu"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "on cpu" in out.stderr and (tmp_path / "o.png").exists()


def test_console_script_exit_codes_and_flushed_output(images, model_dir, tmp_path):
    """main() ends with os._exit: codes and buffered output must still come out right."""
    fg, bg = images
    base = [sys.executable, "-m", "stgan_cli"]
    ok = subprocess.run([*base, "composite", str(fg), str(bg), "--out", str(tmp_path / "o.png"), "--model",
                         str(model_dir), "--json"], capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == "ok"
    missing = subprocess.run([*base, "composite", str(tmp_path / "nope.png"), str(bg), "--out",
                              str(tmp_path / "x.png"), "--model", str(model_dir)], capture_output=True, text=True)
    assert missing.returncode == 1 and "nope.png: no such file" in missing.stderr
    usage = subprocess.run([*base, "composite", str(fg), str(bg), "--out", "x.png", "--box", "1,2"],
                           capture_output=True, text=True)
    assert usage.returncode == 2
    assert subprocess.run([*base, "--version"], capture_output=True, text=True).stdout.startswith("stgan ")


# --- real photos -----------------------------------------------------------------------------

def placement_triples():
    triples = []
    for name in ("placement", "placement_jpeg_mask_case"):
        folder = REALDATA / name
        for bg in sorted((folder / "background").glob("*")) if folder.is_dir() else []:
            box = folder / "bbox" / f"{bg.stem}.txt"
            triples.append(pytest.param(folder, bg.name, box if box.exists() else None, id=f"{name}/{bg.stem}"))
    return triples or [pytest.param(None, None, None, marks=pytest.mark.skip("../shared/realdata is absent"))]


@pytest.mark.parametrize("folder,name,box_file", placement_triples())
def test_realdata_placement_smoke(model_dir, tmp_path, folder, name, box_file):
    bgp = folder / "background" / name
    fg = next((folder / "foreground").glob(f"{bgp.stem}.*"))
    mask = next((folder / "foreground_mask").glob(f"{bgp.stem}.*"))
    box = [float(v) for v in box_file.read_text().split()] if box_file else None
    out = tmp_path / "out.png"
    args = ["--box", ",".join(f"{v:g}" for v in box)] if box else ["--scale", "0.3"]
    r = run("composite", fg, bgp, "--mask", mask, "--out", out, "--model", model_dir, "--save-mask", *args)
    assert r.exit_code == 0, r.stderr
    result, bg = read(out), cv2.imdecode(np.fromfile(bgp, np.uint8), cv2.IMREAD_COLOR)
    assert result.shape[:2] == bg.shape[:2]
    m = read(out.with_name("out_mask.png")) > 128
    ys, xs = np.nonzero(m)
    assert len(xs) > 100
    if box:  # the object stays near its box: the random model only nudges it
        x1, y1, x2, y2 = box
        assert x1 - 0.25 * (x2 - x1) < xs.mean() < x2 + 0.25 * (x2 - x1)
        assert y1 - 0.25 * (y2 - y1) < ys.mean() < y2 + 0.25 * (y2 - y1)
    untouched = read(out.with_name("out_mask.png")) == 0
    assert np.abs(result.astype(int) - bg.astype(int))[untouched].max() <= 1
