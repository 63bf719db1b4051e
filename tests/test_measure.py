"""brnet_kit.measure beyond the notebook's lessons: many random worm shapes of known length,
invariance to rotation and flipping, input handling, and every BBBC010 worm of some wells."""
import math, time

import numpy as np
import pytest
from scipy.spatial import cKDTree

from brnet_kit.core import BrnetError, shared_data
from brnet_kit.measure import measure_worm, measure_worms, centreline


def _tube(shape, curve, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    d, _ = cKDTree(curve).query(np.stack([yy.ravel(), xx.ravel()], 1), distance_upper_bound=r + 1)
    return (d <= r).reshape(shape)


def _random_worm(rng):
    "A crawling-worm centreline (sine with random phase, rotated), bends no tighter than 2.5 half-widths."
    r = rng.uniform(3, 7)
    lam = rng.uniform(50, 110)
    rho_min = 2.5*r
    A = rng.uniform(0, min(25, lam**2/(4*np.pi**2*rho_min)))   # curvature max A(2π/λ)² <= 1/rho_min
    L = rng.uniform(80, 170)
    x = np.linspace(0, L, 6000)
    c = np.stack([A*np.sin(2*np.pi*x/lam + rng.uniform(0, 2*np.pi)), x - L/2], 1)
    a = rng.uniform(0, np.pi)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    c = c @ rot.T
    size = int(np.ceil(np.abs(c).max() + r + 6))*2
    c = c + size/2 + rng.uniform(0, 1, 2)
    true = float(np.hypot(*np.diff(c, axis=0).T).sum()) + 2*r
    return _tube((size, size), c, r), true, 2*r


def test_random_worms_of_known_length():
    rng = np.random.default_rng(1)
    errs, werr = [], []
    for _ in range(30):
        m, true, width = _random_worm(rng)
        row = measure_worm(m)
        errs.append(row['length_px']/true - 1)
        werr.append(row['width_px'] - width)
    errs, werr = np.array(errs), np.array(werr)
    print(f'length error: mean {100*errs.mean():+.2f} %, worst {100*np.abs(errs).max():.2f} %; '
          f'width error: worst {np.abs(werr).max():.2f} px')
    assert np.abs(errs).max() < 0.03
    assert abs(errs.mean()) < 0.015
    assert np.abs(werr).max() < 0.75


def test_rotation_and_flip_invariance():
    rng = np.random.default_rng(7)
    for _ in range(5):
        m, _, _ = _random_worm(rng)
        ref = measure_worm(m)
        for v in (np.rot90(m), np.rot90(m, 2), m.T, m[::-1]):
            row = measure_worm(np.ascontiguousarray(v))
            assert abs(row['length_px']/ref['length_px'] - 1) < 0.01
            assert abs(row['width_px'] - ref['width_px']) < 0.5
            assert row['area_px'] == ref['area_px']


def test_inputs():
    m = np.zeros((3, 30, 40), bool); m[0, 5:10, 5:35] = True; m[2, 20:25, 10:30] = True
    rows = measure_worms(m, pixel_size_um=0.5)
    assert [r['worm'] for r in rows] == [0, 1, 2]
    assert math.isnan(rows[1]['length_px']) and rows[1]['area_px'] == 0
    assert abs(rows[0]['length_px'] - 30) < 0.1 and abs(rows[2]['length_um'] - 10) < 0.1
    assert len(measure_worms(m[0])) == 1                       # one (H,W) mask
    assert measure_worms(np.zeros((0, 30, 40), bool)) == []   # no worms
    with pytest.raises(BrnetError, match='stack'): measure_worms(np.zeros(5, bool))
    # a mask in two pieces is measured on its largest piece; area counts every pixel
    two = np.zeros((30, 60), bool); two[5:10, 5:45] = True; two[20:23, 50:53] = True
    row = measure_worm(two)
    assert abs(row['length_px'] - 40) < 0.1 and row['area_px'] == 5*40 + 9
    # centreline runs in image coordinates
    c = centreline(two)
    assert np.all((c[:, 0] >= 4.5) & (c[:, 0] <= 9.5)) and abs(np.ptp(c[:, 1]) - 40) < 0.1


def test_bbbc010_wells():
    bbbc = shared_data('bbbc010')
    if bbbc is None: pytest.skip('BBBC010 absent from ../shared/data')
    from PIL import Image
    files = sorted((bbbc/'BBBC010_v1_foreground_eachworm').glob('[AB]0[1-5]_*_ground_truth.png'))
    masks = [np.asarray(Image.open(f)) > 0 for f in files]
    t0 = time.perf_counter()
    rows = measure_worms(np.stack(masks))
    per_worm = (time.perf_counter() - t0)/len(rows)
    lengths = np.array([r['length_px'] for r in rows])
    fill = np.array([r['area_px']/(r['length_px']*r['width_px']) for r in rows])
    print(f'{len(rows)} worms, {1000*per_worm:.1f} ms each; length median {np.median(lengths):.0f} px '
          f'[{lengths.min():.0f}, {lengths.max():.0f}]; area/(length*width) [{fill.min():.2f}, {fill.max():.2f}]')
    wells = np.array([f.name.split('_')[0] for f in files])
    print('length per well (px), median [min, max]: ' + '; '.join(
        f'{w} {np.median(lengths[wells == w]):.0f} [{lengths[wells == w].min():.0f}, {lengths[wells == w].max():.0f}]'
        for w in sorted(set(wells))) + '; the synthetic generator draws 100-140 px by default (data/sample: 80-120)')
    assert np.isfinite(lengths).all()
    assert np.all((fill > 0.55) & (fill < 1.15))
    assert per_worm < 0.1


def _touches_itself(w):
    "A synthetic worm whose body comes within reach of another part of itself (coils, tight omegas)."
    s = np.r_[0, np.cumsum(np.hypot(*np.diff(w.xy, axis=0).T))]
    R = float(w.radius.max())
    pairs = cKDTree(w.xy).query_pairs(2*R + 1.5, output_type='ndarray')
    return bool(len(pairs) and (np.abs(s[pairs[:, 0]] - s[pairs[:, 1]]) > np.pi*R + 2).any())


def test_lengths_through_crossings():
    "Synthetic crowds (true lengths known): crossing and isolated worms alike within 5 %; every worm gets a skeleton path."
    from brnet_kit.synth import synth_image, crossing
    from brnet_kit.measure import _prepare, _centreline
    rows = []
    for i in range(40):
        s = synth_image(seed=15, index=i, size=(384, 384), worms=(6, 9), overlap=0.6, clean=True)
        for w, m, c in zip(s.worms, s.masks, crossing(s.masks)):
            r = measure_worm(m)
            no_path = len(_centreline(_prepare(m)[0])[1]) == 1   # measured along its longest axis instead
            rows.append((bool(c), _touches_itself(w), r['length_px']/(w.length + w.radius[0] + w.radius[-1]) - 1, no_path))
    errs = np.array([r[2] for r in rows])
    assert np.isfinite(errs).all()
    lines = []
    for name, sel in (('crossing', lambda r: r[0] and not r[1]), ('isolated', lambda r: not r[0] and not r[1]),
                      ('touching itself', lambda r: r[1])):
        e = np.array([r[2] for r in rows if sel(r)])
        lines.append(f'{name}: {len(e)} worms, mean {100*e.mean():+.2f} %, worst {100*np.abs(e).max():.2f} %, '
                     f'{(np.abs(e) > 0.05).sum()} beyond 5 %')
        if name != 'touching itself':
            assert len(e) > 80 and np.abs(e).max() < 0.05 and abs(e.mean()) < 0.015, lines[-1]
    print('; '.join(lines) + f'; no skeleton path: {sum(r[3] for r in rows)} of {len(rows)}')
    assert sum(r[3] for r in rows) == 0


def _converted(tmp_path, folders=('day1',)):
    "LabelMe files (one worm each) in sub-folders of tmp/images, converted into tmp/runs/coco: far from the images."
    import contextlib, io
    from brnet_kit.convert import convert
    from brnet_kit.testing import labelme_file
    worm = [dict(label='worm', points=[[10, 10], [50, 10], [50, 18], [10, 18]], shape_type='polygon')]
    for f in folders:
        (tmp_path/'images'/f).mkdir(parents=True)
        labelme_file(tmp_path/'images'/f, 'a.json', worm)
    with contextlib.redirect_stdout(io.StringIO()): convert(str(tmp_path/'images'), str(tmp_path/'runs'/'coco'))
    return tmp_path/'runs'/'coco'/'annotations.json'


def test_csv_names_images_relative_to_their_folder(tmp_path, monkeypatch):
    "The CSV's file_name is the image's path in the images folder, not the COCO file's '../../images/...'."
    import csv, json
    from brnet_kit import cli
    from brnet_kit.measure import measure
    ann = _converted(tmp_path, ('day1', 'day2'))
    assert all(im['file_name'].startswith('../../images/') for im in json.loads(ann.read_text())['images'])
    rows = measure(str(ann), out=str(tmp_path/'w.csv'), quiet=True)
    assert sorted(r['file_name'] for r in rows) == ['day1/a.png', 'day2/a.png']
    with open(tmp_path/'w.csv', newline='') as f: back = list(csv.DictReader(f))
    assert sorted(r['file_name'] for r in back) == ['day1/a.png', 'day2/a.png']
    # one sub-folder only: by default named from it; --images names the folder as the user gave it
    one = _converted(tmp_path/'one')
    assert [r['file_name'] for r in measure(str(one), quiet=True)] == ['a.png']
    monkeypatch.chdir(tmp_path/'one')
    assert cli.main(['measure', str(one), '--images', 'images', '--out', 'w.csv']) == 0
    with open(tmp_path/'one'/'w.csv', newline='') as f: assert [r['file_name'] for r in csv.DictReader(f)] == ['day1/a.png']


def test_table_and_csv_say_false_for_worms_inside_the_image(tmp_path):
    import csv
    from brnet_kit.measure import format_measurements, write_measurements_csv
    bars = np.zeros((2, 40, 120), bool); bars[0, 15:25, 10:90] = True; bars[1, 0:10, 20:100] = True   # the second touches the top
    rows = measure_worms(bars)
    table = format_measurements(rows).splitlines()
    assert table[0].split()[-1] == 'touches_edge'
    assert [line.split()[-1] for line in table[1:]] == ['False', 'True']       # not a blank for False
    with open(write_measurements_csv(tmp_path/'w.csv', rows), newline='') as f:
        assert [r['touches_edge'] for r in csv.DictReader(f)] == ['False', 'True']   # the same words as the table


def test_predicted_worms_are_named_by_their_image(tmp_path):
    "measure on `brnet predict`'s results names each worm's image as the images folder does, with gt= or without."
    import contextlib, io, shutil
    from brnet_kit.core import sample_dir
    from brnet_kit.convert import convert
    from brnet_kit.measure import measure
    from brnet_kit.model import model_path
    from brnet_kit.predict import predict
    (tmp_path/'images').mkdir()
    names = sorted(p.name for p in (sample_dir()/'val').glob('*.png'))[:2]
    for n in names:
        for f in (n, n.replace('.png', '.json')): shutil.copy(sample_dir()/'val'/f, tmp_path/'images'/f)
    with contextlib.redirect_stdout(io.StringIO()): ann = convert(str(tmp_path/'images'), str(tmp_path/'runs'/'data'/'coco'))['files']['all']   # deeper than the predictions
    for gt in (None, ann):
        p = predict(tmp_path/'images', tmp_path/'runs'/('pred_gt' if gt else 'pred'), model=model_path('worms'), gt=gt,
                    labelme=False, overlays=False, quiet=True)
        rows = measure(str(p['results']), quiet=True, images=str(tmp_path/'images'))
        assert rows and {r['file_name'] for r in rows} == set(names), (gt, {r['file_name'] for r in rows})
