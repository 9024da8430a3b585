"""``--harmonize``: harmonization data from photos with masks, the harmonizer's folder and graph,
``composite --harmonize``, ``stgan eval`` on recoloured photos, and training."""

import csv
import json

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from stgan_cli.cli import app
from stgan_cli.composite import harmonize as CH
from stgan_cli.core import colour, colour_map
from stgan_cli.data import harmonize as D
from stgan_cli.model import harmonizer as H, harmonizer_run as R

from conftest import REALDATA, cutout_rgba, random_model, scene, write_rgb, write_rgba


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def segmented(root, photos=40, seed=0):
    """A segmented/ tree of one source: photos in grey under a coloured light, each with one or two
    grey objects under the same light, so that an object's true colour follows from the scene's."""
    rng = np.random.default_rng(seed)
    src = root / "toy"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    rows = []
    for i in range(photos):
        light = rng.uniform(0.6, 1.3, 3)
        img = scene((96, 128), seed=i).mean(2, keepdims=True).repeat(3, 2).astype(np.float64)
        for k in range(1 + i % 2):
            mask = np.zeros((96, 128), np.uint8)
            cx, cy = rng.integers(30, 98), rng.integers(25, 70)
            cv2.ellipse(mask, (int(cx), int(cy)), (18, 14), 0, 0, 360, 255, -1)
            img[mask > 0] = rng.uniform(80, 170) + rng.normal(0, 8, ((mask > 0).sum(), 1))
            cv2.imwrite(str(src / "masks" / f"p{i}_{k}.png"), mask)
            rows.append({"image": f"p{i}.png", "mask": f"p{i}_{k}.png", "category": "blob", "iscrowd": 0})
        write_rgb(src / "images" / f"p{i}.png", np.clip(img * light, 0, 255).astype(np.uint8))
    with open(src / "instances.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["image", "mask", "category", "iscrowd"])
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("harm")
    out = root / "data"
    r = run("data", "harmonize", "--instances", segmented(root / "segmented"), "--out", out, "--split", "0.6",
            "--workers", "1")
    assert r.exit_code == 0, r.stderr
    return out


def harmonizer_folder(path, theta=None, onnx=False, gate=0.0):
    """A harmonizer folder whose transform is ``theta`` whatever it reads (zeros: the identity), with
    its graph when ``onnx``."""
    torch.manual_seed(0)
    net = H.Harmonizer(width=8, hidden=16)
    if theta is not None:
        with torch.no_grad():
            net.head[-1].bias.copy_(torch.as_tensor(theta))
    folder = H.save(net.eval(), path, {"width": 8, "hidden": 16, "gate": gate}, "# test\n")
    if onnx:
        H.export_onnx(folder)
    return folder


def brighter():
    theta = np.zeros(colour_map.N_PARAMS, np.float32)
    theta[3 * colour_map.KNOTS + 9:3 * colour_map.KNOTS + 12] = 0.2  # +0.2 on every channel
    return theta


def test_the_dataset_records_each_change_and_splits_by_photo(dataset):
    train, test = D.read_rows(dataset / "train"), D.read_rows(dataset / "test")
    assert len(train) + len(test) == 60 and train and test
    assert not {r["photo"] for r in train} & {r["photo"] for r in test}
    rows, photos, masks, photo_of = D.load_lowres(dataset / "train")
    assert photos.shape[1:] == (120, 160, 3) and masks.shape == (len(rows), 120, 160)
    for row in test:
        assert row["change"] and set(row["change"]) <= {"transfer", "exposure", "white_balance", "contrast",
                                                        "saturation", "gamma"}
        p = D.load_pair(dataset / "test", row)
        assert np.array_equal(p.composite[~p.mask], p.truth[~p.mask])  # only the object is recoloured
        assert colour.fmse(p.composite, p.truth, p.mask) > 10
    again = D.load_pair(dataset / "test", test[0])
    assert np.array_equal(again.composite, D.load_pair(dataset / "test", test[0]).composite)


def test_an_existing_dataset_is_kept_without_overwrite(dataset, tmp_path):
    r = run("data", "harmonize", "--instances", dataset.parent / "segmented", "--out", dataset)
    assert r.exit_code != 0 and "--overwrite" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_the_graph_gives_the_transform_pytorch_gives(tmp_path):
    folder = harmonizer_folder(tmp_path / "h", brighter(), onnx=True)
    rgb = np.random.default_rng(0).random((2, 3, 120, 160), dtype=np.float32)
    mask = np.zeros((2, 1, 120, 160), np.float32)
    mask[:, :, 40:80, 50:100] = 1
    onnx_net, note = R.open_harmonizer(folder, "onnx")
    assert note is None and onnx_net.name == "onnx"
    np.testing.assert_allclose(onnx_net.predict(rgb, mask), H.load(folder).predict(rgb, mask), atol=1e-4)
    np.testing.assert_allclose(onnx_net.predict(rgb, mask)[0], brighter(), atol=1e-4)
    # new weights make the graph stale: refused by name, and auto falls back to PyTorch with a note
    H.save(H.Harmonizer(width=8, hidden=16), folder, {"width": 8, "hidden": 16})
    with pytest.raises(Exception, match="was not made from this folder"):
        R.open_harmonizer(folder, "onnx")
    net, note = R.open_harmonizer(folder, "auto")
    assert net.name == "torch" and "PyTorch" in note


def test_a_harmonizer_folder_is_not_a_generator_model(tmp_path):
    folder = harmonizer_folder(tmp_path / "h")
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.png", scene((120, 160)))
    r = run("composite", fg, bg, "--out", tmp_path / "o.png", "--model", folder)
    assert r.exit_code != 0 and "is a harmonizer" in r.stderr


def test_composite_harmonize_recolours_the_object_only(tmp_path):
    model = random_model(tmp_path / "m", domain="indoor")
    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.png", scene((300, 400)))
    args = (fg, bg, "--model", model, "--box", "100,60,220,220", "-k", "0")
    assert run("composite", *args, "--out", tmp_path / "plain.png").exit_code == 0
    same = run("composite", *args, "--out", tmp_path / "same.png", "--harmonizer", harmonizer_folder(tmp_path / "id"))
    assert same.exit_code == 0, same.stderr
    assert same.stderr.count("harmonizer: PyTorch engine") == 1  # no graph in that folder: said once
    plain, ident = (cv2.imread(str(tmp_path / n)).astype(int) for n in ("plain.png", "same.png"))
    assert np.abs(plain - ident).max() <= 1  # the identity transform: rounding at most
    r = run("composite", *args, "--out", tmp_path / "h.png", "--harmonizer", harmonizer_folder(tmp_path / "b", brighter(), onnx=True),
            "--save-warp", "--json")
    assert r.exit_code == 0, r.stderr
    out = cv2.imread(str(tmp_path / "h.png")).astype(int)
    inside = (slice(100, 200), slice(130, 190))  # well inside the object, which fills the box
    assert (out[inside] - plain[inside]).mean() > 30  # +0.2 on every channel: about +51 of 255
    outside = np.ones(out.shape[:2], bool)
    outside[55:225, 95:225] = False
    assert np.array_equal(out[outside], plain[outside])
    info = json.loads(r.stdout.strip().splitlines()[-1])["harmonize"]
    assert info["engine"] == "onnx" and len(info["objects"]) == 1
    assert info["objects"][0]["changed"]
    before, after = info["objects"][0]["mean_before"], info["objects"][0]["mean_after"]
    assert all(a > b + 30 for a, b in zip(after, before))
    assert json.loads((tmp_path / "h.json").read_text())["harmonize"] == info
    # a change smaller than the harmonizer's gate is not made: the object stays as it was
    r = run("composite", *args, "--out", tmp_path / "g.png", "--json",
            "--harmonizer", harmonizer_folder(tmp_path / "gated", brighter(), gate=1e6))
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["harmonize"]["objects"] == [{"changed": False}]
    assert np.array_equal(cv2.imread(str(tmp_path / "g.png")).astype(int), plain)


def test_eval_measures_the_harmonizer_against_both_baselines(dataset, tmp_path):
    folder = harmonizer_folder(tmp_path / "id")
    r = run("eval", folder, "--data", dataset / "test", "--json", "--report", tmp_path / "rep")
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    s = res["summary"]
    assert s["n"] == len(D.read_rows(dataset / "test"))
    # the identity harmonizer is the composite, to the bit; the statistics transfer is something else
    assert s["harmonized"]["fmse"] == pytest.approx(s["composite"]["fmse"]) and s["harmonized"]["worse"] == 0
    assert s["stats"]["fmse"] != s["composite"]["fmse"]
    assert {e["by"] for e in res["breakdown"]} >= {"size", "source", "change"}
    sheet = cv2.imread(res["picture"])
    assert sheet is not None and sheet.shape[0] > 3 * 240
    md = run("eval", folder, "--data", dataset / "test")
    assert "statistics transfer" in md.stdout and "fMSE" in md.stdout


def test_eval_refuses_a_generator_on_harmonization_pairs(dataset, tmp_path):
    r = run("eval", random_model(tmp_path / "m"), "--data", dataset / "test")
    assert r.exit_code != 0 and "harmonization pairs" in r.stderr


def test_training_lowers_the_held_out_error_and_resumes(dataset, tmp_path):
    cfg = {"kind": "harmonizer", "data": str(dataset), "width": 8, "hidden": 32,
           "optim": {"steps": 60, "batch_size": 8, "lr": 3e-3, "weight_decay": 0.0, "eval_every": 30}, "seed": 0}
    (tmp_path / "h.yaml").write_text(json.dumps(cfg))
    r = run("train", "--config", tmp_path / "h.yaml", "--out", tmp_path / "run", "--stop-after", "30")
    assert r.exit_code == 0, r.stderr
    assert not (tmp_path / "run" / "model").exists()
    r = run("train", "--resume", tmp_path / "run")
    assert r.exit_code == 0, r.stderr
    *history, final = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["step"] for h in history] == [30, 60]
    assert history[-1]["fmse"] < history[-1]["fmse_composite"]
    # strength and gate: of those making at most 10 % of the photos kept apart worse, the lowest error
    table = final["kept_apart"]
    allowed = [k for k, (_, worse) in table.items() if worse <= 0.10]
    best = min(allowed, key=lambda k: table[k][0]) if allowed else min(table, key=lambda k: table[k][::-1])
    assert best == f"{final['strength']:g}/{final['gate']:g}"
    net, _ = R.open_harmonizer(tmp_path / "run" / "model", "torch")
    assert float(net.strength) == pytest.approx(final["strength"]) and net.gate == final["gate"]


