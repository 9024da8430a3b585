"""Shared fixtures: generated images and small random-initialised model folders."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stgan_cli.model import modelstore

# rich sizes its tables to the terminal, which a test run may not have (xdist's workers): one width
# for every runner, so that the tables the tests read hold whole columns.
os.environ["COLUMNS"] = "200"
# Under pytest-xdist (make test runs one worker per core) each worker, and each command it starts,
# computes on one thread: two workers of two threads each on two cores ran 1.5-4x slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def scene(size, seed=0):
    """A textured RGB background (uint8) of ``size=(H, W)``: wall, floor and noise, so warps show."""
    h, w = size
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    img[:] = (0.75, 0.7, 0.6)
    img[int(h * 0.6):] = (0.45, 0.32, 0.2)
    noise = cv2.resize(rng.random((max(2, h // 16), max(2, w // 16), 3)).astype(np.float32), (w, h))
    return np.clip((img * 0.8 + noise * 0.2) * 255, 0, 255).astype(np.uint8)


def cutout_rgba(size=(240, 180), seed=0):
    """An RGBA object (uint8) with a soft edge and a transparent margin: a cabinet-ish block."""
    h, w = size
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 4), np.uint8)
    img[..., :3] = rng.integers(40, 200, 3)
    img[h // 8: h - h // 10, w // 10: w - w // 10, 3] = 255
    img[..., 3] = cv2.GaussianBlur(img[..., 3], (0, 0), 1.5)
    img[h // 2, :, :3] = 250  # a drawer line, so the colour is not uniform
    return img


def write_rgb(path, rgb):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return Path(path)


def write_rgba(path, rgba):
    cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    return Path(path)


def random_model(folder, warps=2, image_size=(120, 160), seed=0, std=2e-4, arch="paper", detail=0, domain="generic"):
    """A model folder whose generators make small non-zero corrections, like a model in training."""
    torch.manual_seed(seed)
    cfg = modelstore.ModelConfig(name="test-random", arch=arch, warps=warps, image_size=image_size, detail=detail,
                                 domain=domain)
    net = modelstore.build(cfg)
    for gen in (net.generators if arch == "paper" else [net.generators.block]):
        torch.nn.init.normal_(gen.out.weight, std=std)
        torch.nn.init.normal_(gen.out.bias, std=0.03)
    modelstore.save(net, cfg, folder, "# random test model\n")
    return Path(folder)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return random_model(tmp_path_factory.mktemp("model") / "rand")


@pytest.fixture
def images(tmp_path):
    """A foreground cut-out and a background on disk."""
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.jpg", scene((480, 640)))
    return fg, bg


def fill_cache(cache: Path, repo: str, model: Path, commit: str = "a" * 40) -> None:
    """A Hugging Face cache as huggingface_hub lays it out, with the model at refs/main."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in model.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)


# The longest files first: pytest-xdist hands each worker whole files (make test's --dist
# loadfile) in collection order, so a long file collected last would run alone at the end.
LONGEST_FIRST = ["training/test_trainer.py", "model/test_shipped_exports.py", "model/test_onnx_engine.py",
                 "test_detail.py", "test_reliability.py", "composite/test_auto_place.py"]


def pytest_collection_modifyitems(config, items):
    root = Path(__file__).resolve().parent

    def rank(item):
        name = Path(str(item.fspath)).resolve().relative_to(root).as_posix()
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's own order is kept
