"""The second audit (issue 32): every way an output could collide with an input or another output,
every way a failed run could remove a previous file, numbers checked at the edge, no hang on special
files, and library chatter kept off the terminal.  Each test failed on the code before the fix."""

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from stgan_cli.files import atomic, yamlio
from stgan_cli.model import modelstore
from stgan_cli.app.server import Session, make_server
from stgan_cli.cli import app
from stgan_cli.errors import StganError

from conftest import cutout_rgba, scene, write_rgb, write_rgba

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"


def run(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)


def one_line(r, code: int, *words: str) -> str:
    assert r.exit_code == code, (r.exit_code, r.stderr)
    errors = [line for line in r.stderr.splitlines() if line.startswith("stgan: error")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def room(tmp_path):
    fg = write_rgba(tmp_path / "obj.png", cutout_rgba())
    bg = write_rgb(tmp_path / "room.png", scene((240, 320)))
    return fg, bg


# --- outputs against inputs and each other --------------------------------------------------------

def test_save_mask_onto_the_input_mask_is_refused(room, tmp_path):
    fg, bg = room
    rgb = write_rgb(tmp_path / "rgb.png", cutout_rgba()[..., :3])
    mask = tmp_path / "x_mask.png"
    mask.write_bytes(write_rgb(tmp_path / "m.png", np.repeat(cutout_rgba()[..., 3:], 3, 2)).read_bytes())
    before = digest(mask)
    r = run("composite", rgb, bg, "--mask", mask, "--out", tmp_path / "x.png", "--save-mask", "-k", "0")
    one_line(r, 2, "--save-mask would write", "x_mask.png", "the mask", "would be overwritten")
    assert digest(mask) == before and not (tmp_path / "x.png").exists()


def test_save_mask_onto_the_background_is_refused(room, tmp_path):
    fg, bg = room
    photo = tmp_path / "x_mask.png"
    photo.write_bytes(bg.read_bytes())
    r = run("composite", fg, photo, "--out", tmp_path / "x.png", "--save-mask", "-k", "0")
    one_line(r, 2, "the background", "would be overwritten")
    assert digest(photo) == digest(bg) and not (tmp_path / "x.png").exists()


def test_a_mask_and_a_composite_with_one_name_are_refused_before_any_work(room, tmp_path):
    fg, bg = room
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("x.png", "x_mask.png"):
        (folder / name).write_bytes(bg.read_bytes())
    r = run("composite", fg, folder, "--out", tmp_path / "out", "--save-mask", "-k", "0")
    one_line(r, 2, "x_mask.png would be written twice", "the mask of", "the composite of")
    assert not (tmp_path / "out").exists()


def test_steps_and_sidecars_that_would_overwrite_inputs_are_refused(room, tmp_path):
    fg, bg = room
    steps = tmp_path / "steps"
    steps.mkdir()
    victim = steps / "o_step0.png"
    victim.write_bytes(bg.read_bytes())
    r = run("composite", fg, victim, "--out", tmp_path / "o.png", "--steps", steps, "-k", "0")
    one_line(r, 2, "--steps would write", "o_step0.png", "the background")
    init = tmp_path / "o.json"
    init.write_text(json.dumps({"homography": np.eye(3).tolist(), "foreground_size": {"height": 240, "width": 180},
                                "background_size": {"height": 240, "width": 320}}))
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "--init", init, "--save-warp", "-k", "0")
    one_line(r, 2, "--save-warp would write", "the --init warp file")
    assert json.loads(init.read_text())["homography"] == np.eye(3).tolist()


