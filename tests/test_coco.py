"""COCO output: RLE encoding against pycocotools, conversion of real and generated LabelMe folders,
pycocotools readability, splits, the command line, bad input and atomic output."""
import contextlib, io, json, os, shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from brnet_kit.core import BrnetError, shared_data
from brnet_kit.labelme import Shape, write_labelme, read_labelme, instances, shape_to_mask
from brnet_kit.testing import labelme_file
from brnet_kit.decompose import decompose
from brnet_kit import coco
import brnet_kit.convert as conv
from brnet_kit.coco import (box_rles, mask_to_rle, rle_to_mask, annotate, write_dataset, load_coco, read_image,
                            empty_rle)
from brnet_kit.convert import convert
BBBC010 = shared_data('bbbc010')

EXAMPLES = shared_data('labelme-examples')
needs_examples = pytest.mark.skipif(EXAMPLES is None, reason='real LabelMe examples absent (../shared/data/labelme-examples)')


def quiet(f, *a, **kw):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): return f(*a, **kw)


# ---- RLE ----

@st.composite
def placed(draw):
    H, W = draw(st.integers(1, 50)), draw(st.integers(1, 50))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ms, org, fulls = [], [], []
    for _ in range(draw(st.integers(1, 6))):
        h, w = rng.integers(0, H + 1), rng.integers(0, W + 1)
        y0, x0 = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
        m = rng.random((h, w)) < rng.choice([0.0, 0.1, 0.5, 0.95, 1.0])
        f = np.zeros((H, W), bool); f[y0:y0 + h, x0:x0 + w] = m
        ms.append(m); org.append((int(x0), int(y0))); fulls.append(f)
    return ms, org, (H, W), fulls

@settings(max_examples=500, deadline=None)
@given(placed())
def test_box_rles_match_pycocotools(case):
    ms, org, hw, fulls = case
    rles, areas, bboxes = box_rles(ms, org, hw, stats=True)
    ref = mask_utils.encode(np.asfortranarray(np.stack(fulls, -1).astype(np.uint8)))
    assert [r['counts'] for r in rles] == [r['counts'].decode() for r in ref]
    assert all(r['size'] == list(hw) for r in rles)
    assert areas.tolist() == mask_utils.area(ref).tolist()
    assert bboxes.tolist() == mask_utils.toBbox(ref).astype(int).tolist()

@settings(max_examples=200, deadline=None)
@given(placed(), placed())
def test_box_rles_of_several_images_at_once(a, b):
    "Masks of two images of different sizes, encoded in one call with a size per mask: as each image alone."
    (ma, oa, hwa, _), (mb, ob, hwb, _) = a, b
    rles, areas, bboxes = box_rles(ma + mb, oa + ob, [hwa]*len(ma) + [hwb]*len(mb), stats=True)
    ra, aa, ba = box_rles(ma, oa, hwa, stats=True)
    rb, ab, bb = box_rles(mb, ob, hwb, stats=True)
    assert rles == ra + rb
    assert areas.tolist() == aa.tolist() + ab.tolist() and bboxes.tolist() == ba.tolist() + bb.tolist()

def test_box_rles_large_images():
    "Counts above 2^20 (big images) need 5-6 characters."
    rng = np.random.default_rng(0)
    for H, W in [(3000, 4000), (8192, 8192), (1, 100000)]:
        h, w = min(H, 40), 50
        m = rng.random((h, w)) < 0.5
        x0, y0 = W - w - 1, H - h
        f = np.zeros((H, W), bool); f[y0:y0 + h, x0:x0 + w] = m
        assert box_rles([m], [(x0, y0)], (H, W))[0] == mask_to_rle(f)
        assert rle_to_mask(empty_rle((H, W))).sum() == 0


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
    for (ins, size), anns in zip(images, coco.annotate_images(images)): _check_annotations(anns, ins)


# ---- converting real LabelMe examples ----

