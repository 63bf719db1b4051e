"""`--polygons`: COCO polygons that pycocotools draws back to exactly the masks, on random, synthetic, LabelMe and BBBC010 worms."""
import contextlib, io, json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from brnet_kit.core import shared_data
from brnet_kit.labelme import Shape, write_labelme, read_labelme
from brnet_kit.raster import instances
from brnet_kit.coco import mask_to_rle, rle_to_mask, write_dataset, load_coco
from brnet_kit.convert import convert
BBBC010 = shared_data('bbbc010')


def quiet(f, *a, **kw):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): return f(*a, **kw)


# ---- polygons: exact under pycocotools' drawing ----

def coco_draw(seg, hw):
    "What pycocotools (and so COCOeval) draws from a segmentation: polygons or RLE."
    if isinstance(seg, list): return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(seg, *hw))).astype(bool)
    return rle_to_mask(seg)

def iou(a, b): return (a & b).sum()/(a | b).sum()

def has_hole(m):
    "Background not 8-connected to the outside of the mask's box (what no polygon can leave out)."
    from scipy import ndimage
    return bool((ndimage.binary_fill_holes(m, structure=np.ones((3, 3), bool)) != m).any())

@st.composite
def scenes(draw):
    "Random masks of every kind in small images: blobs, 1-px lines, single pixels, pieces cut by the border, rings, noise."
    H, W = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    yy, xx = np.mgrid[:H, :W]
    kind = draw(st.sampled_from(['blob', 'line', 'pixels', 'ring', 'noise', 'worm']))
    if kind == 'blob': m = np.hypot((yy - rng.uniform(-3, H + 2))/rng.uniform(0.4, 12), (xx - rng.uniform(-3, W + 2))/rng.uniform(0.4, 12)) <= 1
    elif kind == 'line':
        from skimage.draw import line
        m = np.zeros((H, W), bool); m[line(int(rng.integers(H)), int(rng.integers(W)), int(rng.integers(H)), int(rng.integers(W)))] = True
    elif kind == 'pixels': m = np.zeros((H, W), bool); m[rng.integers(H, size=4), rng.integers(W, size=4)] = True
    elif kind == 'ring': m = np.abs(np.hypot(yy - rng.uniform(0, H), xx - rng.uniform(0, W)) - rng.uniform(1, 12)) < rng.uniform(0.5, 3)
    elif kind == 'noise': m = rng.random((H, W)) < rng.uniform(0.05, 0.95)
    else:   # a thick curved band, cut by the border
        m = np.abs(np.hypot(yy - rng.uniform(-20, H + 20), xx - rng.uniform(-20, W + 20)) - rng.uniform(5, 30)) < rng.uniform(1, 6)
    return m

@settings(max_examples=600, deadline=None)
@given(scenes())
def test_mask_to_polygons_is_exact_under_pycocotools(m):
    from brnet_kit.coco import mask_to_polygons
    polys = mask_to_polygons(m)
    if not m.any(): assert polys == []; return
    assert polys and all(len(p) >= 8 and len(p) % 2 == 0 for p in polys)
    assert all(type(v) is float for p in polys for v in p)
    assert (coco_draw(polys, m.shape) == m).all()
    # a box of the mask placed in the image gives the same polygons
    ys, xs = np.nonzero(m)
    assert mask_to_polygons(m[ys.min():ys.max() + 1, xs.min():xs.max() + 1], int(xs.min()), int(ys.min())) == polys


