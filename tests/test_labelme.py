"""brnet_kit.labelme and brnet_kit.raster against LabelMe itself: every shape of the real example files, and random shapes.

LabelMe (GPL, Qt) is an optional dev dependency: the comparisons skip with a reason when it is absent,
and the real examples skip when ../shared/data/labelme-examples is absent.
"""
import json, shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from brnet_kit.core import BrnetError, shared_data
from brnet_kit.labelme import Shape, read_labelme, write_labelme, load_image
from brnet_kit.raster import shape_to_mask, instances, masks_to_shapes, _shape_box_masks
from brnet_kit.testing import labelme_file

lm_shape = pytest.importorskip('labelme.utils.shape', reason='labelme (the reference drawing) is not installed')
EXAMPLES = shared_data('labelme-examples')
needs_examples = pytest.mark.skipif(EXAMPLES is None, reason='real LabelMe examples absent (../shared/data/labelme-examples)')


def reference(shape: Shape, hw):
    "LabelMe's own pixels for a shape (mask shapes: pasted at their box, as labelme.utils.shapes_to_label does)."
    if shape.shape_type == 'mask':
        m = np.zeros(hw, bool)
        (x1, y1), (x2, y2) = np.asarray(shape.points).astype(int)
        m[y1:y2 + 1, x1:x2 + 1] = shape.mask
        return m
    if shape.shape_type == 'points':
        return np.any([lm_shape.shape_to_mask(hw, [p], 'point') for p in np.asarray(shape.points).tolist()], 0)
    return lm_shape.shape_to_mask(hw, np.asarray(shape.points).tolist(), shape.shape_type)


def _example_files(tmp_path):
    "All real example files; the legacy ones are read beside a copy of the image they were drawn on."
    legacy = tmp_path/'legacy'; legacy.mkdir()
    shutil.copy(EXAMPLES/'examples/instance_segmentation/data_annotated/2011_000003.jpg', legacy)
    out = []
    for f in sorted(EXAMPLES.rglob('*.json')):
        if f.parent.name == 'legacy_formats': shutil.copy(f, legacy); out.append(legacy/f.name)
        else: out.append(f)
    return out


@needs_examples
def test_every_example_shape_matches_labelme(tmp_path):
    n, types = 0, set()
    for f in _example_files(tmp_path):
        lf = read_labelme(f)
        for i, s in enumerate(lf.shapes):
            ref = reference(s, lf.size)
            ours = shape_to_mask(s, lf.size)
            assert (ours == ref).all(), f"{f.name} shape #{i+1} ({s.shape_type}): {(ours != ref).sum()} pixels differ"
            n += 1; types.add(s.shape_type)
    assert n >= 60
    assert types >= {'polygon', 'rectangle', 'circle', 'line', 'linestrip', 'point', 'mask'}


@needs_examples
def test_instances_are_unions_of_labelme_masks(tmp_path):
    "Instances: same (label, group_id) = union; crowd for __ignore__; every pixel as LabelMe draws it."
    for f in _example_files(tmp_path):
        lf = read_labelme(f)
        for ins in instances(lf):
            ref = np.any([reference(lf.shapes[i], lf.size) for i in ins.shape_ids], 0)
            assert (ins.mask == ref).all(), f.name
            assert ins.iscrowd == (ins.label == '__ignore__')
            if len(ins.shape_ids) > 1: assert ins.group_id is not None
            assert ins.area == ref.sum()
            ys, xs = np.nonzero(ref)
            assert ins.bbox == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


@needs_examples
def test_labelme_reads_the_same_files():
    "Our reader and LabelMe's agree on labels, group ids, types and points of current-format files."
    from labelme._label_file import LabelFile
    for f in sorted((EXAMPLES/'examples').rglob('*.json')):
        ours, theirs = read_labelme(f), LabelFile(str(f))
        assert [(s.label, s.group_id, s.shape_type) for s in ours.shapes] == \
               [(s['label'], s['group_id'], s['shape_type']) for s in theirs.shapes]
        for a, b in zip(ours.shapes, theirs.shapes): assert np.allclose(a.points, b['points'])
        if theirs.image_data is not None and ours.image_data is not None: assert ours.image_data == theirs.image_data