@needs_examples
def test_convert_examples_readable_by_pycocotools(tmp_path):
    src = EXAMPLES/'examples/instance_segmentation'
    s = quiet(convert, src/'data_annotated', tmp_path/'out', labels=str(src/'labels.txt'))
    ann = tmp_path/'out/annotations.json'
    c = quiet(COCO, str(ann))
    cats = [x['name'] for x in c.loadCats(c.getCatIds())]
    assert cats == [l for l in (src/'labels.txt').read_text().split('\n') if l and l not in ('__ignore__', '_background_')]
    assert [x['id'] for x in c.loadCats(c.getCatIds())] == list(range(1, len(cats) + 1))
    ims = load_coco(ann)
    assert [i.image_id for i in ims] == [1, 2, 3]
    for im in ims:
        lf = read_labelme(src/'data_annotated'/(Path(im.file_name).stem + '.json'))
        assert (tmp_path/'out'/im.file_name).resolve() == (src/'data_annotated'/lf.image_path).resolve()
        ins = [i for i in instances(lf, raster='polygon') if not i.iscrowd]   # convert's default: pixel centres inside
        worms = ~im.iscrowd
        assert (im.masks[worms] == np.stack([i.mask for i in ins])).all()
        # pycocotools decodes the same masks
        for a, m in zip(c.loadAnns(c.getAnnIds(imgIds=[im.image_id])), im.masks):
            assert (c.annToMask(a).astype(bool) == m).all()
        o, n = decompose(im.masks[worms])
        assert (im.overlap[worms] == o).all() and (im.non_overlap[worms] == n).all()
        # one crowd annotation per category for every __ignore__ region
        n_ignore = sum(s_.label == '__ignore__' for s_ in lf.shapes)
        assert im.iscrowd.sum() == n_ignore*len(cats)
    assert s['crowd_regions'] == 2   # regions, counted once each


@needs_examples
def test_convert_every_example_folder(tmp_path):
    "All of LabelMe's example folders convert (primitives: every shape type; tutorial: embedded image)."
    ex = EXAMPLES/'examples'
    for name in ['primitives', 'tutorial', 'bbox_detection', 'video_annotation', 'classification']:
        s = quiet(convert, ex/name, tmp_path/name, strict=True)
        assert not s['skipped'], s['skipped']
        ims = load_coco(tmp_path/name/'annotations.json')
        for im in ims: assert im.image.shape[:2] == (im.height, im.width)
    assert [p.name for p in (tmp_path/'tutorial/images').iterdir()] == ['apc2016_obj3.jpg']
    lf = read_labelme(ex/'tutorial/apc2016_obj3.json')
    assert (tmp_path/'tutorial/images/apc2016_obj3.jpg').read_bytes() == lf.image_data
    prim = load_coco(tmp_path/'primitives/annotations.json')[0]
    assert len(prim.anns) == 8   # rectangle, circle, rectangle, polygon, line, point, linestrip, mask
    c = quiet(COCO, str(tmp_path/'primitives/annotations.json'))
    assert sorted(x['name'] for x in c.loadCats(c.getCatIds())) == sorted({'rectangle', 'circle', 'polygon', 'line', 'point', 'line_strip', 'octagon'})


@needs_examples
def test_polygons_option(tmp_path):
    src = EXAMPLES/'examples/instance_segmentation'
    quiet(convert, src/'data_annotated', tmp_path/'p', polygons=True)
    d = json.loads((tmp_path/'p/annotations.json').read_text())
    worms = [a for a in d['annotations'] if not a['iscrowd']]
    assert all(isinstance(a['segmentation'], list) for a in worms)
    assert all(isinstance(a['segmentation'], dict) for a in d['annotations'] if a['iscrowd'])
    lf = read_labelme(src/'data_annotated/2011_000003.json')
    grouped = worms[1]   # person drawn as two polygons of group 0
    c = quiet(COCO, str(tmp_path/'p/annotations.json'))
    # pycocotools draws every polygon annotation back to exactly the pixels convert drew (the RLE output)
    assert (c.annToMask(c.loadAnns([grouped['id']])[0]).astype(bool) ==
            (shape_to_mask(lf.shapes[1], lf.size, raster='polygon') | shape_to_mask(lf.shapes[2], lf.size, raster='polygon'))).all()
    quiet(convert, src/'data_annotated', tmp_path/'r')
    ref = quiet(COCO, str(tmp_path/'r/annotations.json'))
    assert sorted(ref.anns) == sorted(c.anns)
    for k in c.anns: assert (c.annToMask(c.anns[k]) == ref.annToMask(ref.anns[k])).all(), k


