"""Batches on Ray (`composite --ray`): the same files, statuses and failures as a local batch."""

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from stgan_cli.cli import app

from conftest import cutout_rgba, random_model, scene, write_rgb, write_rgba

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                 reason="the ray extra is not installed (pip install 'stgan-cli[ray]')")]


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance of this machine, started by the test and stopped after it."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture
def batch(tmp_path):
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bgs = tmp_path / "bgs"
    bgs.mkdir()
    for i in range(5):
        write_rgb(bgs / f"room{i}.jpg", scene((240, 320), seed=i))
    (bgs / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return fg, bgs, random_model(tmp_path / "model", warps=2, std=1e-3)


def test_a_ray_batch_equals_the_local_batch(local_ray, batch, tmp_path):
    fg, bgs, model = batch
    runs = {}
    for name, extra in (("local", []), ("ray", ["--ray", "local"])):
        out = tmp_path / name
        r = run("composite", fg, bgs, "--out", out, "--model", model, "--json", "--batch-size", "2", *extra)
        assert r.exit_code == 1, r.stderr  # one bad file: the others are done, the run says so
        runs[name] = [json.loads(line) for line in r.stdout.splitlines()]
        assert sorted(p.name for p in out.iterdir()) == [f"room{i}.png" for i in range(5)]
    for a, b in zip(runs["local"], runs["ray"]):
        assert (a["status"], a.get("error"), a["homography"] if "homography" in a else None) == \
               (b["status"], b.get("error"), b["homography"] if "homography" in b else None)
    failed = [r for r in runs["ray"] if r["status"] == "failed"]
    assert len(failed) == 1 and "broken.jpg" in failed[0]["error"]
    for i in range(5):
        name = f"room{i}.png"
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    # the outputs are claimed as in a local batch (the same code, before anything is sent): existing
    # ones stop the run
    r = run("composite", fg, bgs, "--out", tmp_path / "ray", "--model", model, "--ray", "local")
    assert r.exit_code == 2 and "--overwrite or --skip-existing" in r.stderr


def test_ray_is_for_batches(batch, tmp_path):
    fg, bgs, model = batch
    r = run("composite", fg, bgs / "room0.jpg", "--out", tmp_path / "one.png", "--model", model, "--ray", "local")
    assert r.exit_code == 2 and "--ray is for batches" in r.stderr


def test_ray_says_nothing_of_its_own_on_the_terminal(batch, tmp_path):
    """Ray Data's notices, a deprecation our arguments caused, and the core worker's warning about
    restartable actors all stayed on stderr before; a run shows our lines only."""
    import subprocess
    import sys

    fg, bgs, model = batch
    (bgs / "broken.jpg").unlink()
    out = subprocess.run([sys.executable, "-m", "stgan_cli", "composite", str(fg), str(bgs), "--out",
                          str(tmp_path / "out"), "-k", "0", "--ray", "local"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert all(line.startswith("stgan: ") for line in out.stderr.splitlines()), out.stderr