@needs_examples
def test_embedded_image():
    lf = read_labelme(EXAMPLES/'examples/tutorial/apc2016_obj3.json')
    img = load_image(lf)
    assert img.shape == (lf.image_height, lf.image_width, 3)
    from labelme.utils import img_data_to_arr
    assert (img == img_data_to_arr(lf.image_data)).all()


# ---- random shapes of every type, compared with LabelMe ----

coord = st.floats(-3, 63, allow_nan=False, allow_infinity=False)
frac = st.floats(0, 40, allow_nan=False).map(lambda v: round(v*4)/4)   # quarter pixels hit Pillow's rounding edges
pt = st.tuples(st.one_of(coord, frac), st.one_of(coord, frac))

@st.composite
def shapes(draw):
    kind = draw(st.sampled_from(['polygon', 'rectangle', 'circle', 'line', 'linestrip', 'point', 'points', 'oriented_rectangle']))
    n = {'polygon': draw(st.integers(3, 12)), 'rectangle': 2, 'circle': 2, 'line': 2, 'linestrip': draw(st.integers(2, 6)),
         'point': 1, 'points': draw(st.integers(1, 4)), 'oriented_rectangle': 4}[kind]
    pts = [list(draw(pt)) for _ in range(n)]
    return Shape('x', pts, kind)

@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes(), st.tuples(st.integers(1, 64), st.integers(1, 64)))
def test_random_shapes_match_labelme(shape, hw):
    assert (shape_to_mask(shape, hw) == reference(shape, hw)).all()

@settings(max_examples=150, deadline=None)
@given(st.lists(shapes(), min_size=1, max_size=6), st.tuples(st.integers(8, 64), st.integers(8, 64)))
def test_shared_canvas_is_clean_between_shapes(shape_list, hw):
    "Shapes drawn one after another on the reused canvas come out as if each were drawn alone."
    H, W = hw
    for (x0, y0, m), s in zip(_shape_box_masks(shape_list, H, W), shape_list):
        full = np.zeros(hw, bool); full[y0:y0 + m.shape[0], x0:x0 + m.shape[1]] = m
        assert (full == reference(s, hw)).all()


# ---- masks back to shapes ----

@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_masks_to_shapes_round_trip(seed):
    "auto: a mask shape is exact; a polygon redraws the mask closely (IoU >= 0.9 by construction)."
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:60, :80]
    cx, cy, r, w = rng.uniform(20, 60), rng.uniform(15, 45), rng.uniform(8, 30), rng.uniform(2, 8)
    m = np.abs(np.hypot(xx - cx, yy - cy) - r) < w              # a ring (a coiled worm) ...
    if rng.random() < 0.5: m &= xx < cx + rng.uniform(-r, r)      # ... or an open arc
    shapes_ = masks_to_shapes(m, 'worm', group_id=1)
    if not m.any(): assert shapes_ == []; return
    back = np.any([shape_to_mask(s, m.shape) for s in shapes_], 0)
    if any(s.shape_type == 'mask' for s in shapes_): assert (back == m).all()
    else: assert (back & m).sum()/(back | m).sum() >= 0.9
    for s in shapes_: assert s.group_id == 1