# ---- generated folders: bad files, strict, CLI, splits, atomicity, workers ----

def worm(x, y, w=30, h=6, label='worm', **kw):
    return dict(label=label, points=[[x, y], [x + w, y], [x + w, y + h], [x, y + h]], shape_type='polygon', group_id=None, **kw)

@pytest.fixture
def folder(tmp_path):
    src = tmp_path/'labelme'; (src/'sub').mkdir(parents=True)
    labelme_file(src, 'a.json', [worm(2, 10), worm(20, 2, w=6, h=30), worm(40, 30, w=10)], size=(40, 60))
    labelme_file(src, 'b.json', [worm(2, 2)], size=(40, 60))
    labelme_file(src/'sub', 'c.json', [worm(5, 5), worm(5, 5, label='__ignore__')], size=(40, 60))
    labelme_file(src, 'e_bad.json', [worm(2, 2), dict(worm(2, 2), shape_type='ellipse')], size=(40, 60))
    return src

def test_bad_file_is_reported_and_skipped(folder, tmp_path, capsys):
    s = convert(folder, tmp_path/'out')
    out = capsys.readouterr().out
    assert s['images'] == 3 and len(s['skipped']) == 1
    assert "e_bad.json: shape #2 (ellipse 'worm'): unknown shape type 'ellipse'" in s['skipped'][0]
    assert 'skipped 1 bad file' in out and 'e_bad.json' in out
    assert (s['instances'], s['overlapping_instances'], s['crowd_regions']) == (5, 2, 1)
    ims = load_coco(tmp_path/'out/annotations.json')
    assert [i.file_name for i in ims] == ['../labelme/a.png', '../labelme/b.png', '../labelme/sub/c.png']

def test_unexpected_failure_stays_with_its_file(folder, tmp_path, monkeypatch):
    "Files are converted in chunks; a file that fails where no file should is reported alone, its chunk's others converted."
    real = conv.instances
    def broken(lf, labels=None, *args):   # a.json's first instance gets a mask no step expects, (1, h, w)
        insts = real(lf, labels, *args)
        if lf.path.name == 'a.json': insts[0].box_mask = insts[0].box_mask[None]
        return insts
    monkeypatch.setattr(conv, 'instances', broken)
    s = quiet(convert, folder, tmp_path/'out')
    assert s['images'] == 2 and len(s['skipped']) == 2
    assert 'a.json: unexpected ValueError while converting' in s['skipped'][0]
    assert 'e_bad.json' in s['skipped'][1]
    assert [i.file_name for i in load_coco(tmp_path/'out/annotations.json')] == ['../labelme/b.png', '../labelme/sub/c.png']

def test_image_paths_relative_to_the_annotations(tmp_path):
    "file_name leads from the annotations file to the image, for imagePath beside, above, absolute, and out_dir anywhere."
    src = tmp_path/'data'; (src/'a/b').mkdir(parents=True); (src/'imgs').mkdir()
    img = np.full((20, 30), 100, np.uint8)
    for name, where in [('beside', src/'a/b/beside.png'), ('above', src/'imgs/above.png'), ('absolute', tmp_path/'abs.png')]:
        Image.fromarray(img).save(where)
        image_path = {'beside': './beside.png', 'above': '../../imgs/above.png', 'absolute': str(where)}[name]
        write_labelme(src/f'a/b/{name}.json', [Shape('worm', [[2, 2], [20, 2], [20, 8], [2, 8]])], image_path, 20, 30)
    for out in (tmp_path/'out', src/'a/out', tmp_path/'x/y/z'):
        quiet(convert, src, out)
        ims = load_coco(out/'annotations.json')
        assert sorted(i.path for i in ims) == sorted([(src/'a/b/beside.png').resolve(), (src/'imgs/above.png').resolve(),
                                                      (tmp_path/'abs.png').resolve()])
        assert all(not os.path.isabs(i.file_name) for i in ims)

