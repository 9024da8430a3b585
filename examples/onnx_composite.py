"""Composite with an exported ST-GAN model using only onnxruntime, OpenCV and numpy (no PyTorch).

    stgan export indoor --format onnx --out indoor.onnx          # once, where stgan is installed
    python examples/onnx_composite.py indoor.onnx sofa.png room.jpg out.png --box 120,250,330,470

The ONNX model takes the background and the foreground canvas at its own resolution (e.g. 120x160)
and returns the warp parameters after each generator and ``warp``: a 3x3 matrix in *canonical*
coordinates (``[-1, 1]^2`` over the image, -1 and 1 at the outer pixel edges) that maps background
points to the canvas points sampled there.  Canonical coordinates are the same at every resolution,
which is how the low-resolution warp becomes a full-resolution pixel homography below.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import onnxruntime as ort


def canon_from_pixel(h: int, w: int) -> np.ndarray:
    return np.array([[2.0 / w, 0, 1.0 / w - 1], [0, 2.0 / h, 1.0 / h - 1], [0, 0, 1]])


def pixel_from_canon(h: int, w: int) -> np.ndarray:
    return np.linalg.inv(canon_from_pixel(h, w))


def warp(rgba: np.ndarray, dst_from_src: np.ndarray, size_hw) -> np.ndarray:
    """Warp premultiplied RGBA; shrink first with area averaging when the warp shrinks it a lot."""
    h, w = rgba.shape[:2]
    corners = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1], [-0.5, h - 0.5, 1]]) @ dst_from_src.T
    quad = corners[:, :2] / corners[:, 2:]
    area = 0.5 * abs(np.dot(quad[:, 0], np.roll(quad[:, 1], -1)) - np.dot(quad[:, 1], np.roll(quad[:, 0], -1)))
    s = np.sqrt(area / (h * w))
    if s < 0.7:
        sh, sw = max(2, round(h * s)), max(2, round(w * s))
        rgba = cv2.resize(rgba, (sw, sh), interpolation=cv2.INTER_AREA)
        dst_from_src = dst_from_src @ pixel_from_canon(h, w) @ canon_from_pixel(sh, sw)
    return cv2.warpPerspective(rgba, dst_from_src, (size_hw[1], size_hw[0]), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("foreground", help="RGBA cut-out")
    ap.add_argument("background")
    ap.add_argument("out")
    ap.add_argument("--box", required=True, help="X1,Y1,X2,Y2: initial box in background pixels")
    args = ap.parse_args()

    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    _, _, lh, lw = session.get_inputs()[0].shape  # the model's resolution, e.g. 120x160

    fg = cv2.imread(args.foreground, cv2.IMREAD_UNCHANGED)
    if fg is None or fg.ndim != 3 or fg.shape[2] != 4:
        raise SystemExit(f"{args.foreground}: need an RGBA image")
    fg = cv2.cvtColor(fg, cv2.COLOR_BGRA2RGBA).astype(np.float32) / (65535.0 if fg.dtype == np.uint16 else 255.0)
    ys, xs = np.nonzero(fg[..., 3] > 0)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    cut = fg[y0:y1, x0:x1].copy()
    cut[..., :3] *= cut[..., 3:]  # premultiply: resampling must not bleed transparent colour
    bg_bgr = cv2.imread(args.background, cv2.IMREAD_COLOR)
    bg = cv2.cvtColor(bg_bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    bh, bw = bg.shape[:2]

    # Initial placement: fit the cut-out inside the box (aspect kept), centred.
    bx1, by1, bx2, by2 = (float(v) for v in args.box.split(","))
    ch, cw = cut.shape[:2]
    s = min((bx2 - bx1) / cw, (by2 - by1) / ch)
    cx, cy = (bx1 + bx2) / 2 - 0.5, (by1 + by2) / 2 - 0.5
    bg_from_cut = np.array([[s, 0, cx - s * (cw - 1) / 2], [0, s, cy - s * (ch - 1) / 2], [0, 0, 1]])

    # What the generators see: both images at the model's resolution.
    low_from_bg = pixel_from_canon(lh, lw) @ canon_from_pixel(bh, bw)
    bg_low = cv2.resize(bg, (lw, lh), interpolation=cv2.INTER_AREA)
    canvas = warp(cut, low_from_bg @ bg_from_cut, (lh, lw))
    params, canvas_from_bg = session.run(None, {
        "bg": bg_low.transpose(2, 0, 1)[None].astype(np.float32),
        "fg": canvas.transpose(2, 0, 1)[None].astype(np.float32),
        "p0": np.zeros((1, 8), np.float32)})

    # The same warp at full resolution: the canvas moves by the inverse of the sampling map.
    bg_from_cut_final = pixel_from_canon(bh, bw) @ np.linalg.inv(canvas_from_bg[0].astype(np.float64)) \
        @ canon_from_pixel(bh, bw) @ bg_from_cut
    layer = warp(cut, bg_from_cut_final, (bh, bw))
    out = layer[..., :3] + bg * (1 - layer[..., 3:])
    cv2.imwrite(args.out, cv2.cvtColor(np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    print("homography (cut-out pixels -> background pixels):\n", np.round(bg_from_cut_final / bg_from_cut_final[2, 2], 4))
    print(f"warp parameters after each of the {params.shape[1] - 1} generators written to {args.out}")


if __name__ == "__main__":
    main()
