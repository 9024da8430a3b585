"""One optimiser step of each kind: supervised (the generators undo known perturbations), critic (D)
and adversarial (the generators against D). Each takes a batch and returns the row it logs.

``o`` is the config's ``optim`` section; a batch is split into ``o.grad_accum`` micro-batches whose
gradients add up to the whole batch's.
"""

from __future__ import annotations

import math

import torch

from ..core import frames, geometry
from . import losses


def forward(net, bg, fg, p0, upto: int, train_from: int, detail=None):
    """Run updates 1..upto; those before ``train_from`` (1-based) run without gradients.
    Returns the final composite, the updates of the trained iterations and the warp after each."""
    pred = net(bg, fg, p0, iterations=upto, train_from=train_from, detail=detail)
    ps = pred.params[train_from:]
    dps = [b - a for a, b in zip(pred.params[train_from - 1:], ps)]
    return geometry.composite(bg, pred.warped[-1]), dps, ps


def corner_loss(kind: str, p, boxes, size):
    if kind == "l1":
        return losses.corner_l1(p, boxes, size)
    return losses.supervised_corner_loss(p, boxes)


def grad_norm(params) -> float:
    norms = [p.grad.detach().norm() for p in params if p.grad is not None]
    return float(torch.stack(norms).norm()) if norms else 0.0


def _micro(batch, o):
    n = o.grad_accum
    return [[t.chunk(n)[k] for t in batch] for k in range(n)]


class FakeHistory:
    """A buffer of older fakes: half of D's fakes come from it (glasses), so D does not forget them."""

    def __init__(self, size: int, items=None):
        self.size, self.items = size, list(items) if items is not None else []

    def mix(self, fake: torch.Tensor, rng) -> torch.Tensor:
        if self.size <= 0:
            return fake
        fake = fake.detach()
        out = fake
        if self.items:
            half = fake.shape[0] // 2
            picks = rng.integers(len(self.items), size=half)
            old = torch.stack([self.items[i] for i in picks]).to(fake.device)
            out = torch.cat([fake[: fake.shape[0] - half], old])
        for img in fake.cpu():
            if len(self.items) < self.size:
                self.items.append(img.contiguous())
            else:
                self.items[int(rng.integers(self.size))] = img.contiguous()
        return out


def supervised(net, opt, batch, o, size, dist, autocast, harm_weight: float | None = None) -> dict:
    """The first update applied ``o.pretrain_rounds`` times, each to its own detached result, with
    the corner loss after every application (for the refiner: its unrolled loop), plus the hinge on
    cases made worse at ``harm_weight`` (default ``o.harm_weight``)."""
    harm_weight = o.harm_weight if harm_weight is None else harm_weight
    trained = net.generators.trained_by(1)
    opt.zero_grad(set_to_none=True)
    total, per_round = 0.0, [0.0] * o.pretrain_rounds
    for bg, fg, start, _, *detail in _micro(batch, o):
        boxes = frames.object_boxes(fg[:, 3])
        pred = net(bg, fg, start, o.pretrain_rounds, detail=detail or None, block=0, detach=True, autocast=autocast)
        loss = 0.0
        for r, p in enumerate(pred.params[1:]):
            term = corner_loss(o.corner_loss, p, boxes, size)
            per_round[r] += term.item() / o.grad_accum
            if harm_weight > 0:
                term = term + harm_weight * losses.harm(p, start, boxes, size, o.harm_relative)
            loss = loss + term / o.pretrain_rounds
        (loss / o.grad_accum).backward()
        total += loss.item() / o.grad_accum
    params = [q for m in trained for q in m.parameters()]
    dist.average(params)
    grad = grad_norm(params)
    if not math.isfinite(grad):  # one bad batch must not end the run: skip it, and say so
        opt.zero_grad(set_to_none=True)
        return {"loss_sup": total, "grad_g": grad, "skipped": 1}
    if o.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, o.grad_clip)
    opt.step()
    row = {"loss_sup": total, "grad_g": grad}
    if len(per_round) > 1:
        row["loss_rounds"] = [round(v, 6) for v in per_round]
    return row


def critic(net, opt_d, batch, o, upto: int, history: FakeHistory, rng, dist) -> dict:
    """D on real images against composites after ``upto`` updates (WGAN-GP)."""
    opt_d.zero_grad(set_to_none=True)
    stats = {"loss_d": 0.0, "wdist": 0.0, "gp": 0.0}
    for bg, fg, p0, real, *detail in _micro(batch, o):
        with torch.no_grad():
            fake, _, _ = forward(net, bg, fg, p0, upto, train_from=upto + 1, detail=detail or None)
        fake = history.mix(fake, rng)
        loss, parts = losses.critic_loss(net.discriminator, real, fake, o.gp_weight)
        (loss / o.grad_accum).backward()
        stats["loss_d"] += loss.item() / o.grad_accum
        stats["wdist"] += parts["wdist"] / o.grad_accum
        stats["gp"] += parts["gp"] / o.grad_accum
    params = list(net.discriminator.parameters())
    dist.average(params)
    stats["grad_d"] = grad_norm(params)
    opt_d.step()
    return stats


def adversarial(net, opt_g, batch, o, upto: int, train_from: int, trained, size, dist) -> dict:
    """The generators ``trained`` (iterations ``train_from..upto``) against D, with the trust-region
    penalty and, on paired data, the supervised anchor (``o.supervised_weight``)."""
    params = [p for g in trained for p in g.parameters()]
    opt_g.zero_grad(set_to_none=True)
    net.discriminator.requires_grad_(False)
    stats = {"loss_g": 0.0, "trust": 0.0}
    for bg, fg, p0, _, *detail in _micro(batch, o):
        fake, dps, ps = forward(net, bg, fg, p0, upto, train_from, detail or None)
        trust = losses.trust_region(dps)
        loss = -losses.critic(net.discriminator, fake).mean() + o.trust_weight * trust
        if o.supervised_weight > 0:  # paired data: the true placement anchors the geometry
            # Every trained iterate, not only the last: end to end, the earlier generators would
            # otherwise be free to trade their own accuracy for the final one, and a user who
            # stops early (--iterations) gets their iterate.
            boxes = frames.object_boxes(fg[:, 3])
            corner = sum(corner_loss(o.corner_loss, p, boxes, size) for p in ps) / len(ps)
            loss = loss + o.supervised_weight * corner
            stats["loss_sup"] = stats.get("loss_sup", 0.0) + corner.item() / o.grad_accum
        (loss / o.grad_accum).backward()
        stats["loss_g"] += loss.item() / o.grad_accum
        stats["trust"] += trust.item() / o.grad_accum
    net.discriminator.requires_grad_(True)
    dist.average(params)
    stats["grad_g"] = grad_norm(params)
    opt_g.step()
    return stats