def test_convert_shows_progress(folder, tmp_path, monkeypatch):
    "convert drives a progress bar labelled 'convert' over every file (shown on a terminal; forced on here)."
    bar, real = io.StringIO(), conv.progress
    monkeypatch.setattr(conv, 'progress', lambda it, **kw: real(it, file=bar, disable=False, mininterval=0, **kw))
    quiet(convert, folder, tmp_path/'out')
    assert 'convert: 100%' in bar.getvalue() and '4/4 [' in bar.getvalue()

def test_cli_strict_exits_nonzero(folder, tmp_path, capsys):
    from brnet_kit import cli
    cli.COMMANDS.setdefault('convert', 'brnet_kit.convert:convert')
    assert cli.main(['convert', str(folder), str(tmp_path/'ok')]) == 1   # done, a bad file skipped
    assert (tmp_path/'ok/annotations.json').exists()
    capsys.readouterr()
    assert cli.main(['convert', str(folder), str(tmp_path/'strict'), '--strict']) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('brnet convert: error: ') and "e_bad.json: shape #2 (ellipse 'worm')" in err
    assert '\n' not in err and 'Traceback' not in err
    assert not (tmp_path/'strict/annotations.json').exists()

def test_cli_options(folder, tmp_path):
    from brnet_kit import cli
    cli.COMMANDS.setdefault('convert', 'brnet_kit.convert:convert')
    rc = quiet(cli.main, ['convert', str(folder), str(tmp_path/'o'), '--split', '0.5,0.5', '--polygons', '--copy-images',
                          '--workers', '2', '--preview', str(tmp_path/'o/preview.png'), '--seed', '3'])
    assert rc == 1   # done, its bad file skipped
    assert sorted(p.name for p in (tmp_path/'o').iterdir()) == ['annotations_train.json', 'annotations_val.json', 'brnet-convert.json', 'images', 'preview.png']
    assert sorted(str(p.relative_to(tmp_path/'o/images')) for p in (tmp_path/'o/images').rglob('*.png')) == ['a.png', 'b.png', 'sub/c.png']
    with Image.open(tmp_path/'o/preview.png') as im: assert im.size[0] >= 600

def test_splits(folder, tmp_path):
    quiet(convert, folder, tmp_path/'f', split='train:2,val:1')
    tr, va = load_coco(tmp_path/'f/annotations_train.json'), load_coco(tmp_path/'f/annotations_val.json')
    assert (len(tr), len(va)) == (2, 1)
    assert sorted(i.image_id for i in tr + va) == [1, 2, 3]            # ids unique across splits
    (tmp_path/'lists.json').write_text(json.dumps({'train': ['a.json', 'sub/c'], 'test': ['b']}))
    quiet(convert, folder, tmp_path/'e', split=str(tmp_path/'lists.json'))
    assert [i.file_name for i in load_coco(tmp_path/'e/annotations_train.json')] == ['../labelme/a.png', '../labelme/sub/c.png']
    assert [i.file_name for i in load_coco(tmp_path/'e/annotations_test.json')] == ['../labelme/b.png']
    with pytest.raises(BrnetError, match="lists 'zz'"): quiet(convert, folder, tmp_path/'x', split={'train': ['zz']})
    # seeded: the same seed gives the same split, another seed may not
    quiet(convert, folder, tmp_path/'g', split='train:2,val:1')
    assert (tmp_path/'g/annotations_train.json').read_bytes() == (tmp_path/'f/annotations_train.json').read_bytes()

def test_workers_give_identical_output(folder, tmp_path):
    quiet(convert, folder, tmp_path/'w1', workers=1)
    quiet(convert, folder, tmp_path/'w2', workers=2)
    assert (tmp_path/'w1/annotations.json').read_bytes() == (tmp_path/'w2/annotations.json').read_bytes()

