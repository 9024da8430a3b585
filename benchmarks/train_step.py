"""Training step cost at batch 20, 120x160: a supervised step and a full GAN iteration (2 D steps
with gradient penalty + 1 G step), on the current device; medians of several steps.

Then every architecture of the registry (``model.arch``): its supervised step as its configs train
it (the paper's G_1 applied twice, the refiners' block unrolled three times), in float32 and under
bf16 autocast (``run.precision``), as a ratio against the paper's float32 step.

The same run also times the plain implementation (explicit padding before every "SAME" conv, and
D run separately on real and fake images), so the ratio shows what the optimisations buy; the maths
is identical (tests/test_nets.py checks both paths give the same numbers).
Run: ``.venv/bin/python benchmarks/train_step.py [--device cuda] [--steps 8]``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from stgan_cli.model import archs  # noqa: E402
from stgan_cli.model.archs import paper  # noqa: E402
from stgan_cli.data import synth_indoor  # noqa: E402
from stgan_cli.training import config as C, losses  # noqa: E402
from stgan_cli.training.trainer import Trainer  # noqa: E402


@contextlib.contextmanager
def plain():
    """The straightforward implementation: pad every conv input, score real and fake separately."""
    conv_forward, critic_loss = paper.SameConv.forward, losses.critic_loss

    def padded(self, x):
        top, bottom = paper._same_pad(x.shape[-2], 4, self.stride[0]) if self.kernel_size[0] == 4 else (0, 0)
        left, right = paper._same_pad(x.shape[-1], 4, self.stride[0]) if self.kernel_size[0] == 4 else (0, 0)
        return torch.nn.Conv2d.forward(self, F.pad(x, (left, right, top, bottom)))

    def separate(d, real, fake, gp_weight):
        real_score, fake_score = losses.critic(d, real).mean(), losses.critic(d, fake).mean()
        gp = losses.gradient_penalty(d, real, fake)
        return fake_score - real_score + gp_weight * gp, {"wdist": (real_score - fake_score).item(), "gp": gp.item()}

    paper.SameConv.forward, losses.critic_loss = padded, separate
    try:
        yield
    finally:
        paper.SameConv.forward, losses.critic_loss = conv_forward, critic_loss


def time_steps(data: Path, device: str, steps: int, warps: int, channels_last: bool, extra=()) -> dict:
    cfg = C.load(None, [f"data.path={data}", f"stages.pretrain={steps}", f"stages.warp={steps}", f"model.warps={warps}",
                        "stages.end_to_end=0", f"run.channels_last={channels_last}", "run.eval_every=0",
                        "run.sample_every=0", "run.checkpoint_every=0", "run.log_every=100000", "data.eval_samples=8",
                        *extra])
    trainer = Trainer(cfg, Path(tempfile.mkdtemp()), device, log=lambda *a: None)
    times: dict[str, list[float]] = {}
    for _ in range(trainer.total):
        row = trainer.train_step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.setdefault(row["stage"], []).append(row["seconds"])
    # the first steps of each stage warm up allocators and kernels
    return {stage: statistics.median(v[2:] if len(v) > 4 else v) for stage, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=8, help="steps timed per stage")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    synth_indoor.generate(tmp, 40, seed=0, size=(120, 160), split=1.0, workers=2)
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads; batch 20, 120x160; "
          f"median of {args.steps} steps (GAN iteration = 2 D steps with GP + 1 G step)")
    results = {}
    for name, ctx, cl in (("plain", plain, False), ("optimised", contextlib.nullcontext, True)):
        with ctx():
            results[name] = {"warps=1": time_steps(tmp, args.device, args.steps, 1, cl),
                             "warps=5, stage warp5": {}}
            five = time_steps(tmp, args.device, max(3, args.steps // 2), 5, cl)
            results[name]["warps=5, stage warp5"] = {"warp5": five["warp5"]}
    rows = [("supervised step", "warps=1", "pretrain"), ("GAN iteration, stage warp1", "warps=1", "warp1"),
            ("GAN iteration, stage warp5", "warps=5, stage warp5", "warp5")]
    print(f"{'':32}{'plain':>10}{'optimised':>12}{'speed-up':>10}")
    for label, group, stage in rows:
        a, b = results["plain"][group][stage], results["optimised"][group][stage]
        print(f"{label:32}{a:9.3f}s{b:11.3f}s{a / b:9.2f}x")

    print(f"\nsupervised step per architecture{'fp32':>10}{'bf16':>10}{'vs paper fp32':>15}")
    base = None
    for arch in archs.names():
        rounds = 2 if arch == "paper" else 3
        row = []
        for precision in ("fp32", "bf16"):
            extra = (f"model.arch={arch}", f"optim.pretrain_rounds={rounds}", f"run.precision={precision}",
                     "stages.d_pretrain=0", "stages.warp=0")
            row.append(time_steps(tmp, args.device, args.steps, 3, True, extra)["pretrain"])
        base = base or row[0]
        print(f"{arch + f' ({rounds} rounds)':32}{row[0]:9.3f}s{row[1]:9.3f}s{row[0] / base:14.2f}x")


if __name__ == "__main__":
    main()