@st.composite
def small_masks(draw):
    "Small masks of the kinds that break polygon tracing: blobs, 1-px lines, single pixels, slivers at the border, rings, noise."
    H, W = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(['blob', 'line', 'pixels', 'border', 'sliver', 'ring', 'noise', 'mixed']))
    yy, xx = np.mgrid[:H, :W]
    def blob(cy=None, cx=None):
        cy = rng.uniform(-2, H + 1) if cy is None else cy; cx = rng.uniform(-2, W + 1) if cx is None else cx
        ry, rx, a = rng.uniform(0.4, 8), rng.uniform(0.4, 8), rng.uniform(0, np.pi)
        u, v = (xx - cx)*np.cos(a) + (yy - cy)*np.sin(a), -(xx - cx)*np.sin(a) + (yy - cy)*np.cos(a)
        return (u/rx)**2 + (v/ry)**2 <= 1
    def line():
        from skimage.draw import line as draw_line
        m = np.zeros((H, W), bool)
        r, c = draw_line(int(rng.integers(H)), int(rng.integers(W)), int(rng.integers(H)), int(rng.integers(W)))
        m[r, c] = True
        return m
    m = np.zeros((H, W), bool)
    if kind == 'blob': m = blob()
    elif kind == 'line': m = line()
    elif kind == 'pixels': m[rng.integers(H, size=3), rng.integers(W, size=3)] = True
    elif kind == 'border':    # a blob centred on an edge of the image, cut by it
        side = rng.integers(4)
        m = blob(cy=[0.0, H - 1.0][side % 2] if side < 2 else None, cx=[0.0, W - 1.0][side % 2] if side >= 2 else None)
    elif kind == 'sliver':    # one pixel thick along the border (the tail of a worm leaving the image)
        a, b = sorted(rng.integers(0, max(H, W) + 1, 2))
        if rng.random() < 0.5: m[[0, H - 1][rng.integers(2)], a:b + 1] = True
        else: m[a:b + 1, [0, W - 1][rng.integers(2)]] = True
    elif kind == 'ring':
        cy, cx, r = rng.uniform(0, H), rng.uniform(0, W), rng.uniform(2, 10)
        m = np.abs(np.hypot(yy - cy, xx - cx) - r) < rng.uniform(0.6, 3)
    elif kind == 'noise': m = rng.random((H, W)) < rng.uniform(0.05, 0.9)
    else: m = blob() | line() | blob()
    return m

def _read_back(tmp_path_factory, shapes_, hw):
    d = tmp_path_factory.mktemp('rt')
    p = write_labelme(d/'a.json', shapes_, 'a.png', *hw, image_data=np.zeros(hw, np.uint8))
    return instances(read_labelme(p))

@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(small_masks(), st.sampled_from([None, 7]), st.sampled_from(['auto', 'mask']), st.sampled_from([0.0, 0.3, 1.0]),
       st.sampled_from([0.8, 0.95, 1.0]))
def test_masks_to_shapes_write_read_round_trip(tmp_path_factory, m, gid, kind, tolerance, min_iou):
    "masks_to_shapes -> write_labelme -> read_labelme -> instances always works and gives the mask back (auto: IoU >= min_iou)."
    shapes_ = masks_to_shapes(m, 'worm', group_id=gid, kind=kind, tolerance=tolerance, min_iou=min_iou)
    if not m.any(): assert shapes_ == []; return
    ins = _read_back(tmp_path_factory, shapes_, m.shape)      # raises BrnetError if a shape is rejected
    assert len(ins) == 1, [s.shape_type for s in shapes_]
    back = ins[0].mask
    if kind == 'mask': assert (back == m).all()
    else: assert (back & m).sum()/(back | m).sum() >= min_iou, [s.shape_type for s in shapes_]

@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(small_masks(), st.sampled_from([None, 7]))
def test_forced_polygons_are_readable(tmp_path_factory, m, gid):
    "kind='polygon' writes only polygons that read_labelme accepts, also for pieces one pixel thick."
    shapes_ = masks_to_shapes(m, 'worm', group_id=gid, kind='polygon')
    assert all(s.shape_type == 'polygon' for s in shapes_)
    if m.any(): _read_back(tmp_path_factory, shapes_, m.shape)