def test_atomic_output(folder, tmp_path, monkeypatch):
    "A crash halfway leaves the previous annotations file intact and no temporary file."
    out = tmp_path/'out'; out.mkdir()
    (out/'annotations.json').write_text('OLD')
    calls = []
    real = conv.read_labelme
    def crashing(path):   # the second file read is interrupted (Ctrl-C)
        calls.append(path)
        if len(calls) == 2: raise KeyboardInterrupt
        return real(path)
    monkeypatch.setattr(conv, 'read_labelme', crashing)
    with pytest.raises(KeyboardInterrupt): quiet(convert, folder, out)
    assert len(calls) == 2
    import gc
    assert gc.isenabled()   # convert pauses the cycle collector per chunk, and turns it back on after a crash too
    assert (out/'annotations.json').read_text() == 'OLD'
    assert [p.name for p in out.iterdir()] == ['annotations.json']
    # and a crash while writing the file itself
    monkeypatch.setattr(conv, 'read_labelme', real)
    real_fdopen = os.fdopen
    class DiskFull:   # the temporary file takes a few bytes, then the disk is full
        def __init__(self, f): self.f = f
        def __enter__(self): return self
        def __exit__(self, *exc): self.f.close()
        def write(self, data): self.f.write(data[:10]); raise OSError('disk full')
    monkeypatch.setattr(os, 'fdopen', lambda fd, mode, **kw: DiskFull(real_fdopen(fd, mode, **kw)))
    with pytest.raises(OSError): quiet(convert, folder, out)
    assert (out/'annotations.json').read_text() == 'OLD'
    assert [p.name for p in out.iterdir()] == ['annotations.json']

def test_bad_folder_and_labels(tmp_path, folder):
    with pytest.raises(BrnetError, match='not a folder'): convert(tmp_path/'nope', tmp_path/'o')
    (tmp_path/'empty').mkdir()
    with pytest.raises(BrnetError, match='no LabelMe .json files'): convert(tmp_path/'empty', tmp_path/'o')
    (tmp_path/'labels.txt').write_text('__ignore__\nfly\n')
    with pytest.raises(BrnetError, match=r"none of the 4 files could be converted; first error: .*a.json: shape #1 \(polygon 'worm'\): "
                                         r"label 'worm' is not one of the labels \(fly\)"):
        quiet(convert, folder, tmp_path/'o', labels=str(tmp_path/'labels.txt'))
    with pytest.raises(BrnetError, match='labels file not found'): convert(folder, tmp_path/'o', labels=str(tmp_path/'nolabels.txt'))

def test_out_dir_inside_input_is_not_reread(folder):
    quiet(convert, folder, folder/'coco')
    s = quiet(convert, folder, folder/'coco')
    assert s['images'] == 3


# ---- write_dataset / load_coco ----

def test_write_dataset_and_plain_coco(tmp_path):
    H, W = 30, 40
    m = np.zeros((3, H, W), bool); m[0, 5:10, 2:30] = True; m[1, 2:25, 10:15] = True; m[2, 20:28, 30:38] = True
    Image.fromarray(np.zeros((H, W), np.uint16)).save(tmp_path/'x.png')
    items = [dict(file_name='x.png', height=H, width=W, masks=m, labels=['worm', 'worm', 'egg'], iscrowd=[False, False, True])]
    p = write_dataset(tmp_path, items, ['worm', 'egg'])['all']
    im, = load_coco(p)
    assert im.labels.tolist() == [1, 1, 2] and im.iscrowd.tolist() == [False, False, True]
    o, n = decompose(m[:2])
    assert (im.overlap[:2] == o).all() and (im.non_overlap[:2] == n).all()
    assert not im.overlap[2].any()                      # crowd regions take no part in the overlaps
    assert im.boxes.dtype == np.float32 and im.boxes[0].tolist() == [2, 5, 30, 10]
    assert im.image.dtype == np.uint16
    # a plain COCO file (no overlap fields) gets its decomposition computed
    d = json.loads(p.read_text())
    for a in d['annotations']: a.pop('overlap'); a.pop('non_overlap')
    (tmp_path/'plain.json').write_text(json.dumps(d))
    im2, = load_coco(tmp_path/'plain.json')
    o2, _ = decompose(im2.masks)
    assert (im2.overlap == o2).all()
    (tmp_path/'n.json').write_text('{}')
    with pytest.raises(BrnetError, match='not a COCO file'): load_coco(tmp_path/'n.json')


