"""`annotate`: one image's (or several images') instances as COCO annotations with their decomposition, in plain Python values."""
import json

import numpy as np
from hypothesis import given, settings, strategies as st

from brnet_kit.labelme import Shape, write_labelme, read_labelme
from brnet_kit.raster import instances
from brnet_kit.testing import labelme_file
from brnet_kit.decompose import decompose
from brnet_kit.coco import rle_to_mask, annotate, annotate_images, write_dataset


# ---- annotate ----

def _quad(rng, x, y):
    "A random quadrilateral, worm-sized, from (x, y)."
    return [[x, y], [x + rng.uniform(3, 20), y + rng.uniform(0, 3)], [x + rng.uniform(3, 20), y + rng.uniform(5, 20)], [x, y + rng.uniform(3, 20)]]

def _check_annotations(anns, ins):
    "Every RLE of one image's annotations decodes to its full-size masks and their decomposition (crowd regions apart)."
    assert len(anns) == len(ins)
    if not ins: return
    full = np.stack([i.mask for i in ins])
    o, n = decompose(full, np.array([i.iscrowd for i in ins]))
    for a, m, oo, nn in zip(anns, full, o, n):
        assert (rle_to_mask(a['segmentation']) == m).all()
        assert (rle_to_mask(a['overlap']) == oo).all() and (rle_to_mask(a['non_overlap']) == nn).all()
        assert a['area'] == m.sum() and a['overlap_area'] == oo.sum()
        ys, xs = np.nonzero(m)
        assert a['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]

@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_annotate_matches_full_size_decomposition(tmp_path_factory, seed):
    "Random crossing rectangles and polygons: every RLE decodes to the full-size masks and their decomposition."
    rng = np.random.default_rng(seed)
    H, W = 60, 80
    shapes = [dict(label='worm', points=_quad(rng, rng.uniform(0, W - 20), rng.uniform(0, H - 20)), shape_type='polygon',
                   group_id=int(rng.integers(0, 3)) if rng.random() < 0.3 else None) for k in range(rng.integers(1, 7))]
    lf = read_labelme(labelme_file(tmp_path_factory.mktemp('a'), 'a.json', shapes, size=(H, W)))
    ins = instances(lf)
    _check_annotations(annotate(ins, lf.size), ins)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_annotate_several_images_at_once(tmp_path_factory, seed):
    "Images annotated in one call (as convert does a chunk): each as its own full-size decomposition, though their worms sit at the same places."
    rng = np.random.default_rng(seed)
    d = tmp_path_factory.mktemp('m')
    images = []
    for i in range(int(rng.integers(2, 5))):   # worms in a small area: those of different images lie on top of each other
        shapes = [dict(label='__ignore__' if rng.random() < 0.15 else 'worm', points=_quad(rng, rng.uniform(0, 25), rng.uniform(0, 15)),
                       shape_type='polygon', group_id=None) for k in range(int(rng.integers(0, 5)))]
        lf = read_labelme(labelme_file(d, f'{i}.json', shapes, size=(40, 50)))
        images.append((instances(lf), lf.size))
    for (ins, size), anns in zip(images, annotate_images(images)): _check_annotations(anns, ins)


# ---- plain JSON numbers ----

def _plain(x):
    "Only JSON's own Python types, all the way down."
    if isinstance(x, dict): return all(type(k) is str and _plain(v) for k, v in x.items())
    if isinstance(x, list): return all(_plain(v) for v in x)
    return type(x) in (int, float, str, bool, type(None))

def test_annotations_hold_plain_python_numbers(tmp_path):
    "Instances from a LabelMe `mask` shape (NumPy box origins) and NumPy sizes: annotations hold only plain Python values."
    m = np.zeros((3, 5), bool); m[1, :] = True; m[2, 4] = True
    src = tmp_path/'lm'; src.mkdir()
    write_labelme(src/'a.json', [Shape('worm', np.array([[4, 6], [8, 8]]), 'mask', group_id=np.int64(1), mask=m), Shape('worm', [[2, 2], [20, 2], [20, 9]])],
                  'a.png', np.int64(20), np.int64(30), image_data=np.zeros((20, 30), np.uint8))
    lf = read_labelme(src/'a.json')
    for polygons in (False, True):
        anns = annotate(instances(lf), lf.size, polygons=polygons)
        assert all(_plain(a) for a in anns), anns
        assert anns[0]['bbox'] == [4, 7, 5, 2] and anns[0]['area'] == 6
    items = [dict(file_name='a.png', height=np.int64(20), width=np.int64(30), masks=np.stack([i.mask for i in instances(lf)]),
                  labels=np.array(['worm', 'worm']), iscrowd=np.array([False, False]))]
    d = json.loads(write_dataset(tmp_path/'ds', items, ['worm'], polygons=True)['all'].read_text())
    assert d['images'][0]['height'] == 20 and d['annotations'][0]['bbox'] == [4, 7, 5, 2]


def test_touching_boxes_without_shared_pixels():
    "Two worms whose boxes overlap but whose pixels do not: empty overlaps, non-overlap = mask; a real crossing splits."
    from brnet_kit.raster import Instance
    H, W = 20, 20
    a = np.zeros((H, W), bool); a[2:12, 2:4] = True; a[2:4, 2:12] = True     # an L
    b = np.zeros((H, W), bool); b[6:12, 8:12] = True                         # inside the L's box, touching none of it
    c = np.zeros((H, W), bool); c[1:5, 6:8] = True                           # across the L's top bar
    def inst(m):
        ys, xs = np.nonzero(m)
        return Instance('worm', None, False, xs.min(), ys.min(), m[ys.min():ys.max() + 1, xs.min():xs.max() + 1], (H, W))
    anns = annotate([inst(a), inst(b)], (H, W))
    for ann, m in zip(anns, (a, b)):
        assert ann['overlap_area'] == 0 and not rle_to_mask(ann['overlap']).any()
        assert ann['non_overlap'] == ann['segmentation'] and (rle_to_mask(ann['segmentation']) == m).all()
    anns = annotate([inst(a), inst(c)], (H, W))
    ov, nov = decompose(np.stack([a, c]))
    for k, ann in enumerate(anns):
        assert (rle_to_mask(ann['overlap']) == ov[k]).all() and (rle_to_mask(ann['non_overlap']) == nov[k]).all()
        assert ann['overlap_area'] == ov[k].sum() > 0