def test_one_pixel_thick_pieces():
    "The cases found in review: a 1x4 sliver on the image border, a single pixel, a diagonal line."
    from brnet_kit.labelme import polygon_ok
    for rows, cols in [(0, slice(10, 14)), (5, 5), (np.arange(3, 9), np.arange(3, 9))]:
        m = np.zeros((40, 60), bool); m[rows, cols] = True
        sh, = masks_to_shapes(m, 'worm')
        assert sh.shape_type == 'mask' and (shape_to_mask(sh, m.shape) == m).all()
        sh, = masks_to_shapes(m, 'worm', kind='polygon')
        assert polygon_ok(sh.points) and (shape_to_mask(sh, m.shape) == m).all()
    assert not polygon_ok([[13, 0], [12, 0], [11, 0], [10, 0], [11, 0], [12, 0]])   # what was written before: no area


def test_numpy_numbers_are_written_as_plain_json(tmp_path):
    "Points, group ids, sizes given as NumPy numbers are written as plain JSON numbers; boxes of instances are plain ints."
    m = np.zeros((3, 4), bool); m[1, 1:3] = True; m[2, 3] = True
    mask_shape = Shape('worm', np.array([[2, 5], [5, 7]], np.int64), 'mask', group_id=np.int64(4), mask=m)
    poly = Shape('worm', np.array([[10, 10], [20, 10], [20, 18]], np.int32), group_id=np.int32(1))
    p = write_labelme(tmp_path/'a.json', [mask_shape, poly], 'a.png', np.int64(30), np.int64(40),
                      image_data=np.zeros((30, 40), np.uint8), flags=dict(n=np.int64(2), ok=np.bool_(True)))
    d = json.loads(p.read_text())
    assert [s['group_id'] for s in d['shapes']] == [4, 1] and d['shapes'][1]['points'][0] == [10.0, 10.0]
    assert (d['imageHeight'], d['imageWidth'], d['flags']) == (30, 40, {'n': 2, 'ok': True})
    ins = instances(read_labelme(p))
    assert [i.bbox for i in ins] == [[3, 6, 3, 2], [10, 10, 11, 9]]
    for i in ins:
        assert all(type(v) is int for v in [i.x0, i.y0, i.area, *i.bbox]), (i.x0, i.y0, i.bbox)
    json.dumps([i.bbox for i in ins])


def test_write_labelme_is_read_by_labelme(tmp_path):
    from labelme._label_file import LabelFile
    yy, xx = np.mgrid[:50, :70]
    ring = np.abs(np.hypot(xx - 35, yy - 25) - 15) < 4
    band = (np.abs(yy - 10) < 3) & (xx > 5) & (xx < 60)
    shapes_ = masks_to_shapes(ring, 'worm') + masks_to_shapes(band, 'worm')
    p = write_labelme(tmp_path/'a.json', shapes_, 'a.png', 50, 70, image_data=np.zeros((50, 70), np.uint8))
    lf = LabelFile(str(p))
    assert [s['shape_type'] for s in lf.shapes] == ['mask', 'polygon']
    ys, xs = np.nonzero(ring)
    assert (lf.shapes[0]['mask'] == ring[ys.min():ys.max() + 1, xs.min():xs.max() + 1]).all()
    assert [p.name for p in tmp_path.iterdir()] == ['a.json']   # atomic: no temporary file left


# ---- bad input: one clear message naming file and shape ----

def _poly(pts, **kw): return {**dict(label='worm', points=pts, shape_type='polygon', group_id=None), **kw}

