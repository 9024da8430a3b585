"""Bad inputs and faults: each gives one line naming the file and the problem, the right exit code,
and leaves no partial or lost file.  (The audit's cases, one test or parameter each.)"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from stgan_cli.files import atomic
from stgan_cli.composite import faces
from stgan_cli.model import hub, modelstore
from stgan_cli.cli import app
from stgan_cli.data import synth_indoor as si
from stgan_cli.errors import StganError
from stgan_cli.composite.inputs import Item
from stgan_cli.composite.job import Options, Result
from stgan_cli.composite.pipeline import Compositor
from stgan_cli.training import checkpoint

from conftest import REALDATA, cutout_rgba, scene, write_rgb, write_rgba

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"
FACES = REALDATA / "faces" / "no_glasses"


def run(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)


def one_line(r, code: int, *words: str) -> str:
    """The run failed with ``code`` and exactly one error line, holding every word; no traceback."""
    assert r.exit_code == code, (r.exit_code, r.stderr)
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("stgan: error")]
    assert len(errors) == 1, r.stderr
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir())


@pytest.fixture
def room(tmp_path):
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "room.png", scene((480, 640)))
    return fg, bg


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A real file system of ``size`` mounted at ``folder`` (root only; skips elsewhere)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("mounting a small tmpfs needs root: the full-disk case cannot be made here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def unwritable(tmp_path: Path) -> Path:
    """A folder this process cannot write to (root ignores permissions: /sys refuses even root)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    probe = folder / "probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return folder
    if Path("/sys").is_dir() and not os.access("/sys", os.W_OK | os.X_OK) or _refuses("/sys"):
        return Path("/sys")
    pytest.skip("no folder here refuses writes to this user")


def _refuses(folder: str) -> bool:
    try:
        fd = os.open(os.path.join(folder, ".stgan-probe"), os.O_CREAT | os.O_WRONLY)
    except OSError:
        return True
    os.close(fd)
    os.unlink(os.path.join(folder, ".stgan-probe"))
    return False


# --- 1. glasses batches: the Haar cascades are used from several threads -----------------------

@pytest.mark.slow
def test_face_detection_from_many_threads_equals_one_thread():
    photos = sorted(FACES.glob("*.jpg"))[:8] if FACES.is_dir() else []
    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in photos]
    if not images:  # generated pictures still run the cascades' scale pyramid, where the race was
        images = [scene((600, 800), seed=i) for i in range(8)]
    serial = [[(f.box, f.eyes.round(3).tolist()) for f in faces.detect_faces(im)] for im in images]
    found, errors = {}, []

    def work(k):
        try:
            for rep in range(3):
                i = (k + rep) % len(images)
                found[(k, rep)] = (i, [(f.box, f.eyes.round(3).tolist()) for f in faces.detect_faces(images[i])])
        except Exception as exc:  # noqa: BLE001 - the failure is what this test looks for
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(serial[i] == got for i, got in found.values())


