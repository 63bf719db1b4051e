"""brnet_kit.explain (and its figures, brnet_kit.explain_figures) on cases the notebook's lesson does not show: images the model resizes, odd sizes, models without parts.

nbs/30_explain.ipynb and nbs/31_explain_figures.ipynb check everything on a 128×128 image that the model sees at its own size.
Here the model's transform rescales the image (and pads it to a multiple of 32), so boxes and
maps must be mapped between image and network grids, and models with BR-Net parts switched
off must still be explained with the heads they have.
"""
import numpy as np
import pytest
import torch

from brnet_kit.core import BrnetError
from brnet_kit.explain import METHODS, attribute, detect, fixed_box_logits, gradcam_layers, worm_forward
from brnet_kit.explain_figures import explain_figure, show_worm
from brnet_kit.model import BASELINE, build_model
from brnet_kit.testing import TINY, toy_batch


@pytest.fixture(scope='module')
def model():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    # the image below is 100×150: the transform scales it by 1.28 (min_size 128) and pads it to 128×192
    return build_model('demo', **TINY, min_size=128, max_size=256, box_score_thresh=0.0).eval()


@pytest.fixture(scope='module')
def scene():
    images, targets = toy_batch(1, (100, 150), worms=4, seed=3)
    return images[0], targets[0]['boxes']


def test_maps_have_image_shape_when_resized(model, scene):
    x, boxes = scene
    det = detect(model, x, boxes=boxes)
    assert det.geometry == ((128, 192), (128, 192))
    assert det.masks['refined'].shape == (len(boxes), 100, 150)
    assert all(a['psi'].shape == (100, 150) for a in det.attention.values())
    for method in METHODS:
        a = attribute(model, det, 0, method, steps=4)
        assert a.map.shape == (100, 150) and np.isfinite(a.map).all(), method
    for layer in ('body.3', 'uam.1'):
        assert layer in gradcam_layers(model)
        a = attribute(model, det, 0, 'gradcam', layer=layer)
        assert a.map.shape == (100, 150) and np.isfinite(a.map).all() and a.map.max() > 0, layer


def test_fixed_boxes_reproduce_the_model_when_resized(model, scene):
    "The fixed-box path maps boxes onto the resized image exactly as the model does."
    x, _ = scene
    found = detect(model, x, score_thresh=0.0)
    assert len(found) > 0
    again = detect(model, x, boxes=found.boxes)
    for head in ('coarse', 'overlap', 'non_overlap', 'refined'):
        np.testing.assert_allclose(again.masks[head], found.masks[head], atol=3e-3, err_msg=head)
    with torch.no_grad():
        summed = worm_forward(model, found.boxes[0])(x[None])
        logits = fixed_box_logits(model, x[None], torch.from_numpy(found.boxes[:1]), ['refined'])['refined']
    torch.testing.assert_close(summed, logits[:, 0, 1].flatten(1).sum(1))


def test_a_model_without_br_net_parts(scene):
    "All switches off is Mask R-CNN: only the coarse head, no UAM; explained with what it has."
    x, boxes = scene
    torch.manual_seed(0)
    base = build_model('demo', **TINY, **BASELINE).eval()
    det = detect(base, x, boxes=boxes)
    assert list(det.masks) == ['coarse'] and det.attention == {}
    a = attribute(base, det, 1, 'gradcam')
    assert a.head == 'coarse' and a.map.shape == (100, 150) and np.isfinite(a.map).all()
    assert not any(k.startswith('uam.') for k in gradcam_layers(base))
    show_worm(det, 1)                                      # panels for the missing heads say so
    with pytest.raises(BrnetError, match='no UAM'): explain_figure(base, det, 0, 'uam')
    with pytest.raises(BrnetError, match="no 'refined' head"): attribute(base, det, 0, 'saliency', head='refined')
