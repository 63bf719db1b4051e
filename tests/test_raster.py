"""`--raster`: exact areas (polygon) or LabelMe's own pixels (labelme), and files brnet-kit traced itself."""
import contextlib, io, json, shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brnet_kit.core import shared_data
from brnet_kit.labelme import Shape, write_labelme, read_labelme
from brnet_kit.raster import instances, shape_to_mask
from brnet_kit.coco import load_coco
from brnet_kit.convert import convert


EXAMPLES = shared_data('labelme-examples')
needs_examples = pytest.mark.skipif(EXAMPLES is None, reason='real LabelMe examples absent (../shared/data/labelme-examples)')


def quiet(f, *a, **kw):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): return f(*a, **kw)


# ---- --raster: exact areas (polygon) or LabelMe's pixels (labelme) ----

def _ribbon(rng, width, H=320, W=320):
    "A worm-like ribbon: a wavy centre line buffered to `width`, as a shapely polygon."
    import shapely
    L, a, amp, f = rng.uniform(60, 220), rng.uniform(0, np.pi), rng.uniform(0, 25), rng.uniform(1, 4)
    t = np.linspace(0, 1, 50)
    u, v = L*(t - 0.5), amp*np.sin(2*np.pi*f*t)
    mid = np.stack([W/2 + u*np.cos(a) - v*np.sin(a), H/2 + u*np.sin(a) + v*np.cos(a)], 1) + rng.uniform(-0.5, 0.5, 2)
    return shapely.LineString(mid).buffer(width/2, cap_style='round', quad_segs=4)


def test_polygon_raster_areas_of_thin_ribbons():
    "Worm-like ribbons 4-12 px wide: polygon-mode areas within 2 % of the polygon's; LabelMe's drawing several % over."
    rng = np.random.default_rng(0)
    rel, rel_lm, n = [], [], 0
    for _ in range(150):
        g = _ribbon(rng, rng.uniform(4, 12))
        if g.geom_type != 'Polygon' or len(g.interiors): continue   # a ribbon folded onto itself
        s = Shape('worm', np.asarray(g.exterior.coords)[:-1].tolist())
        rel.append(shape_to_mask(s, (320, 320), raster='polygon').sum()/g.area - 1)
        rel_lm.append(shape_to_mask(s, (320, 320)).sum()/g.area - 1)
    assert len(rel) > 100
    assert np.abs(rel).max() < 0.02 and abs(np.mean(rel)) < 0.002, (np.abs(rel).max(), np.mean(rel))
    assert np.mean(rel_lm) > 0.05 and min(rel_lm) > 0.02


def test_polygon_raster_has_no_bias_on_very_thin_ribbons():
    "2.5-4 px wide: each area is noisier (a few %), but on average still the polygon's."
    rng = np.random.default_rng(1)
    rel = []
    for _ in range(150):
        g = _ribbon(rng, rng.uniform(2.5, 4))
        if g.geom_type != 'Polygon' or len(g.interiors): continue
        rel.append(shape_to_mask(Shape('worm', np.asarray(g.exterior.coords)[:-1].tolist()), (320, 320), raster='polygon').sum()/g.area - 1)
    assert abs(np.mean(rel)) < 0.005 and np.abs(rel).max() < 0.06


@needs_examples
def test_polygon_raster_areas_of_real_labelme_files(tmp_path):
    "Every single-polygon object of the real examples (inside the image, simple): convert's area within 2 % of shapely's."
    import shapely
    n = 0
    for f in sorted((EXAMPLES/'examples').rglob('*.json')):
        lf = read_labelme(f)
        H, W = lf.size
        for ins in instances(lf, raster='polygon'):
            if ins.iscrowd or len(ins.shape_ids) != 1 or lf.shapes[ins.shape_ids[0]].shape_type != 'polygon': continue
            g = shapely.Polygon(lf.shapes[ins.shape_ids[0]].xy)
            if not g.is_valid or not shapely.box(0, 0, W, H).contains(g) or g.area < 50: continue
            assert abs(ins.area/g.area - 1) < 0.02, (f.name, ins.shape_ids, ins.area, g.area)
            n += 1
    assert n >= 20


@needs_examples
def test_labelme_raster_is_labelmes_own_drawing(tmp_path):
    "convert --raster labelme: every object's mask is the union of labelme.utils.shape_to_mask of its shapes."
    lm = pytest.importorskip('labelme.utils.shape', reason='labelme (the reference drawing) is not installed')
    src = EXAMPLES/'examples/instance_segmentation'
    quiet(convert, src/'data_annotated', tmp_path/'lm', labels=str(src/'labels.txt'), raster='labelme')
    d = json.loads((tmp_path/'lm/annotations.json').read_text())
    assert d['info']['raster'] == 'labelme'
    for im in load_coco(tmp_path/'lm/annotations.json'):
        lf = read_labelme(src/'data_annotated'/(Path(im.file_name).stem + '.json'))
        for ins, m in zip([i for i in instances(lf) if not i.iscrowd], im.masks[~im.iscrowd]):
            ref = np.any([lm.shape_to_mask(lf.size, lf.shapes[k].points, lf.shapes[k].shape_type) for k in ins.shape_ids], 0)
            assert (m == ref).all()


def test_files_traced_by_brnet_keep_their_pixels(tmp_path):
    "A worm traced by masks_to_shapes and written by write_labelme comes back exactly in either mode; unmarked, polygon mode takes its own area."
    from brnet_kit.raster import masks_to_shapes
    yy, xx = np.mgrid[:80, :120]
    band = np.abs(np.hypot(xx - 60, yy - 90) - 60) < 5
    shapes = masks_to_shapes(band, 'worm', kind='polygon')
    drawn = np.any([shape_to_mask(s, (80, 120)) for s in shapes], 0)   # what LabelMe draws of the tracing: the band, nearly
    assert (drawn != band).sum() < 0.01*band.sum()
    Image.fromarray(np.zeros((80, 120), np.uint8)).save(tmp_path/'w.png')
    for name, mark in (('marked', 'labelme'), ('plain', None)):
        (tmp_path/name).mkdir(); shutil.copy(tmp_path/'w.png', tmp_path/name/'w.png')
        write_labelme(tmp_path/name/'w.json', shapes, 'w.png', 80, 120, raster=mark)
    for raster in ('polygon', 'labelme'):
        s = quiet(convert, tmp_path/'marked', tmp_path/f'out_m_{raster}', raster=raster)
        assert (load_coco(tmp_path/f'out_m_{raster}/annotations.json')[0].masks[0] == drawn).all()
        assert s.get('raster_labelme_files', 0) == (1 if raster == 'polygon' else 0)
    quiet(convert, tmp_path/'plain', tmp_path/'out_p')
    m = load_coco(tmp_path/'out_p/annotations.json')[0].masks[0]
    assert 0.75 < m.sum()/drawn.sum() < 0.95   # the traced outline runs through the boundary pixels' centres
