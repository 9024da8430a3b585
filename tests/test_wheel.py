"""A built wheel, installed into a fresh virtual environment, composites the bundled sample with the
default model: the wheel carries the model and the samples (setup.py), not just the code.

The fresh environment gets the wheel and nothing of this checkout; its dependencies (torch, OpenCV,
onnxruntime: gigabytes) are borrowed from the test's own environment by a path file, which adds
their folder to ``sys.path`` without running the editable install's hooks there, so ``stgan_cli``
is imported from the wheel alone (checked)."""

import json
import site
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_wheel_in_a_fresh_venv_composites_the_sample(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            str(ROOT), "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("stgan_cli-*.whl"))
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    target = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip())
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    (target / "zz_borrowed_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    work = tmp_path / "elsewhere"  # not the checkout: nothing of it may be found from here
    work.mkdir()
    where = subprocess.run([str(python), "-c", "import stgan_cli; print(stgan_cli.__file__)"], cwd=work,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(target), where
    code = ("from stgan_cli.files.bundled import samples_dir; from stgan_cli.model import modelstore; "
            "print(samples_dir()); print(modelstore.models_dir())")
    samples, models = subprocess.run([str(python), "-c", code], cwd=work, capture_output=True, text=True,
                                     check=True).stdout.split()
    assert Path(samples).is_relative_to(target) and Path(models).is_relative_to(target)
    truth = json.loads((Path(samples) / "object_0.json").read_text())
    x1, y1, x2, y2 = truth["box"]
    out = subprocess.run([str(python), "-m", "stgan_cli", "composite", str(Path(samples) / "object_0.png"),
                          str(Path(samples) / "room_0.png"), "--out", "result.png", "--save-warp",
                          "--box", f"{x1},{y1 - 20},{x2},{y2 - 20}"],
                         cwd=work, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "model indoor" in out.stderr and (work / "result.png").is_file()
    assert Path(json.loads((work / "result.json").read_text())["model"]["path"]).is_relative_to(target)
    # with no box, the bundled placement critic chooses one
    auto = subprocess.run([str(python), "-m", "stgan_cli", "composite", str(Path(samples) / "object_0.png"),
                           str(Path(samples) / "room_0.png"), "--out", "auto.png", "--save-warp", "-k", "0"],
                          cwd=work, capture_output=True, text=True, timeout=300)
    assert auto.returncode == 0, auto.stderr
    assert json.loads((work / "auto.json").read_text())["placement"]["candidates"] > 100
    # --harmonize: the bundled harmonizer, by onnxruntime
    harm = subprocess.run([str(python), "-m", "stgan_cli", "composite", str(Path(samples) / "object_0.png"),
                           str(Path(samples) / "room_0.png"), "--out", "h.png", "--json", "-k", "0", "--harmonize",
                           "--box", f"{x1},{y1},{x2},{y2}"], cwd=work, capture_output=True, text=True, timeout=300)
    assert harm.returncode == 0, harm.stderr
    assert json.loads(harm.stdout.strip().splitlines()[-1])["harmonize"]["engine"] == "onnx"
    other = subprocess.run([str(python), "-m", "stgan_cli", "composite", str(Path(samples) / "glasses.png"),
                            str(Path(samples) / "room_0.png"), "--out", "g.png", "--model", "glasses"],
                           cwd=work, capture_output=True, text=True, timeout=300)
    assert other.returncode == 1 and "a wheel carries only the default model" in other.stderr
