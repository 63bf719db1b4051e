"""Round trip predictions → LabelMe → `brnet convert` on many synthetic worm crowds (brnet_kit.predict).

The notebook nbs/22_predict.ipynb checks the round trip on one hand-made scene with every hard
case; this test checks the same promise (IoU ≥ 0.98 for every worm) on realistic synthetic
crowds from `brnet_kit.synth`, cropped so that worms are cut by the image border, some of them
into several pieces.
"""
import numpy as np
import pytest

from brnet_kit.coco import load_coco
from brnet_kit.convert import convert
from brnet_kit.labelme import read_labelme
from brnet_kit.predict import write_prediction_labelme
from brnet_kit.synth import synth_image


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def _pred(masks):
    "A prediction dict as `predict_image` returns it, made from known masks."
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    n = len(masks)
    return dict(boxes=np.array(boxes, np.float32).reshape(-1, 4), scores=np.linspace(0.99, 0.6, n).astype(np.float32),
                labels=np.ones(n, np.int64), masks=masks)


@pytest.mark.parametrize('seed', range(6))
def test_roundtrip_synthetic_crowds(tmp_path, seed):
    from PIL import Image
    s = synth_image(seed=seed, index=0, size=(256, 256), worms=(8, 12), overlap=0.6, length=(60, 110), clean=True)
    y0, x0 = 40 + 7*seed, 30 + 5*seed                                   # a window that cuts worms at its borders
    img = np.ascontiguousarray(s.image[y0:y0 + 176, x0:x0 + 200])
    masks = s.masks[:, y0:y0 + 176, x0:x0 + 200]
    masks = masks[masks.reshape(len(masks), -1).any(1)]
    border = masks[:, 0].any(1) | masks[:, -1].any(1) | masks[:, :, 0].any(1) | masks[:, :, -1].any(1)
    assert border.any() and (masks.sum(0) > 1).any()                  # the hard cases are there: cut worms, crossings
    Image.fromarray(img).save(tmp_path/"img.png")
    lm = write_prediction_labelme(tmp_path/'labelme'/'img.json', _pred(masks), tmp_path/'img.png')
    kinds = [sh.shape_type for sh in read_labelme(lm).shapes]
    summary = convert(str(tmp_path/'labelme'), str(tmp_path/'coco'))
    back = load_coco(next(iter(summary['files'].values())))[0]
    assert len(back.masks) == len(masks), kinds
    ious = [max(_iou(m, b) for b in back.masks) for m in masks]
    assert min(ious) >= 0.98, (np.round(ious, 3), kinds)


def test_roundtrip_one_pixel_thick_piece(tmp_path):
    "A worm cut by the image border down to a sliver one pixel high must survive the round trip too."
    from PIL import Image
    H, W = 40, 60
    sliver = np.zeros((H, W), bool); sliver[0, 10:14] = True            # the tail of a worm leaving the image
    body = np.zeros((H, W), bool); body[15:22, 5:50] = True
    masks = np.stack([body, sliver])
    Image.fromarray(np.full((H, W), 200, np.uint8)).save(tmp_path/'img.png')
    write_prediction_labelme(tmp_path/'labelme'/'img.json', _pred(masks), tmp_path/'img.png')
    summary = convert(str(tmp_path/'labelme'), str(tmp_path/'coco'), strict=True)
    back = load_coco(next(iter(summary['files'].values())))[0]
    assert len(back.masks) == 2
    assert min(max(_iou(m, b) for b in back.masks) for m in masks) >= 0.98
