"""Composite benchmarks: start-up, per-stage cost at 1080p and 4K, the whole command with the default
model on each engine (torch, onnx) against ``python -c "import torch"`` alone, the network's cost per
composite for every architecture (against the paper's generators), and batch throughput vs the I/O
floor for each engine.

Prints medians of several runs. Inputs are generated; the per-stage and per-architecture models are
random-initialised (their cost is that of a trained one). Run: ``make bench`` or
``.venv/bin/python benchmarks/composite.py``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stgan_cli.files import imageio
from stgan_cli.model import modelstore  # noqa: E402
from stgan_cli.data import synth_indoor  # noqa: E402
from stgan_cli.composite.inputs import Item  # noqa: E402
from stgan_cli.composite.job import Options  # noqa: E402
from stgan_cli.composite.pipeline import Compositor  # noqa: E402


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def stgan_exe() -> list[str]:
    exe = Path(sys.executable).with_name("stgan")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "stgan_cli"]


def room_and_object(seed: int):
    """A 480x640 generated room and its furniture cut-out (RGBA, cropped)."""
    _, (bg, obj, _) = synth_indoor.sample(seed, 0, (480, 640))
    ys, xs = np.nonzero(obj[..., 3])
    return bg, np.ascontiguousarray(obj[ys.min():ys.max() + 1, xs.min():xs.max() + 1])


def make_inputs(tmp: Path, size) -> tuple[Path, Path]:
    h, w = size
    room, obj = room_and_object(0)
    bg = tmp / f"bg_{w}x{h}.png"
    imageio.write_image(bg, cv2.resize(room, (w, h), interpolation=cv2.INTER_CUBIC))
    fg = tmp / f"fg_{w}x{h}.png"
    scale = (w / 3) / obj.shape[1]
    imageio.write_image(fg, cv2.resize(obj, (round(obj.shape[1] * scale), round(obj.shape[0] * scale)),
                                       interpolation=cv2.INTER_CUBIC))
    return fg, bg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=20, help="backgrounds in the batch test")
    parser.add_argument("--only-batch", action="store_true", help="skip start-up and single-image figures")
    parser.add_argument("--only-archs", action="store_true", help="only the per-architecture network cost")
    args = parser.parse_args()
    runs = args.runs
    tmp = Path(tempfile.mkdtemp(prefix="stgan-bench-"))
    import torch

    torch.manual_seed(0)
    cfg = modelstore.ModelConfig(name="bench-random", warps=5)
    modelstore.save(modelstore.build(cfg), cfg, tmp / "model", "# random\n")
    model = modelstore.load(str(tmp / "model"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OpenCV {cv2.__version__}")

    if args.only_archs:
        arch_figures(tmp, runs)
        return
    if not args.only_batch:
        single_figures(model, tmp, runs)
        arch_figures(tmp, runs)
    batch_figures(model, tmp, runs, args.batch)


def arch_figures(tmp: Path, runs: int, warps: int = 3) -> None:
    """The network stage of one 1080p composite (batch of one, ``warps`` iterations) per architecture,
    and its ratio to the paper's generators measured in the same run."""
    import torch

    from stgan_cli.model import archs

    fg, bg = make_inputs(tmp, (1080, 1920))
    opts = Options(box=(1920 * 0.3, 1080 * 0.4, 1920 * 0.6, 1080 * 0.95))
    cost = {}
    for arch in archs.names():
        torch.manual_seed(0)
        cfg = modelstore.ModelConfig(name=f"bench-{arch}", arch=arch, warps=warps)
        modelstore.save(modelstore.build(cfg), cfg, tmp / arch, "# random\n")
        model = modelstore.load(str(tmp / arch))
        times = []
        for i in range(runs + 1):  # the first run warms up
            res = Compositor(model, opts).run([Item(fg, bg, tmp / f"arch_{arch}.png")], workers=1)[0]
            assert res.status == "ok", res.error
            times.append(res.timings["network"])
        cost[arch] = statistics.median(times[1:])
    print(f"\nnetwork per 1080p composite, {warps} iterations, batch of one (median of {runs}):")
    for arch, t in cost.items():
        print(f"  {arch:<16} {t * 1000:8.1f} ms   {t / cost['paper']:5.2f}x the paper's")