@pytest.mark.parametrize('shapes_,kw,msg', [
    ([_poly([[1, 1], [9, 1], [1, 9]], group_id='a')], {}, "shape #1 (polygon 'worm'): `group_id` must be an integer"),
    ([_poly([[1, 1], ['a', 1], [1, 9]])], {}, "shape #1 (polygon 'worm'): `points` must be a list of [x, y] numbers"),
    ([_poly([[1, 1], [9, 1, 3], [1, 9]])], {}, "`points` must be a list of [x, y] numbers"),
    ([_poly([[1, 1], [float('nan'), 1], [1, 9]])], {}, "`points` must be a list of [x, y] numbers"),  # Python's json writes NaN
    ([_poly([[1, 1], [9, 1], [1, 9]]), _poly([[1, 1], [9, 1], [1, 9]]), _poly([[1, 1], [9, None], [1, 9]])], {},
     "shape #3 (polygon 'worm'): `points` must be a list of [x, y] numbers"),   # found among all of a file's points
    ([_poly([[1, 1], [9, 1], [1, 9]]), _poly([[1, 1], [9, float('inf')], [1, 9]])], {},
     "shape #2 (polygon 'worm'): `points` must be a list of [x, y] numbers"),
    ([_poly([1, 9, 1])], {}, "shape #1 (polygon 'worm'): `points` must be a list of [x, y] numbers"),   # numbers, not pairs
    ([dict(_poly([[1, 1]]), shape_type='circle')], {}, "has 1 point, a circle needs exactly 2"),
    ([_poly([[1, 1], [9, 1], [1, 9]]), dict(_poly([[1, 1], [5, 5]]), label=3)], {}, "shape #2 (polygon 3): `label` must be a non-empty string"),
    ([_poly([[1, 1], [30, 1], [1, 9]])], {}, "point (30, 1) is outside the 20x10 image"),
    ([_poly([[1, 1], [9, 1], [1, 9]])], dict(imageHeight=11), "the image is 20x10 but the file says"),
    ([dict(_poly([[1, 1], [4, 4]]), shape_type='mask', mask='not base64!')], {}, "`mask` is not a base64 PNG"),
])
def test_bad_input_messages(tmp_path, shapes_, kw, msg):
    f = labelme_file(tmp_path, 'bad.json', shapes_, size=(10, 20), **kw)
    with pytest.raises(BrnetError, match='bad.json') as e: read_labelme(f)
    assert msg in str(e.value), str(e.value)
    assert '\n' not in str(e.value)


def test_bad_json_and_not_labelme(tmp_path):
    (tmp_path/'a.json').write_text('[1, 2')
    with pytest.raises(BrnetError, match=r'a.json: not valid JSON'): read_labelme(tmp_path/'a.json')
    (tmp_path/'b.json').write_text('{"images": []}')
    with pytest.raises(BrnetError, match=r'b.json: not a LabelMe file'): read_labelme(tmp_path/'b.json')
    with pytest.raises(BrnetError, match=r'c.json: file not found'): read_labelme(tmp_path/'c.json')


def test_tiny_self_crossing_is_accepted_figure_eight_is_not(tmp_path):
    # a square whose pen path makes a tiny loop at one corner: LabelMe draws it, so do we
    loop = [[2, 2], [30, 2], [30, 30], [2, 30], [2, 1.5], [2.5, 3], [1.5, 3]]
    assert len(read_labelme(labelme_file(tmp_path, 'loop.json', [_poly(loop)], size=(40, 40))).shapes) == 1
    eight = [[2, 2], [30, 30], [30, 2], [2, 30]]
    with pytest.raises(BrnetError, match='crosses itself'): read_labelme(labelme_file(tmp_path, 'eight.json', [_poly(eight)], size=(40, 40)))


def test_legacy_numbered_labels_only_in_legacy_files(tmp_path):
    "person-2 means (person, 2) only in files without group_id; a current file keeps the label as written."
    new = labelme_file(tmp_path, 'new.json', [_poly([[1, 1], [9, 1], [1, 9]], label='tail-2')], size=(10, 20))
    assert read_labelme(new).shapes[0].label == 'tail-2'
    d = json.loads(new.read_text()); [s.pop('group_id') for s in d['shapes']]; d.pop('version')
    (tmp_path/'old.json').write_text(json.dumps(d))
    s = read_labelme(tmp_path/'old.json').shapes[0]
    assert (s.label, s.group_id) == ('tail', 2)
