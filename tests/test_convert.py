"""`convert` (`brnet convert`): real and generated LabelMe folders, pycocotools readability, bad files, strict,
the command line, splits, workers, atomic output, ignore regions."""
import contextlib, io, json, os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from brnet_kit.core import BrnetError, shared_data
from brnet_kit.labelme import Shape, write_labelme, read_labelme
from brnet_kit.raster import instances, shape_to_mask
from brnet_kit.testing import labelme_file
from brnet_kit.decompose import decompose
from brnet_kit.coco import load_coco
import brnet_kit.convert as conv
from brnet_kit.convert import convert


EXAMPLES = shared_data('labelme-examples')
needs_examples = pytest.mark.skipif(EXAMPLES is None, reason='real LabelMe examples absent (../shared/data/labelme-examples)')


def quiet(f, *a, **kw):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): return f(*a, **kw)


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