def test_a_batch_counts_a_sidecar_that_exists_as_an_existing_output(room, tmp_path):
    fg, bg = room
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(bg.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.json").write_text("{}")  # a sidecar from another run, without its image
    r = run("composite", fg, folder, "--out", out, "--save-warp", "-k", "0")
    one_line(r, 2, "a.json already exists", "--overwrite")
    assert (out / "a.json").read_text() == "{}"


# --- a failed run leaves the previous files ----------------------------------------------------

def test_a_failure_after_the_image_keeps_the_previous_image(room, tmp_path):
    fg, bg = room
    out = tmp_path / "o.png"
    assert run("composite", fg, bg, "--out", out, "-k", "0", "--box", "10,10,100,100").exit_code == 0
    before = digest(out)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the steps folder's parent should be")
    r = run("composite", fg, bg, "--out", out, "-k", "0", "--save-warp", "--steps", blocker / "steps")
    assert r.exit_code == 1 and "steps" in r.stderr
    assert digest(out) == before and not (tmp_path / "o.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_files_written_together_land_together_or_not_at_all(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    b.write_text("old b")
    with pytest.raises(StganError, match="no-such-folder"):
        with atomic.Together() as files:
            files.write_bytes(a, b"new a")
            files.write_bytes(b, b"new b")
            files.write_bytes(tmp_path / "no-such-folder" / "c.txt", b"c")
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    with pytest.raises(ZeroDivisionError):
        with atomic.Together() as files:
            files.write_bytes(a, b"new a")
            1 / 0
    assert a.read_text() == "old a"
    with atomic.Together() as files:
        files.write_bytes(a, b"new a")
        files.write_bytes(b, b"new b")
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_a_target_that_became_a_folder_stops_the_group_before_any_rename(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("old a")
    with pytest.raises(StganError, match="is a folder"):
        with atomic.Together() as files:
            files.write_bytes(a, b"new a")
            files.write_bytes(tmp_path / "b", b"new b")
            (tmp_path / "b").mkdir()
    assert a.read_text() == "old a"


# --- special files and hostile settings files ---------------------------------------------------

def test_init_from_a_pipe_a_device_or_a_deep_nest_is_one_line(room, tmp_path):
    fg, bg = room
    fifo = tmp_path / "warp.json"
    os.mkfifo(fifo)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    for init, words in ((fifo, "named pipe"), ("/dev/zero", "device"), (deep, "nested too deeply")):
        out = subprocess.run([sys.executable, "-m", "stgan_cli", "composite", str(fg), str(bg), "--out",
                              str(tmp_path / "o.png"), "-k", "0", "--init", str(init)],
                             capture_output=True, text=True, timeout=60)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 1 and len(lines) == 1 and words in lines[0], out.stderr


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, model_dir):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    folder = tmp_path / "bombed"
    folder.mkdir()
    for f in model_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "config.yaml").write_text(bomb)
    t0 = time.perf_counter()
    r = run("models", "info", folder)
    one_line(r, 1, "config.yaml", "repeated aliases")
    assert time.perf_counter() - t0 < 20  # it ran for minutes before; the bound only catches a hang
    assert yamlio.expanded_size(yamlio.read_yaml(ROOT / "configs" / "indoor.yaml")) < 500


@pytest.mark.parametrize("setting,words", [
    ("optim.lr_g=nan", "finite"), ("optim.lr_g=1e999", "finite"), ("optim.lr_g=-0.1", "above 0"),
    ("data.eval_samples=-5", ">= 1"), ("run.eval_every=-1", ">= 0"),
])
def test_training_numbers_are_refused_at_start(tmp_path, setting, words):
    r = run("train", "--config", SMOKE, "--data", tmp_path, "--out", tmp_path / "run", "--set", setting)
    one_line(r, 2, setting.split("=")[0], words)
    assert not (tmp_path / "run").exists()


# --- command-line numbers and choices ------------------------------------------------------------

def test_absurd_coordinates_are_a_usage_error_without_warnings(room, tmp_path):
    fg, bg = room
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "--box", "0,0,1e300,1e300")
    one_line(r, 2, "--box", "1e+06")
    assert "RuntimeWarning" not in r.stderr and len(r.stderr.replace(str(tmp_path), "")) < 300  # paths apart
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "-k", "0", "--at", "9e5,9e5", "--scale", "1")
    line = one_line(r, 1, "outside")
    assert "RuntimeWarning" not in r.stderr and len(line.replace(str(tmp_path), "")) < 300


@pytest.mark.parametrize("args", [
    ["data", "synth-indoor", "--out", "{tmp}/d", "--split", "nan"],
    ["data", "from-photos", "--instances", "{tmp}", "--out", "{tmp}/d", "--dilate", "nan"],
    ["eval", "indoor", "--data", "{tmp}", "--homography", "nan"],
    ["eval", "indoor", "--data", "{tmp}", "--box-std", "nan"],
    ["composite", "a.png", "b.png", "--out", "{tmp}/o.png", "--scale", "nan"],
])
def test_nan_is_refused_by_every_float_option(tmp_path, args):
    r = run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.exit_code == 2 and ("nan" in r.stderr or "Invalid value" in r.stderr), r.stderr
    assert not (tmp_path / "d").exists()


def test_onnx_on_a_gpu_is_a_usage_error(room, tmp_path):
    fg, bg = room
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "--engine", "onnx", "--device", "cuda:0")
    one_line(r, 2, "--engine onnx", "CPU")


def test_special_files_in_a_batch_folder_are_named(room, tmp_path):
    fg, bg = room
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(bg.read_bytes())
    os.mkfifo(folder / "pipe.png")
    (folder / "gone.png").symlink_to(tmp_path / "nothing.png")
    r = run("composite", fg, folder, "--out", tmp_path / "out", "-k", "0")
    assert r.exit_code == 0, r.stderr
    assert "pipe.png: a named pipe; skipped" in r.stderr and "gone.png: a link to nothing; skipped" in r.stderr