@pytest.mark.skipif(not (REALDATA / "segmented").is_dir(), reason="needs ../shared/realdata/segmented")
def test_the_shipped_harmonizer_helps_on_real_photos():
    """Real held-out photos of the shared segmented set (the test split of `make data-harmonize`),
    recoloured: the shipped harmonizer lowers the objects' error on most of them."""
    from stgan_cli.files import imageio
    from stgan_cli.data.photos import split_of

    folder = CH.harmonizer_folder(None)
    net, _ = R.open_harmonizer(folder)
    src = REALDATA / "segmented" / "furniture_seg_maher_mohsen"
    rows = list(csv.DictReader(open(src / "instances.csv")))
    rows = [r for r in rows if split_of(f"{src.name}/{r['image']}", 0, 0.8) == "test"][:16]
    rng = np.random.default_rng(0)
    before, after = [], []
    for row in rows:
        truth = imageio.read_image(src / "images" / row["image"]).pixels[..., :3].astype(np.float32) / 255
        mask = imageio.read_image(src / "masks" / row["mask"]).pixels > 127
        mask = mask if mask.ndim == 2 else mask[..., 0]
        change, comp = colour.draw_visible_change(truth, mask, rng)
        fixed = CH.harmonize_pixels(comp, mask, CH.predict(net, comp, mask.astype(np.float32)))
        before.append(colour.fmse(comp, truth, mask))
        after.append(colour.fmse(fixed, truth, mask))
    assert np.mean(after) < 0.8 * np.mean(before)


def test_composite_harmonize_imports_neither_torch_nor_onnx(tmp_path):
    """The onnx path of --harmonize (the shipped harmonizer's graph) runs on onnxruntime alone: no
    PyTorch, and not the onnx package either (0.6 s to import)."""
    import subprocess
    import sys

    fg = write_rgba(tmp_path / "fg.png", cutout_rgba())
    bg = write_rgb(tmp_path / "bg.jpg", scene((300, 400)))
    args = ["composite", str(fg), str(bg), "--out", str(tmp_path / "o.png"), "-k", "0", "--box", "100,60,220,220",
            "--harmonize", "--json"]
    code = ("import sys\nfrom stgan_cli.cli import app\ntry:\n    app(%r)\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\nprint([m for m in ('torch', 'onnx') if m in sys.modules])" % args)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "[]" and json.loads(lines[-2])["harmonize"]["engine"] == "onnx"
