"""Can the critic learn where objects belong? Train D alone (the recipe's ``d_pretrain`` stage, for
longer) on true composites against perturbed ones, and every ``--every`` steps report on held-out
rooms the share of scenes whose true placement it scores above the perturbed one (50 %: chance).

    python tools/critic_probe.py configs/indoor-paper.yaml --data data/indoor --steps 1000 --out /tmp/probe
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from stgan_cli.evaluation import synthetic
from stgan_cli.core import perturb
from stgan_cli.training import config as config_mod
from stgan_cli.training.trainer import Trainer


def truth_preferred(trainer: Trainer, n: int) -> float:
    """On the held-out scenes, with the initial perturbation of ``stgan eval --seed 0``."""
    idx = np.resize(np.arange(len(trainer.batches.eval_data)), n)
    p0 = perturb.warp_noise(n, trainer.cfg.perturb.homography, trainer.cfg.perturb.translation,
                            np.random.default_rng(0))
    out = synthetic.evaluate_batches(trainer.net, trainer.batches.eval_data, idx, torch.from_numpy(p0).float(), trainer.size)
    return out["means"]["truth_preferred"][0]  # the untrained G_1 is the identity: iterate 0 is the start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--every", type=int, default=200)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--out", type=Path, required=True, help="scratch run folder")
    args = ap.parse_args()
    cfg = config_mod.load(args.config, [f"data.path={args.data}", "stages.pretrain=0", f"stages.d_pretrain={args.steps}",
                                        "stages.warp=0", "stages.end_to_end=0", "model.warps=1"])
    trainer = Trainer(cfg, args.out, "cpu", log=lambda *a: None)
    print(f"step 0: D prefers the truth in {100 * truth_preferred(trainer, args.n):.0f} % of {args.n} held-out scenes",
          flush=True)
    while trainer.step < args.steps:
        row = trainer.train_step()
        if trainer.step % args.every == 0:
            print(f"step {trainer.step}: wdist {row['wdist']:.3f}, D prefers the truth in "
                  f"{100 * truth_preferred(trainer, args.n):.0f} %", flush=True)


if __name__ == "__main__":
    main()