def single_figures(model, tmp: Path, runs: int) -> None:
    # -- start-up --------------------------------------------------------------------------------
    help_s = median_time(lambda: subprocess.run([*stgan_exe(), "--help"], capture_output=True, check=True), runs)
    # The baseline ends the way the CLI does (os._exit: no interpreter teardown), so the difference
    # is the CLI's own work.  The teardown it skips is reported separately.
    baseline = [sys.executable, "-c", "import os, torch, cv2, stgan_cli.composite.pipeline; os._exit(0)"]
    teardown = [sys.executable, "-c", "import torch, cv2, stgan_cli.composite.pipeline"]
    teardown_s = median_time(lambda: subprocess.run(teardown, capture_output=True, check=True), runs)
    startup_s = median_time(lambda: subprocess.run(baseline, capture_output=True, check=True), runs)
    torch_only = [sys.executable, "-c", "import torch"]
    torch_s = median_time(lambda: subprocess.run(torch_only, capture_output=True, check=True), runs)
    print(f"stgan --help                        {help_s * 1000:8.0f} ms")
    print(f'python -c "import torch"             {torch_s * 1000:8.0f} ms')
    print(f"python + import torch, cv2           {startup_s * 1000:8.0f} ms")
    print(f"  same with interpreter teardown     {teardown_s * 1000:8.0f} ms (the CLI skips it)")

    # -- single composites, split by stage -----------------------------------------------------
    for size in ((1080, 1920), (2160, 3840)):
        fg, bg = make_inputs(tmp, size)
        opts = Options(box=(size[1] * 0.3, size[0] * 0.4, size[1] * 0.6, size[0] * 0.95))
        stages = {k: [] for k in ("load", "lowres", "network", "warp_blend", "save")}
        for i in range(runs):
            comp = Compositor(model, opts)  # fresh each run: no cut-out cached from the last one
            res = comp.run([Item(fg, bg, tmp / f"out_{i}.png")], workers=1)[0]
            assert res.status == "ok", res.error
            for k in stages:
                stages[k].append(res.timings[k])
        med = {k: statistics.median(v) for k, v in stages.items()}
        cli = [*stgan_exe(), "composite", str(fg), str(bg), "--out", str(tmp / "cli.png"), "--model",
               str(tmp / "model"), "--device", "cpu"]
        # Start-up and the whole command alternate, and their paired differences give the figure:
        # two separate medians drift apart with the machine's load.
        pairs = [(median_time(lambda: subprocess.run(cli, capture_output=True, check=True), 1),
                  median_time(lambda: subprocess.run(baseline, capture_output=True, check=True), 1))
                 for _ in range(runs)]
        cli_s = statistics.median(c for c, _ in pairs)
        beyond_s = statistics.median(c - s for c, s in pairs)
        h, w = size
        print(f"\ncomposite {w}x{h} (median of {runs}):")
        for k, v in med.items():
            print(f"  {k:<12} {v * 1000:8.1f} ms")
        print(f"  {'sum':<12} {sum(med.values()) * 1000:8.1f} ms")
        print(f"  whole CLI    {cli_s * 1000:8.1f} ms, of which beyond start-up {beyond_s * 1000:.0f} ms")
        # The default model, as a user runs it, on each engine (onnx needs models/indoor/model.onnx).
        box = ",".join(str(round(v)) for v in opts.box)
        for engine in ("torch", "onnx"):
            cmd = [*stgan_exe(), "composite", str(fg), str(bg), "--out", str(tmp / f"cli_{engine}.png"),
                   "--box", box, "--engine", engine]
            t = median_time(lambda: subprocess.run(cmd, capture_output=True, check=True), runs)
            print(f"  whole CLI, default model, --engine {engine:<5} {t * 1000:8.1f} ms"
                  f"  ({t / torch_s:4.2f}x import torch)")



def batch_figures(model, tmp: Path, runs: int, count: int) -> None:
    """Throughput of a batch against the I/O floor: the random model (torch), then the default model
    on each engine."""
    size = (1080, 1920)
    fg, _ = make_inputs(tmp, size)
    bgs = []
    for i in range(count):
        bg = tmp / "batch" / f"bg{i:02d}.jpg"
        bg.parent.mkdir(exist_ok=True)
        img = cv2.resize(room_and_object(i)[0], (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
        imageio.write_image(bg, img)
        bgs.append(bg)

    def io_floor():
        for i, b in enumerate(bgs):
            imageio.read_image(fg)
            px = imageio.read_image(b).pixels
            imageio.write_image(tmp / "floor" / f"{i}.png", px)

    (tmp / "floor").mkdir(exist_ok=True)
    (tmp / "bout").mkdir(exist_ok=True)
    floor_s = median_time(io_floor, max(3, runs // 2))
    n = len(bgs)
    print(f"\nbatch of {n} backgrounds {size[1]}x{size[0]} (JPEG in, PNG out):")
    print(f"  I/O floor (decode inputs + encode output, sequential): {n / floor_s:6.2f} images/s")
    default = modelstore.open_model(None)
    for label, m, engine in (("random paper model, torch", model, "torch"), ("default model, torch", default, "torch"),
                             ("default model, onnx", default, "onnx")):
        comp = Compositor(m, Options(box=(600, 500, 1100, 1050), batch_size=8, engine=engine))

        def batch():
            items = [Item(fg, b, tmp / "bout" / f"{b.stem}.png") for b in bgs]
            res = comp.run(items)
            assert all(r.status == "ok" for r in res)

        batch_s = median_time(batch, max(3, runs // 2))
        print(f"  {label + ':':<30} {n / batch_s:6.2f} images/s, {floor_s / batch_s:5.2f}x the floor")


if __name__ == "__main__":
    main()