def test_a_damaged_jpeg_gets_our_warning_not_the_decoders(room, tmp_path):
    import cv2

    fg, bg = room
    ok, buf = cv2.imencode(".jpg", scene((240, 320)))
    data = bytearray(buf.tobytes())
    for i in range(len(data) // 2, len(data) // 2 + 600, 7):
        data[i] = 0xFF if i % 2 else 0x00
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(bytes(data))
    out = subprocess.run([sys.executable, "-m", "stgan_cli", "composite", str(fg), str(damaged), "--out",
                          str(tmp_path / "o.png"), "-k", "0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert all(line.startswith("stgan: ") for line in out.stderr.splitlines()), out.stderr
    assert "warning: " in out.stderr and "damaged.jpg: damaged JPEG data" in out.stderr


def test_a_batch_piped_into_head_finishes_its_work(room, tmp_path):
    fg, bg = room
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        (folder / f"r{i}.png").write_bytes(bg.read_bytes())
    cmd = (f"set -o pipefail; {sys.executable} -m stgan_cli composite {fg} {folder} --out {tmp_path / 'out'} "
           f"-k 0 --json | head -1")
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "ok"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"r{i}.png" for i in range(4)]
    for args in ("models info indoor", "--help"):
        out = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m stgan_cli {args} | head -1"],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert out.returncode == 0 and out.stderr == "", (args, out.stderr)


# --- the page ---------------------------------------------------------------------------------------

@pytest.fixture
def served(model_dir):
    session = Session(modelstore.open_model(str(model_dir)), max_pixels=2_000_000)
    server = make_server(session, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], session
    server.shutdown()
    server.server_close()
    session.close()


def raw_post(port, path, headers: dict, body: bytes = b"", timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.putrequest("POST", path)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    if body:
        conn.send(body)
    res = conn.getresponse()
    out = res.status, json.loads(res.read())
    conn.close()
    return out


@pytest.mark.parametrize("length", ["-1", "abc", " 1e3", str(80 * 2**20)])
def test_a_bad_content_length_is_answered_at_once(served, length):
    port, _ = served
    t0 = time.perf_counter()
    status, body = raw_post(port, "/api/upload", {"Content-Length": length, "X-File-Name": "a.png"}, b"x" * 10)
    assert status == 400 and "\n" not in body["error"], body
    assert time.perf_counter() - t0 < 5  # answered without waiting for the client to close


@pytest.mark.parametrize("request_body,words", [
    (b"[1, 2]", "JSON object"),
    (b'{"iterations": "abc", "bg": {"sample": "room_0.png"}, "fg": {"sample": "object_0.png"}}', "iterations"),
    (b'{"iterations": -1, "bg": {"sample": "room_0.png"}, "fg": {"sample": "object_0.png"}}', "iterations"),
    (b'{"iterations": 1.5}', "whole number"),
    (b'{"trust_region": 5}', "trust_region"),
    (b'{"faces": "yes"}', "faces"),
    (b'{"fg": "object_0.png"}', "fg"),
])
def test_malformed_composite_requests_are_400_naming_the_field(served, request_body, words):
    port, _ = served
    status, body = raw_post(port, "/api/composite", {"Content-Length": str(len(request_body))}, request_body)
    assert status == 400 and words in body["error"] and "unexpected" not in body["error"], body


def test_the_page_stopped_by_sigterm_leaves_no_folder(tmp_path, model_dir):
    temp = tmp_path / "temp"
    temp.mkdir()
    env = dict(os.environ, TMPDIR=str(temp))
    proc = subprocess.Popen([sys.executable, "-m", "stgan_cli", "app", "--model", str(model_dir), "--port", "0"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        assert "http://" in line, line
        assert [p.name for p in temp.iterdir() if p.name.startswith("stgan-app-")]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert not [p for p in temp.iterdir() if p.name.startswith("stgan-app-")]


def test_an_object_without_transparency_gets_the_pages_words_not_a_flag(served, tmp_path):
    port, _ = served
    rgb = write_rgb(tmp_path / "rgb.png", cutout_rgba()[..., :3]).read_bytes()
    status, up = raw_post(port, "/api/upload", {"Content-Length": str(len(rgb)), "X-File-Name": "rgb.png"}, rgb)
    assert status == 200 and up["alpha"] is False
    body = json.dumps({"bg": {"sample": "room_0.png"}, "fg": {"upload": up["id"]},
                       "homography": [[1, 0, 10], [0, 1, 10], [0, 0, 1]]}).encode()
    status, err = raw_post(port, "/api/composite", {"Content-Length": str(len(body))}, body)
    assert status == 400 and "add its mask" in err["error"] and "--mask" not in err["error"], err
