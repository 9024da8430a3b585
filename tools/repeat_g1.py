"""A model whose K generators are all copies of another model's G_1: the supervised generator
iterated, with no adversarial training. Against it, ``stgan eval`` shows what the GAN stages add
beyond applying one corrector again and again (a row of the indoor model card).

    python tools/repeat_g1.py runs/indoor/stages/pretrain --times 5 --out runs/indoor/g1x5
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from stgan_cli.model import modelstore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="model folder or name whose G_1 is repeated")
    ap.add_argument("--times", type=int, default=5)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    src = modelstore.load(args.model)
    cfg = dataclasses.replace(src.config, warps=args.times, name=f"{src.config.name}-g1x{args.times}")
    net = modelstore.build(cfg)
    g1 = src.net.generators[0].state_dict()
    for gen in net.generators:
        gen.load_state_dict(g1)
    if net.discriminator is not None and src.net.discriminator is not None:
        net.discriminator.load_state_dict(src.net.discriminator.state_dict())
    card = f"# {cfg.name}\n\nG_1 of `{args.model}` applied {args.times} times (tools/repeat_g1.py); for comparison only.\n"
    modelstore.save(net, cfg, args.out, card)
    print(args.out)


if __name__ == "__main__":
    main()
