"""Rank and world of a ``torchrun`` launch: gradient averaging and weight broadcast (a single process
does neither)."""

from __future__ import annotations

import os

import torch


class Dist:
    def __init__(self, device: str):
        import torch.distributed as tdist

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled and not tdist.is_initialized():
            tdist.init_process_group("nccl" if device.startswith("cuda") else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def average(self, params) -> None:
        if not self.enabled:
            return
        import torch.distributed as tdist

        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.flatten() for g in grads])
        tdist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def broadcast(self, module) -> None:
        if self.enabled:
            import torch.distributed as tdist

            for t in module.state_dict().values():
                tdist.broadcast(t, 0)

    def in_sync(self, module) -> float | None:
        """Every rank must hold the same weights (gradients were averaged): their parameter sum, or an
        error naming the sums that differ; None in a single process."""
        if not self.enabled:
            return None
        import torch.distributed as tdist

        from ..errors import StganError

        total = torch.tensor([sum(float(v.double().sum()) for v in module.state_dict().values())],
                             dtype=torch.float64)
        gathered = [torch.zeros_like(total) for _ in range(self.world)]
        tdist.all_gather(gathered, total)
        values = [g.item() for g in gathered]
        if max(values) - min(values) > 1e-6 * max(1.0, abs(values[0])):
            raise StganError(f"ranks drifted apart: parameter sums {values}")
        return values[0]

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as tdist

            tdist.barrier()
            tdist.destroy_process_group()