@pytest.mark.slow
@pytest.mark.skipif(not FACES.is_dir(), reason="needs ../shared/realdata/faces (real photos)")
def test_glasses_batch_on_real_photos_never_crashes(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted(FACES.glob("*.jpg"))[:16]:
        (photos / p.name).symlink_to(p)
    out = subprocess.run([sys.executable, "-m", "stgan_cli", "composite", str(REALDATA / "glasses" / "glasses_00.png"),
                          str(photos), "--out", str(tmp_path / "out"), "--model", "glasses", "--batch-size", "8"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode in (0, 1), out.stderr  # 1: a photo where no face is found is reported
    assert "Traceback" not in out.stderr and "cv2.error" not in out.stderr
    failed = [line for line in out.stderr.splitlines() if "failed:" in line]
    assert all("no face found" in line for line in failed), failed
    assert len(files(tmp_path / "out")) + len(failed) == 16


# --- 2. the shipped models export: tests/model/test_shipped_exports.py --------------------------


# --- 3. no silent data loss -----------------------------------------------------------------------

def test_two_inputs_that_map_to_one_output_are_refused_before_any_work(room, tmp_path):
    fg, bg = room
    rooms = tmp_path / "rooms"
    rooms.mkdir()
    write_rgb(rooms / "room.png", scene((240, 320)))
    write_rgb(rooms / "room.jpg", scene((240, 320), seed=1))
    r = run("composite", fg, rooms, "--out", tmp_path / "out", "-k", "0")
    one_line(r, 2, "room.jpg", "room.png", "would both be written to")
    assert not (tmp_path / "out").exists() or files(tmp_path / "out") == []


def test_an_output_that_appears_meanwhile_is_not_overwritten(room, tmp_path):
    fg, _ = room
    bgs = [write_rgb(tmp_path / f"b{i}.png", scene((120, 160), seed=i)) for i in range(2)]
    out = tmp_path / "out"
    out.mkdir()
    items = [Item(fg, b, out / b.name) for b in bgs]
    compositor = Compositor(None, Options(iterations=0, batch_size=1, exclusive=True))

    def on_result(res: Result):  # another run writes the second output while this one works
        if res.item is items[0]:
            (out / "b1.png").write_bytes(b"the other run's output")

    results = compositor.run(items, on_result)
    assert [r.status for r in results] == ["ok", "failed"]
    assert "b1.png: already exists" in results[1].error and "--overwrite" in results[1].error
    assert (out / "b1.png").read_bytes() == b"the other run's output"
    assert files(out) == ["b0.png", "b1.png"]


def test_exclusive_write_is_atomic_create(tmp_path):
    target = tmp_path / "x.bin"
    atomic.write_bytes(target, b"first", exclusive=True)
    with pytest.raises(StganError, match="already exists"):
        atomic.write_bytes(target, b"second", exclusive=True)
    atomic.write_bytes(target, b"third")  # --overwrite's path
    assert target.read_bytes() == b"third" and files(tmp_path) == ["x.bin"]


# --- 4. an output that is an input -----------------------------------------------------------------

@pytest.mark.parametrize("which", ["background", "foreground", "background via another path", "batch folder"])
def test_output_that_is_an_input_is_refused(room, tmp_path, which):
    fg, bg = room
    before = bg.read_bytes(), fg.read_bytes()
    if which == "background":
        r = run("composite", fg, bg, "--out", bg, "-k", "0")
    elif which == "foreground":
        r = run("composite", fg, bg, "--out", fg, "-k", "0")
    elif which == "background via another path":
        r = run("composite", fg, bg, "--out", tmp_path / "." / ".." / tmp_path.name / "room.png", "-k", "0")
    else:
        r = run("composite", fg, tmp_path, "--out", tmp_path, "-k", "0")
    one_line(r, 2, "the input would be overwritten")
    assert (bg.read_bytes(), fg.read_bytes()) == before


# --- 5. tracebacks turned into one line ----------------------------------------------------------

def broken_model(tmp_path, model_dir, **changes) -> Path:
    import yaml

    folder = tmp_path / "broken"
    folder.mkdir()
    cfg = yaml.safe_load((model_dir / "config.yaml").read_text())
    cfg.update(changes)
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    (folder / "model.safetensors").symlink_to(model_dir / "model.safetensors")
    return folder


@pytest.mark.parametrize("changes,words", [
    ({"placement": 5}, "placement must be a mapping"),
    ({"placement": {"center": "middle"}}, "placement.center must be two numbers"),
    ({"placement": {"scale": -1}}, "placement.scale must be a number"),
    ({"warps": "five"}, "warps must be a whole number"),
    ({"image_size": [120]}, "image_size must be two whole numbers"),
    ({"discriminator": "yes"}, "discriminator must be true or false"),
    ({"provenance": [1, 2]}, "provenance must be a mapping"),
])
def test_model_config_of_the_wrong_type(room, tmp_path, model_dir, changes, words):
    fg, bg = room
    folder = broken_model(tmp_path, model_dir, **changes)
    one_line(run("composite", fg, bg, "--out", tmp_path / "o.png", "--model", folder), 1, "config.yaml", words)
    one_line(run("models", "info", folder), 1, "config.yaml", words)
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("ref,words", [
    ("hf-hub:../etc", "expected hf-hub:ORG/REPO"),
    ("hf-hub:org/../../etc", "expected hf-hub:ORG/REPO"),
    ("hf-hub:org/re po", "expected hf-hub:ORG/REPO"),
    ("hf-hub:org/repo@../../x", "not a valid revision"),
    ("hf-hub:org/repo@", "not a valid revision"),
])
def test_hub_names_are_validated(room, tmp_path, ref, words):
    fg, bg = room
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hf")}
    one_line(run("composite", fg, bg, "--out", tmp_path / "o.png", "--model", ref, env=env), 1, ref, words)
    one_line(run("models", "info", ref, env=env), 1, ref)
    assert not (tmp_path / "hf").exists()


def test_hub_library_validation_errors_are_one_line(monkeypatch):
    from huggingface_hub.errors import HFValidationError

    def refuse(*a, **k):
        raise HFValidationError("Repo id must use alphanumeric chars")

    monkeypatch.setattr("huggingface_hub.snapshot_download", refuse)
    with pytest.raises(StganError, match="refused by huggingface_hub"):
        hub.download("hf-hub:org/repo", ("config.yaml",))


def sidecar(tmp_path, room) -> dict:
    fg, bg = room
    r = run("composite", fg, bg, "--out", tmp_path / "first.png", "-k", "0", "--box", "200,150,440,460", "--save-warp")
    assert r.exit_code == 0, r.stderr
    return json.loads((tmp_path / "first.json").read_text())


@pytest.mark.parametrize("edit,words", [
    (lambda d: d["background_size"].update(height=0), "positive whole numbers"),
    (lambda d: d["foreground_size"].update(width="wide"), "positive whole numbers"),
    (lambda d: d.update(homography=[[1, 0], [0, 1]]), "not a stgan warp file"),
    (lambda d: d.update(homography=[[0] * 3] * 3), "finite and invertible"),
    (lambda d: d["background_size"].update(width=480), "another shape"),
])
def test_init_sidecars_that_cannot_be_used(room, tmp_path, edit, words):
    fg, bg = room
    data = sidecar(tmp_path, room)
    edit(data)
    (tmp_path / "init.json").write_text(json.dumps(data))
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "-k", "0", "--init", tmp_path / "init.json")
    one_line(r, 1, "init.json", words)
    assert not (tmp_path / "o.png").exists()


def test_init_on_the_same_shape_at_another_size_is_rescaled(room, tmp_path):
    fg, _ = room
    sidecar(tmp_path, room)
    big = write_rgb(tmp_path / "big.png", cv2.resize(scene((480, 640)), (1280, 960)))
    r = run("composite", fg, big, "--out", tmp_path / "o.png", "-k", "0", "--init", tmp_path / "first.json",
            "--save-warp")
    assert r.exit_code == 0, r.stderr
    m = np.array(json.loads((tmp_path / "o.json").read_text())["homography"])
    first = np.array(json.loads((tmp_path / "first.json").read_text())["homography"])
    assert np.allclose(m[:2, :2], 2 * first[:2, :2])


@pytest.mark.parametrize("kind", ["binary", "folder"])
def test_training_config_that_is_not_yaml_text(tmp_path, kind):
    cfg = tmp_path / "cfg.yaml"
    if kind == "binary":
        cfg.write_bytes(bytes(range(256)) * 8)
    else:
        cfg.mkdir()
    one_line(run("train", "-c", cfg, "--data", tmp_path, "--out", tmp_path / "run"), 1, "cfg.yaml")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("sets,words", [
    (["run=1", "run.seed=2"], "'run' was set to a value"),
    (["run.seed=2", "run=1"], "'run' is a group of settings"),
    (["run..seed=2"], "not a setting name"),
])
def test_conflicting_set_options(tmp_path, sets, words):
    args = [a for s in sets for a in ("--set", s)]
    one_line(run("train", "-c", SMOKE, "--data", tmp_path, "--out", tmp_path / "run", *args), 2, words)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    si.generate(root, 24, seed=0, size=(48, 64), split=0.9, workers=1)
    return root


def test_resume_after_a_partial_metrics_line(tiny, tmp_path):
    out = tmp_path / "run"
    assert run("train", "-c", SMOKE, "--data", tiny, "--out", out, "--stop-after", "5").exit_code == 0
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 6, "loss_g": 0.1')  # what a kill in the middle of a write leaves
    r = run("train", "--resume", out)
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows and rows[-1]["step"] == 14 and all(isinstance(r, dict) for r in rows)
    assert not list(out.glob(".*.part"))


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(tmp_path):
    with small_disk(tmp_path / "disk", "1m") as disk:
        checkpoint.save(disk, {"architecture": {"warps": 1}, "step": 7, "w": torch.arange(5)})
        with pytest.raises(StganError, match="cannot write the checkpoint .* the previous checkpoint is kept"):
            checkpoint.save(disk, {"architecture": {"warps": 1}, "step": 8, "w": torch.zeros(2_000_000)})
        state = checkpoint.load(disk, {"warps": 1})
        assert state["step"] == 7 and files(disk) == ["checkpoint.pt"]


def test_disk_full_during_training_is_one_line(tiny, tmp_path):
    with small_disk(tmp_path / "disk", "300k") as disk:
        r = run("train", "-c", SMOKE, "--data", tiny, "--out", disk / "run")
        one_line(r, 1, "cannot write", "space left")
        assert not list((disk / "run").glob(".*.part")) if (disk / "run").exists() else True


def test_sheet_of_an_empty_dataset(tmp_path):
    for sub in ("backgrounds", "objects"):
        (tmp_path / "ds" / "train" / sub).mkdir(parents=True)
    (tmp_path / "ds" / "train" / "meta.jsonl").write_text("")
    one_line(run("data", "sheet", tmp_path / "ds", "--out", tmp_path / "s.png"), 1, "the dataset is empty")
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("fmt,name", [("pt2", "m.pt2"), ("package", "pkg")])
def test_export_to_a_folder_that_refuses_writes(model_dir, tmp_path, fmt, name):
    folder = unwritable(tmp_path)
    r = run("export", model_dir, "--format", fmt, "--out", folder / name)
    one_line(r, 1, str(folder), "permission denied")


def test_unexpected_errors_are_one_line_with_a_hint(room, tmp_path, monkeypatch):
    fg, bg = room
    from stgan_cli.composite import inputs

    def boom(*a, **k):
        raise ZeroDivisionError("something nobody anticipated")

    monkeypatch.setattr(inputs, "plan", boom)
    line = one_line(run("composite", fg, bg, "--out", tmp_path / "o.png", "-k", "0"), 1,
                    "ZeroDivisionError", "STGAN_DEBUG=1")
    assert "something nobody anticipated" in line
    with pytest.raises(ZeroDivisionError):
        run("composite", fg, bg, "--out", tmp_path / "o.png", "-k", "0", env={"STGAN_DEBUG": "1"})


def test_unexpected_error_in_one_batch_item_does_not_stop_the_batch(room, tmp_path, monkeypatch):
    fg, _ = room
    rooms = tmp_path / "rooms"
    rooms.mkdir()
    for i in range(3):
        write_rgb(rooms / f"r{i}.png", scene((120, 160), seed=i))
    from stgan_cli.composite import compositing

    real = compositing.composite

    def flaky(bg, cutout, m):
        if bg.shape[0] == 120 and bg[0, 0, 0] == scene((120, 160), seed=1)[0, 0, 0]:
            raise IndexError("a bug in one item")
        return real(bg, cutout, m)

    monkeypatch.setattr(compositing, "composite", flaky)
    r = run("composite", fg, rooms, "--out", tmp_path / "out", "-k", "0")
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    failed = [line for line in r.stderr.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "r1.png" in failed[0] and "IndexError" in failed[0]
    assert files(tmp_path / "out") == ["r0.png", "r2.png"]


# --- 6. silent no-ops and wrong exit codes --------------------------------------------------------

@pytest.mark.parametrize("args,code,words", [
    (["--at", "5000,5000"], 1, "outside the 640x480 background"),
    (["--at", "-400,240", "--scale", "0.3"], 1, "outside the 640x480 background"),
    (["--box", "100,100,100.001,100.001"], 1, "too small to see"),
    (["--scale", "1e-9"], 1, "too small to see"),
    (["--box", "300,300,100,100"], 2, "X2 > X1"),
    (["--scale", "nan"], 2, "finite"),
    (["--scale", "inf"], 2, "finite"),
    (["--box", "1,2,3,inf"], 2, "finite"),
    (["--at", "nan,3"], 2, "finite"),
])
def test_placements_with_nothing_to_see(room, tmp_path, args, code, words):
    fg, bg = room
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "-k", "0", *args)
    one_line(r, code, words)
    assert not (tmp_path / "o.png").exists()


def test_inverted_box_is_refused_before_loading_anything(room, tmp_path):
    fg, bg = room
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "--model", tmp_path / "no-such-model",
            "--box", "300,300,100,100")
    one_line(r, 2, "--box")


def test_a_batch_failure_line_names_its_files(room, tmp_path):
    fg, _ = room
    rooms = tmp_path / "rooms"
    rooms.mkdir()
    write_rgb(rooms / "big.png", scene((480, 640)))
    write_rgb(rooms / "small.png", scene((120, 160)))
    r = run("composite", fg, rooms, "--out", tmp_path / "out", "-k", "0", "--at", "400,300", "--scale", "0.2")
    assert r.exit_code == 1
    failed = [line for line in r.stderr.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "small.png" in failed[0] and "fg.png" in failed[0] and "outside" in failed[0]
    assert files(tmp_path / "out") == ["big.png"]


# --- 7. left-overs and limits -------------------------------------------------------------------------

def test_stale_temporary_files_are_cleaned_and_live_ones_kept(room, tmp_path):
    fg, bg = room
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / f".room.png.{dead.pid}.abcd1234.part").write_bytes(b"half an image")
        (out / f".other.png.{alive.pid}.efgh5678.part").write_bytes(b"being written")
        r = run("composite", fg, tmp_path / "room.png", "--out", out / "room.png", "-k", "0")
        assert r.exit_code == 0, r.stderr
        assert files(out) == [f".other.png.{alive.pid}.efgh5678.part", "room.png"]
    finally:
        alive.kill()
        alive.wait()


@pytest.mark.slow
def test_a_killed_batch_leaves_nothing_half_written(room, tmp_path):
    fg, _ = room
    rooms = tmp_path / "rooms"
    rooms.mkdir()
    for i in range(24):
        write_rgb(rooms / f"r{i:02d}.png", scene((1080, 1440), seed=i))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "stgan_cli", "composite", str(fg), str(rooms), "--out", str(out), "-k", "0",
           "--batch-size", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and len(files(out)) >= 3):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for p in out.glob("*.png"):  # whatever landed is whole
        assert cv2.imread(str(p)) is not None, p
    r = subprocess.run(cmd + ["--skip-existing"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert files(out) == [f"r{i:02d}.png" for i in range(24)]  # no .part left


def test_a_folder_where_the_sidecar_goes_is_refused_before_any_work(room, tmp_path):
    fg, bg = room
    (tmp_path / "o.json").mkdir()  # the sidecar cannot be written
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "-k", "0", "--save-warp")
    one_line(r, 2, "o.json", "is a folder")
    assert not (tmp_path / "o.png").exists()


def test_a_fifo_is_refused_not_read_forever(room, tmp_path):
    fg, _ = room
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    out = subprocess.run([sys.executable, "-m", "stgan_cli", "composite", str(fg), str(fifo), "--out",
                          str(tmp_path / "o.png"), "-k", "0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "pipe.png: is a named pipe (FIFO), not an image file" in out.stderr
    assert not (tmp_path / "o.png").exists()


# The process's own peak resident size (VmHWM: ru_maxrss would carry the parent's peak across exec).
READ_AND_REPORT = """
import re, sys
from pathlib import Path
from stgan_cli.files import imageio
peak = lambda: int(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text())[1]) // 1024
before = peak()
try:
    imageio.read_image(sys.argv[1])
except Exception as exc:
    print(exc)
print(peak() - before)
"""


@pytest.mark.parametrize("kind,words", [
    ("not an image", "not an image"),
    ("a small PNG header, then a gigabyte", "far more than a 64x48 image needs"),
])
def test_a_huge_file_is_not_read_before_its_header_is_checked(tmp_path, kind, words):
    path = tmp_path / "huge.png"
    with open(path, "wb") as fh:
        if kind != "not an image":
            ok, png = cv2.imencode(".png", scene((48, 64)))
            fh.write(png.tobytes())
        fh.truncate(2 << 30 if kind == "not an image" else 1 << 30)  # sparse: costs no disk
    out = subprocess.run([sys.executable, "-c", READ_AND_REPORT, str(path)], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    message, grown_mb = out.stdout.strip().splitlines()
    assert words in message and str(path) in message
    assert int(grown_mb) < 100, f"reading grew the peak memory by {grown_mb} MB"


@pytest.mark.parametrize("case,words", [
    ("truncated", "truncated PNG"),
    ("bomb", "over the limit"),
    ("mask of the wrong size", "mask is 100x100 but the foreground"),
])
def test_audit_cases_that_already_passed(room, tmp_path, case, words):
    fg, bg = room
    extra = []
    if case == "truncated":
        data = bg.read_bytes()
        bg = tmp_path / "cut.png"
        bg.write_bytes(data[: len(data) // 2])
    elif case == "bomb":
        extra = ["--max-pixels", "1000"]
    else:
        rgb = write_rgb(tmp_path / "rgb.png", scene((240, 180)))
        mask = tmp_path / "mask.png"
        cv2.imwrite(str(mask), np.full((100, 100), 255, np.uint8))
        fg, extra = rgb, ["--mask", mask]
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "-k", "0", *extra)
    one_line(r, 1, words)
    assert not (tmp_path / "o.png").exists()


def test_disk_full_in_a_batch_goes_on_and_leaves_nothing_partial(room, tmp_path):
    fg, _ = room
    rooms = tmp_path / "rooms"
    rooms.mkdir()
    for i in range(6):
        write_rgb(rooms / f"r{i}.png", (np.random.default_rng(i).random((300, 400, 3)) * 255).astype(np.uint8))
    with small_disk(tmp_path / "disk", "900k") as disk:
        r = run("composite", fg, rooms, "--out", disk / "out", "-k", "0")
        assert r.exit_code == 1 and "Traceback" not in r.stderr
        failed = [line for line in r.stderr.splitlines() if "failed:" in line]
        written = files(disk / "out")
        assert failed and all("no space left on the device" in line for line in failed)
        assert len(written) + len(failed) == 6 and not [n for n in written if n.startswith(".")]
        for name in written:
            assert cv2.imread(str(disk / "out" / name)) is not None


def test_a_reader_that_stops_early_gets_no_error(tmp_path):
    """`stgan ... | head`: the command ends quietly when its reader has closed the pipe (`true` closes
    it before stgan has even started, so every write meets a broken pipe)."""
    for args in ("models info indoor", "models list", "--help"):
        out = subprocess.run(["sh", "-c", f"{sys.executable} -m stgan_cli {args} | true"], capture_output=True,
                             text=True, timeout=120, cwd=ROOT)
        assert out.stderr == "", (args, out.stderr)


def test_registry_name_not_installed_falls_back_to_its_hub_copy(monkeypatch, tmp_path):
    """A registry entry that names its published copy is fetched from the Hub (through the same
    download and checks as an hf-hub: reference) when its folder is not installed."""
    monkeypatch.setenv("STGAN_MODELS_DIR", str(tmp_path / "none"))
    monkeypatch.setitem(modelstore.REGISTRY, "indoor", modelstore.RegistryEntry("indoor", "test", "org/indoor@v1"))
    asked = []

    def download(ref, files, offline=False):
        asked.append((ref, offline))
        return tmp_path / "cached"

    monkeypatch.setattr(hub, "download", download)
    with pytest.raises(StganError, match="hf-hub:org/indoor@v1"):  # the (empty) download is checked like any folder
        modelstore.resolve("indoor", offline=True)
    assert asked == [("hf-hub:org/indoor@v1", True)]
    monkeypatch.setitem(modelstore.REGISTRY, "indoor", modelstore.RegistryEntry("indoor", "test"))
    with pytest.raises(StganError, match="no default model is installed"):
        modelstore.resolve("indoor")