def test_read_image_depths(tmp_path):
    import tifffile
    a16 = (np.arange(12*10).reshape(12, 10)*500).astype(np.uint16)
    tifffile.imwrite(tmp_path/'a.tif', a16)
    Image.fromarray(a16).save(tmp_path/'a.png')
    rgb = np.random.default_rng(0).integers(0, 255, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path/'c.png')
    assert (read_image(tmp_path/'a.tif') == a16).all() and read_image(tmp_path/'a.tif').dtype == np.uint16
    assert (read_image(tmp_path/'a.png') == a16).all() and read_image(tmp_path/'a.png').dtype == np.uint16
    assert (read_image(tmp_path/'c.png') == rgb).all()
    with pytest.raises(BrnetError, match='image file not found'): read_image(tmp_path/'zz.png')


@pytest.mark.skipif(shared_data('bbbc010') is None, reason='BBBC010 absent (../shared/data/bbbc010)')
def test_bbbc010_16bit_tiff_header():
    "Image sizes come from headers, also for the 16-bit (one PackBits-compressed) BBBC010 TIFFs."
    from brnet_kit.labelme import image_size
    for f in sorted((shared_data('bbbc010')/'BBBC010_v1_images').glob('*.tif'))[:6]:
        assert image_size(f) == read_image(f).shape[:2] == (520, 696)


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
    from brnet_kit.labelme import masks_to_shapes
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


# ---- ignore regions are not worms ----

def test_worm_touching_an_ignore_region_is_not_crossing(tmp_path):
    src = tmp_path/'lm'; src.mkdir()
    labelme_file(src, 'a.json', [worm(2, 10), worm(20, 2, w=6, h=30),              # two worms crossing
                               worm(35, 30, w=20), worm(50, 20, w=9, h=19, label='__ignore__')], size=(40, 60))  # a worm into an ignore region
    s = quiet(convert, src, tmp_path/'out', raster='labelme')   # LabelMe's drawing: the worm's outline reaches into the region
    assert (s['instances'], s['overlapping_instances'], s['crowd_regions']) == (3, 2, 1)
    im, = load_coco(tmp_path/'out/annotations.json')
    assert im.iscrowd.tolist() == [False, False, False, True]
    assert (im.masks[2] & im.masks[3]).sum() > 0                                # they do touch
    assert im.overlap.sum((1, 2)).tolist() == [49, 49, 0, 0]
    assert (im.non_overlap[2] == im.masks[2]).all()
    # a plain COCO file (no overlap masks) read by load_coco: its decomposition leaves the crowd region out too
    d = json.loads((tmp_path/'out/annotations.json').read_text())
    for a in d['annotations']: del a['overlap'], a['non_overlap']
    (tmp_path/'plain.json').write_text(json.dumps(d))
    im2, = load_coco(tmp_path/'plain.json')
    assert im2.overlap.sum((1, 2)).tolist() == [49, 49, 0, 0]
    assert (im2.non_overlap[2] == im2.masks[2]).all()


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
    from brnet_kit.labelme import Instance
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
    from brnet_kit.labelme import masks_to_shapes
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


def test_split_leaving_a_part_empty_is_refused(folder, tmp_path):
    "--split 1,0 (or a share too small for any file) refuses before converting, and writes no file."
    for sp in ('1,0', 'train:0.9,val:0.1,test:0'):
        with pytest.raises(BrnetError, match="would get none of the 4 items"): quiet(convert, folder, tmp_path/'o', split=sp)
    assert not (tmp_path/'o').exists() or not list((tmp_path/'o').glob('*.json'))
    from brnet_kit import cli
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(['convert', str(folder), str(tmp_path/'c'), '--split', '1,0']) == 2
    assert "'val' would get none" in err.getvalue()
