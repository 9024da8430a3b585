"""The synthetic protocol: a model run on paired data perturbed by known warps, every iteration
measured against the truth (:mod:`.metrics`)."""

from __future__ import annotations

import torch

from ..core import geometry
from ..core.metrics import iteration_metrics


def evaluate_batches(net, dataset, indices, p0: torch.Tensor, size, device: str = "cpu", batch: int = 50,
                     keep_images: bool = False, eyes: torch.Tensor | None = None, limits=None,
                     iterations: int | None = None, eye_distance: torch.Tensor | None = None, on_batch=None,
                     face_eyes: torch.Tensor | None = None) -> dict:
    """Metrics of ``net`` on ``dataset[indices]`` perturbed by ``p0``: per-sample arrays, means and
    medians per iteration; with ``keep_images``, the composites of the best, median and worst samples.
    With a discriminator, ``truth_preferred`` is per iteration the fraction of scenes whose true
    placement the critic scores above that iterate (0.5: it cannot tell them apart).  ``limits``: the
    trust region (:class:`~stgan_cli.core.trust_region.Limits`) inference applies, or None; ``iterations``:
    how many generators run (None: all); ``eye_distance``: per index, the face's eye distance in the
    frame, where glasses errors are measured; ``face_eyes`` per index its eye centres in the frame
    (:func:`against_eyes`); ``on_batch(count)`` after each batch."""
    import numpy as np

    from ..core.trust_region import region

    def limit():  # a fresh one per batch
        return region(limits, size)

    per: dict[str, list] = {}
    net.eval()
    with torch.no_grad():
        for start in range(0, len(indices), batch):
            idx = indices[start:start + batch]
            bg, fg = (torch.from_numpy(a).to(device) for a in dataset.batch(idx))
            pred = net(bg, fg, p0[start:start + batch].to(device), iterations=iterations, limit=limit())
            disc = getattr(net, "discriminator", None)
            iod = None if eye_distance is None else eye_distance[start:start + batch].to(device)
            own = None if face_eyes is None else face_eyes[start:start + batch].to(device)
            for k, v in iteration_metrics(pred, fg, size, disc, eyes, bg, iod, own).items():
                per.setdefault(k, []).append(v.cpu())
            if disc is not None:  # the reference: how real the critic finds the true placement
                truth = disc(geometry.composite(bg, fg)).mean(dim=(1, 2, 3))
                per.setdefault("realism_truth", []).append(truth[None].cpu())
            if on_batch:
                on_batch(len(idx))
    per_sample = {k: torch.cat(v, 1).numpy() for k, v in per.items()}
    if "realism_truth" in per_sample:
        # Mean scores can hide a critic that does not know where objects belong; this asks it per scene.
        per_sample["truth_preferred"] = (per_sample["realism_truth"] > per_sample["realism"]).astype(np.float32)
    result = {"n": len(indices), "per_sample": per_sample,
              "means": {k: [round(float(x), 4) for x in v.mean(1)] for k, v in per_sample.items()},
              "medians": {k: [round(float(x), 4) for x in np.median(v, 1)] for k, v in per_sample.items()
                          if k != "truth_preferred"}}
    if keep_images:
        # glasses are judged by where the lenses land; other objects by their corners
        final = per_sample["lens_error" if "lens_error" in per_sample else "corner_error"][-1]
        order = np.argsort(final)
        picks = {"best": order[0], "median": order[len(order) // 2], "worst": order[-1]}
        rows, alphas = {}, {}
        with torch.no_grad():
            for name, i in picks.items():
                bg, fg = (torch.from_numpy(a).to(device) for a in dataset.batch([indices[i]]))
                pred = net(bg, fg, p0[i:i + 1].to(device), iterations=iterations, limit=limit())
                frames = [geometry.composite(bg, w) for w in pred.warped] + [geometry.composite(bg, fg)]
                rows[name] = (torch.cat(frames).cpu(), float(final[i]))
                alphas[name] = torch.cat([w[:, 3] for w in pred.warped] + [fg[:, 3]]).cpu().numpy()
        result["images"], result["alphas"] = rows, alphas
        result["picks"] = {name: int(indices[i]) for name, i in picks.items()}
        result["pick_rows"] = {name: int(i) for name, i in picks.items()}
    return result