def _check_polygon_file(ann_file, masks_by_image):
    "The IoU of each worm of a polygons=True file, as pycocotools draws it, with its mask; and how many worms have holes."
    c = quiet(COCO, str(ann_file))
    ious, holes = [], 0
    for img_id, masks in masks_by_image.items():
        anns = sorted(c.loadAnns(c.getAnnIds(imgIds=[img_id])), key=lambda a: a['id'])
        worms = [a for a in anns if not a['iscrowd']]
        assert len(worms) == len(masks)
        for a, m in zip(worms, masks):
            assert isinstance(a['segmentation'], list) and a['segmentation']   # polygons, also for coiled worms
            ys, xs = np.nonzero(m)
            holes += has_hole(m[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
            truth = mask_utils.encode(np.asfortranarray(m, dtype=np.uint8))
            ious.append(float(mask_utils.iou([c.annToRLE(a)], [truth], [0])[0, 0]))   # as COCOeval computes it
    return np.array(ious), holes


def test_polygons_of_synthetic_crowds(tmp_path):
    "Thin crossing synthetic worms, some cut by the image border: pycocotools draws the polygons back exactly."
    from brnet_kit.synth import synth_image
    items = []
    for seed in range(4):
        s = synth_image(seed=seed, index=0, size=(256, 256), worms=(8, 12), overlap=0.6, length=(60, 110), clean=True)
        m = s.masks[:, 30:206, 40:240]                                  # a window that cuts worms at its borders
        m = m[m.reshape(len(m), -1).any(1)]
        items.append(dict(file_name=f'{seed}.png', height=176, width=200, masks=m, labels=['worm']*len(m)))
    p = write_dataset(tmp_path, items, ['worm'], polygons=True)['all']
    ious, holes = _check_polygon_file(p, {k + 1: it['masks'] for k, it in enumerate(items)})
    print(f'synthetic: {len(ious)} worms ({holes} with holes), IoU min {ious.min():.4f} mean {ious.mean():.4f}')
    assert len(ious) >= 30 and ious.min() >= 0.98 and (ious == 1).all()


def test_polygons_of_labelme_worm_crowds(tmp_path):
    "LabelMe worm outlines (as the benchmark draws them) converted with --polygons: COCO draws what LabelMe draws."
    from brnet_kit.bench.convert import worm_crowd
    rng = np.random.default_rng(5)
    src = tmp_path/'lm'; src.mkdir()
    H, W = 260, 348
    for i in range(3):
        shapes = [Shape('worm', np.round(e, 2).tolist()) for e in worm_crowd(rng, (H, W), n_range=(6, 9), spacing=None if i else 0.7)]
        write_labelme(src/f'{i}.json', shapes, f'{i}.png', H, W, image_data=np.full((H, W), 200, np.uint8))
    s = quiet(convert, src, tmp_path/'poly', polygons=True)
    assert s['overlapping_instances'] > 0
    ims = load_coco(tmp_path/'poly/annotations.json')
    truth = {im.image_id: np.stack([i.mask for i in instances(read_labelme(src/f'{k}.json'))]) for k, im in enumerate(ims)}
    ious, holes = _check_polygon_file(tmp_path/'poly/annotations.json', truth)
    print(f'LabelMe worm crowds: {len(ious)} worms, IoU min {ious.min():.4f}')
    assert ious.min() >= 0.98 and (ious == 1).all()
    # the LabelMe points copied as they are (what --polygons wrote before) would lose ~10 % of every worm
    lf = read_labelme(src/'0.json')
    copied = [iou(coco_draw([np.ravel(sh.points).tolist()], (H, W)), t) for sh, t in zip(lf.shapes, truth[ims[0].image_id])]
    assert max(copied) < 0.95


@pytest.mark.skipif(BBBC010 is None, reason='BBBC010 absent (../shared/data/bbbc010): real worm masks not tested')
def test_polygons_of_bbbc010_worms(tmp_path):
    "Every real BBBC010 worm mask (crossing, coiled, touching the border) is drawn back exactly from its polygons."
    from collections import defaultdict
    by_well = defaultdict(list)
    for f in sorted((BBBC010/'BBBC010_v1_foreground_eachworm').glob('*_ground_truth.png')):
        by_well[f.name.split('_')[0]].append(f)
    items = []
    for well, files in sorted(by_well.items()):
        m = np.stack([np.asarray(Image.open(f)) > 0 for f in files])
        if m.ndim == 4: m = m.any(-1)
        m = m[m.reshape(len(m), -1).any(1)]
        items.append(dict(file_name=f'{well}.png', height=m.shape[1], width=m.shape[2], masks=m, labels=['worm']*len(m)))
    p = write_dataset(tmp_path, items, ['worm'], polygons=True)['all']
    ious, holes = _check_polygon_file(p, {k + 1: it['masks'] for k, it in enumerate(items)})
    print(f'BBBC010: {len(ious)} worms in {len(items)} wells ({holes} with holes), IoU min {ious.min():.4f}')
    assert len(ious) > 500 and holes > 0 and ious.min() >= 0.98 and (ious == 1).all()


def test_perfect_prediction_scores_ap_1_against_polygons(tmp_path):
    "COCOeval of the true masks as predictions against --polygons ground truth: AP 1 (0.745 when polygons shrank the worms)."
    from pycocotools.cocoeval import COCOeval
    from brnet_kit.synth import synth_image
    items = []
    for seed in range(3):
        s = synth_image(seed=seed, index=1, size=(200, 200), worms=(8, 12), overlap=0.6, length=(50, 90), clean=True)
        items.append(dict(file_name=f'{seed}.png', height=200, width=200, masks=s.masks, labels=['worm']*len(s.masks)))
    p = write_dataset(tmp_path, items, ['worm'], polygons=True)['all']
    gt = quiet(COCO, str(p))
    res = [dict(image_id=k + 1, category_id=1, segmentation=mask_to_rle(m), score=1.0) for k, it in enumerate(items) for m in it['masks']]
    dt = quiet(gt.loadRes, res)
    ev = COCOeval(gt, dt, 'segm')
    quiet(ev.evaluate); quiet(ev.accumulate); quiet(ev.summarize)
    assert ev.stats[0] == pytest.approx(1.0) and ev.stats[1] == pytest.approx(1.0)


def test_coiled_worm_becomes_polygons_without_the_hole(tmp_path):
    "A coiled worm (a ring) cannot be one COCO polygon: --polygons cuts it through the hole into pieces whose union is exact."
    yy, xx = np.mgrid[:40, :60]
    ring = np.abs(np.hypot(yy - 20, xx - 20) - 10) < 3
    figure8 = (np.abs(np.hypot(yy - 12, xx - 45) - 5) < 2) | (np.abs(np.hypot(yy - 27, xx - 45) - 7) < 2)   # two holes, one above the other
    src = tmp_path/'lm'; src.mkdir()
    from brnet_kit.raster import masks_to_shapes
    shapes = masks_to_shapes(ring, 'worm') + masks_to_shapes(figure8, 'worm')
    assert [sh.shape_type for sh in shapes] == ['mask', 'mask']
    write_labelme(src/'a.json', shapes, 'a.png', 40, 60, image_data=np.zeros((40, 60), np.uint8))
    quiet(convert, src, tmp_path/'out', polygons=True)
    a = json.loads((tmp_path/'out/annotations.json').read_text())['annotations']
    assert [len(x['segmentation']) for x in a] == [2, 2]            # cut by one column through each hole's middle
    c = quiet(COCO, str(tmp_path/'out/annotations.json'))
    assert (c.annToMask(c.anns[1]).astype(bool) == ring).all() and (c.annToMask(c.anns[2]).astype(bool) == figure8).all()
    for x, m in zip(a, (ring, figure8)):                            # no piece alone covers a hole pixel
        for p in x['segmentation']: assert not (coco_draw([p], m.shape) & ~m).any()
