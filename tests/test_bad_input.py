"""Every subcommand against a corpus of bad input (issue 14). For each case:

- the exit status is not 0 where nothing could be done (2), and 1 where the rest was done;
- stderr is one line that names the file (or option) and the problem, and holds no traceback;
- it is over within 10 s (a hang is killed and fails the test);
- no file that was there before has changed.

Each case runs `brnet_kit.cli.main` in a forked child: the imports are shared (a case costs
milliseconds, not the seconds of a new interpreter), a hang in C code can be killed, and the
child's stdout and stderr are files, so nothing written at C level escapes the check.
"""
import hashlib, json, multiprocessing as mp, os, sys, tempfile, time, zlib
from pathlib import Path

import numpy as np
import pytest

from brnet_kit.testing import TINY, labelme_file

LIMIT_S = 10
ctx = mp.get_context('fork') if sys.platform.startswith('linux') else None
pytestmark = pytest.mark.skipif(ctx is None, reason='the cases run in forked children (Linux)')


def _child(fn, args, out, err):
    fo, fe = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fo, 1); os.dup2(fe, 2)
    sys.stdout, sys.stderr = open(1, 'w', closefd=False), open(2, 'w', closefd=False)
    sys.stdin = open(os.devnull)
    if 'torch' in sys.modules: sys.modules['torch'].set_num_threads(1)   # OpenMP's pool does not survive a fork
    try: rc = fn(*args)
    except BaseException:
        import traceback; traceback.print_exc(); rc = 99
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(rc if isinstance(rc, int) else 0)


def _in_child(fn, *args, timeout=LIMIT_S):
    "fn(*args) in a forked child: (exit status, stdout, stderr, seconds); None as status if it had to be killed."
    with tempfile.TemporaryDirectory() as d:
        out, err = os.path.join(d, 'out'), os.path.join(d, 'err')
        t0 = time.perf_counter()
        p = ctx.Process(target=_child, args=(fn, args, out, err))
        p.start(); p.join(timeout)
        if p.is_alive(): p.kill(); p.join()
        took = time.perf_counter() - t0
        rc = None if took >= timeout else p.exitcode
        read = lambda f: Path(f).read_text(errors='replace') if os.path.exists(f) else ''
        return rc, read(out), read(err), took


def _brnet(argv):
    from brnet_kit import cli
    return cli.main(argv)


def _png_claiming(w, h):
    "A tiny PNG whose header claims w x h pixels."
    chunk = lambda kind, data: len(data).to_bytes(4, 'big') + kind + data + zlib.crc32(kind + data).to_bytes(4, 'big')
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', w.to_bytes(4, 'big') + h.to_bytes(4, 'big') + bytes([8, 0, 0, 0, 0]))
            + chunk(b'IDAT', zlib.compress(b'\0'*8)) + chunk(b'IEND', b''))


WORM = dict(label='worm', points=[[5, 5], [40, 8], [42, 14], [6, 12]], shape_type='polygon')


def _make_tiny_checkpoint(path):
    from brnet_kit.model import build_model, save_model
    save_model(path, build_model('demo', **TINY))
    return 0


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    "The corpus: good and hostile LabelMe folders, COCO and results files, checkpoints, images."
    import importlib   # imported once here, not in every child (torch alone takes seconds); nothing here runs torch
    for m in ('coco', 'evaluate', 'measure', 'train', 'predict', 'explain', 'explain_figures', 'synth', 'bbbc010', 'cli'): importlib.import_module(f'brnet_kit.{m}')
    w = tmp_path_factory.mktemp('world')
    def folder(name, *files):
        d = w/name; d.mkdir()
        for f in files: labelme_file(d, f, [WORM])
        return d
    good = folder('good', 'a.json', 'b.json')
    mixed = folder('mixed', 'a.json'); (mixed/'broken.json').write_text('{"shapes": [')
    fifo = folder('fifo'); os.mkfifo(fifo/'pipe.json')
    rand = folder('rand'); (rand/'rand.json').symlink_to('/dev/urandom')
    bomb = folder('bomb'); (bomb/'bomb.png').write_bytes(_png_claiming(100000, 100000))
    labelme_file(bomb, 'bomb.json', [WORM], image=False, imagePath='bomb.png', imageHeight=100000, imageWidth=100000)
    latin = folder('latin', 'x.json'); os.rename(latin/'x.json', os.fsencode(latin) + b'/caf\xe9.json')
    junk_img = folder('junkimg'); (junk_img/'j.png').write_bytes(b'plain words, not an image')
    labelme_file(junk_img, 'j.json', [WORM], image=False, imagePath='j.png')

    from brnet_kit.convert import convert
    import contextlib, io
    with contextlib.redirect_stdout(io.StringIO()): convert(good, w/'coco')
    gt = w/'coco'/'annotations.json'
    g = json.loads(gt.read_text())
    res = [dict(image_id=a['image_id'], category_id=a['category_id'], segmentation=a['segmentation'], score=0.9) for a in g['annotations']]
    (w/'res.json').write_text(json.dumps(res))
    cut = json.loads(json.dumps(res)); cut[1]['segmentation']['counts'] = cut[1]['segmentation']['counts'][:-2]
    (w/'res_cut.json').write_text(json.dumps(cut))
    flip = json.loads(json.dumps(res)); c = flip[0]['segmentation']['counts']; flip[0]['segmentation']['counts'] = c[:3] + chr(ord(c[3]) ^ 4) + c[4:]
    (w/'res_flip.json').write_text(json.dumps(flip))
    words = json.loads(json.dumps(res)); words[0]['score'] = 'high'
    (w/'res_words.json').write_text(json.dumps(words))
    box = json.loads(json.dumps(res)); box[0]['bbox'] = [1, 2, 'wide', 4]
    (w/'res_box.json').write_text(json.dumps(box))
    gcut = json.loads(gt.read_text()); gcut['annotations'][0]['segmentation']['counts'] += '7'
    (w/'gt_cut.json').write_text(json.dumps(gcut))
    ints = json.loads(gt.read_text()); ints['annotations'] = [1, 2]
    (w/'coco'/'gt_ints.json').write_text(json.dumps(ints))
    text_size = json.loads(gt.read_text()); text_size['images'][0]['height'] = '40'
    (w/'coco'/'gt_text_size.json').write_text(json.dumps(text_size))
    empty = json.loads(gt.read_text()); empty['annotations'] = []
    (w/'coco'/'gt_empty.json').write_text(json.dumps(empty))
    os.mkfifo(w/'res_pipe.json')
    (w/'notjson.json').write_text('this is not JSON')
    (w/'junk.pt').write_bytes(np.random.default_rng(0).bytes(2000))
    theirs = w/'theirs'; theirs.mkdir()
    for n in ('best.pt', 'val.csv', 'log.csv', 'loss.png'): (theirs/n).write_text(f'their {n}')
    badrun = w/'badrun'; badrun.mkdir(); (badrun/'last.pt').write_bytes(b'PK\x03\x04 cut short')
    (badrun/'brnet-train.json').write_text('{}')
    (w/'a_file').write_text('not a folder')
    unreadable = w/'unreadable'; unreadable.mkdir(); (unreadable/'x.png').write_bytes(b'not a png')
    rc, _, err, _ = _in_child(_make_tiny_checkpoint, w/'tiny.pt', timeout=120)
    assert rc == 0, err
    return w


def _snapshot(root):
    snap = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p) and not os.path.islink(p):
                snap[p] = hashlib.sha1(Path(p).read_bytes()).hexdigest(), os.stat(p).st_mode
    return snap


# (case id, argv with {w} for the corpus folder, exit status, substrings stderr must hold)
CASES = [
    ('convert-no-folder', ['convert', '{w}/nowhere', '{w}/o1'], 2, ['nowhere', 'not a folder']),
    ('convert-fifo', ['convert', '{w}/fifo', '{w}/o2'], 2, ['pipe.json', 'is a FIFO']),
    ('convert-urandom', ['convert', '{w}/rand', '{w}/o3'], 2, ['rand.json', 'character device']),
    ('convert-pixel-bomb', ['convert', '{w}/bomb', '{w}/o4'], 2, ['bomb.json', 'more than the limit']),
    ('convert-latin1-name', ['convert', '{w}/latin', '{w}/o5', '--copy-images'], 2, ['caf', 'not valid UTF-8']),
    ('convert-junk-image', ['convert', '{w}/junkimg', '{w}/o6'], 2, ['j.png', 'cannot identify image file']),
    ('convert-some-bad', ['convert', '{w}/mixed', '{w}/o7'], 1, ['skipped 1 input']),
    ('convert-out-is-file', ['convert', '{w}/good', '{w}/a_file'], 2, ['a_file', 'is a file']),
    ('convert-fifo-split', ['convert', '{w}/good', '{w}/o9', '--split', '{w}/fifo/pipe.json'], 2, ['pipe.json', 'FIFO']),
    ('convert-bad-split', ['convert', '{w}/good', '{w}/o8', '--split', 'lots'], 2, ["--split 'lots'"]),
    ('evaluate-no-gt', ['evaluate', '{w}/none.json', '{w}/res.json'], 2, ['none.json', 'not found']),
    ('evaluate-cut-rle', ['evaluate', '{w}/coco/annotations.json', '{w}/res_cut.json'], 2, ['res_cut.json: detection 1', 'damaged']),
    ('evaluate-flipped-rle', ['evaluate', '{w}/coco/annotations.json', '{w}/res_flip.json'], 2, ['res_flip.json: detection 0', 'damaged']),
    ('evaluate-cut-gt', ['evaluate', '{w}/gt_cut.json', '{w}/res.json'], 2, ['gt_cut.json: annotation', 'damaged']),
    ('evaluate-word-score', ['evaluate', '{w}/coco/annotations.json', '{w}/res_words.json'], 2, ['detection 0', "numeric 'score'"]),
    ('evaluate-word-box', ['evaluate', '{w}/coco/annotations.json', '{w}/res_box.json'], 2, ['detection 0', 'bbox']),
    ('evaluate-gt-not-objects', ['evaluate', '{w}/coco/gt_ints.json', '{w}/res.json'], 2, ['gt_ints.json: annotation #1', 'not a JSON object']),
    ('evaluate-gt-text-size', ['evaluate', '{w}/coco/gt_text_size.json', '{w}/res.json'], 2, ['gt_text_size.json: image #1', 'integer height']),
    ('evaluate-out-under-file', ['evaluate', '{w}/coco/annotations.json', '{w}/res.json', '--out', '{w}/a_file/m.json'], 2, ['a_file/m.json', 'cannot write']),
    ('evaluate-fifo', ['evaluate', '{w}/coco/annotations.json', '{w}/res_pipe.json'], 2, ['res_pipe.json', 'FIFO']),
    ('evaluate-not-json', ['evaluate', '{w}/coco/annotations.json', '{w}/notjson.json'], 2, ['notjson.json', 'JSON']),
    ('measure-cut-rle', ['measure', '{w}/res_cut.json'], 2, ['res_cut.json: detection 1', 'damaged']),
    ('measure-word-score', ['measure', '{w}/res_words.json'], 2, ['res_words.json: detection 0', "numeric 'score'"]),
    ('measure-plot-under-file', ['measure', '{w}/res.json', '--plot', '{w}/a_file/m.png'], 2, ['a_file', 'is a file']),
    ('train-steps-0', ['train', '{w}/coco/annotations.json', '{w}/t1', '--steps', '0'], 2, ['steps must be at least 1']),
    ('train-steps-negative', ['train', '{w}/coco/annotations.json', '{w}/t2', '--steps', '-5'], 2, ['steps must be at least 1']),
    ('train-lr-0', ['train', '{w}/coco/annotations.json', '{w}/t3', '--options', 'lr=0'], 2, ['lr must be a positive number']),
    ('train-batch-0', ['train', '{w}/coco/annotations.json', '{w}/t4', '--options', 'batch_size=0'], 2, ['batch_size must be at least 1']),
    ('train-foreign-folder', ['train', '{w}/coco/annotations.json', '{w}/theirs', '--steps', '1'], 2, ['theirs', 'no brnet train run wrote']),
    ('train-out-is-file', ['train', '{w}/coco/annotations.json', '{w}/a_file', '--steps', '1'], 2, ['a_file', 'is a file']),
    ('train-junk-init', ['train', '{w}/coco/annotations.json', '{w}/t5', '--steps', '1', '--init', '{w}/junk.pt', '--device', 'cpu'], 2,
     ['junk.pt', 'not a PyTorch checkpoint']),
    ('train-cut-resume', ['train', '{w}/coco/annotations.json', '{w}/badrun', '--resume'], 2, ['last.pt', 'truncated or damaged']),
    ('train-unknown-device', ['train', '{w}/coco/annotations.json', '{w}/t6', '--device', 'gpu0'], 2, ["device 'gpu0'"]),
    ('train-no-annotations', ['train', '{w}/coco/gt_empty.json', '{w}/t7', '--steps', '1', '--device', 'cpu'], 2, ['gt_empty.json']),
    ('train-gt-not-objects', ['train', '{w}/coco/gt_ints.json', '{w}/t8', '--steps', '1'], 2, ['gt_ints.json: annotation #1']),
    ('train-gt-text-size', ['train', '{w}/coco/gt_text_size.json', '{w}/t9', '--steps', '1'], 2, ['gt_text_size.json: image #1', 'integer height']),
    ('predict-junk-checkpoint', ['predict', '{w}/junk.pt', '{w}/good', '{w}/p1'], 2, ['junk.pt', 'not a PyTorch checkpoint']),
    ('predict-no-images', ['predict', '{w}/tiny.pt', '{w}/fifo', '{w}/p2'], 2, ['fifo', 'no images']),
    ('predict-unknown-device', ['predict', '{w}/tiny.pt', '{w}/good', '{w}/p3', '--device', 'tpu'], 2, ["device 'tpu'"]),
    ('predict-batch-0', ['predict', '{w}/tiny.pt', '{w}/good', '{w}/p4', '--batch-size', '0'], 2, ['batch_size must be at least 1']),
    ('predict-nothing-readable', ['predict', '{w}/tiny.pt', '{w}/unreadable', '{w}/p5', '--device', 'cpu'], 2, ['x.png', 'could be read']),
    ('predict-out-is-file', ['predict', '{w}/tiny.pt', '{w}/good', '{w}/a_file', '--device', 'cpu'], 2, ['a_file', 'is a file']),
    ('explain-junk-checkpoint', ['explain', '{w}/junk.pt', '{w}/good/a.png', '--out', '{w}/e1.png'], 2, ['junk.pt', 'not a PyTorch checkpoint']),
    ('explain-no-image', ['explain', '{w}/tiny.pt', '{w}/none.png', '--out', '{w}/e2.png', '--method', 'uam'], 2, ['none.png']),
    ('explain-fifo-image', ['explain', '{w}/tiny.pt', '{w}/fifo/pipe.json', '--out', '{w}/e3.png'], 2, ['pipe.json', 'FIFO']),
    ('import-bbbc010-no-folder', ['import-bbbc010', '{w}/nowhere', '{w}/b1'], 2, ['nowhere', 'not a folder']),
    ('synth-n-0', ['synth', '{w}/s1', '--n', '0'], 2, ['--n must be at least 1']),
]


@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_bad_input(world, case):
    name, argv, status, says = case
    argv = [a.format(w=world) for a in argv]
    before = _snapshot(world)
    rc, out, err, took = _in_child(_brnet, argv)
    assert rc is not None, f"{name}: still running after {LIMIT_S} s (killed)"
    assert 'Traceback' not in err and 'Traceback' not in out, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"{name}: stderr should be one line, got:\n{err}"
    for s in says: assert s in lines[0], f"{name}: {s!r} not in {lines[0]!r}"
    assert rc == status, (name, rc, err)
    assert took < LIMIT_S
    after = _snapshot(world)
    changed = [p for p, v in before.items() if after.get(p) != v]
    assert not changed, f"{name}: changed files that were there before: {changed}"


def test_rle_mutations_never_reach_pycocotools_broken():
    "Random damage to a valid RLE: `check_rle` refuses it, or pycocotools decodes it to the declared size (no hang, no crash)."
    from hypothesis import given, settings, strategies as st
    from pycocotools import mask as mu
    from brnet_kit.coco import check_rle, mask_to_rle
    from brnet_kit.core import BrnetError
    m = np.zeros((30, 40), bool); m[3:9, 2:30] = True; m[12:25, 20:24] = True
    good = mask_to_rle(m)['counts']

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.lists(st.tuples(st.integers(0, len(good)), st.sampled_from(['drop', 'insert', 'change']), st.integers(32, 126)), min_size=1, max_size=3))
    def check(edits):
        c = good
        for i, kind, ch in edits:
            i = min(i, len(c))
            c = c[:i] + c[i + 1:] if kind == 'drop' else c[:i] + chr(ch) + c[i + (kind == 'change'):]
        try: check_rle({'size': [30, 40], 'counts': c})
        except BrnetError: return
        assert mu.decode({'size': [30, 40], 'counts': c.encode()}).shape == (30, 40)
    check()


# Read-only output folders. As root every folder is writable, so there each case runs as the
# unprivileged user `nobody` (uid 65534) in its forked child; the corpus is world-readable.
NOBODY = 65534


def _brnet_unprivileged(argv, home):
    if os.geteuid() == 0:
        os.setgroups([]); os.setgid(NOBODY); os.setuid(NOBODY)
    os.environ['HOME'] = os.environ['MPLCONFIGDIR'] = str(home)   # a config folder nobody can write to would print a warning
    return _brnet(argv)


@pytest.fixture(scope='module')
def ro_world(world):
    import contextlib, io, shutil
    from brnet_kit import cli
    from brnet_kit.convert import convert
    names = lambda c: [n for k, v in c.items() for n in (k, *(names(v) if isinstance(v, dict) else ()))]
    cli.build_parser(names(cli.COMMANDS))   # import every command's module now: `nobody` may not read the Python installation
    w = Path(tempfile.mkdtemp(prefix='brnet-ro-'))
    shutil.copytree(world/'good', w/'good'); shutil.copy(world/'tiny.pt', w/'tiny.pt'); shutil.copy(world/'res.json', w/'res.json')
    with contextlib.redirect_stdout(io.StringIO()): convert(w/'good', w/'coco')
    (w/'home').mkdir(); (w/'ro').mkdir()
    for dirpath, dirs, files in os.walk(w):
        os.chmod(dirpath, 0o755)
        for f in files: os.chmod(os.path.join(dirpath, f), 0o644)
    os.chmod(w/'home', 0o777); os.chmod(w/'ro', 0o555)
    yield w
    os.chmod(w/'ro', 0o755); shutil.rmtree(w, ignore_errors=True)


RO_CASES = [
    ('convert-into-ro', ['convert', '{w}/good', '{w}/ro'], ['ro/annotations.json', 'cannot write here']),
    ('convert-under-ro', ['convert', '{w}/good', '{w}/ro/out'], ['ro/out', 'Permission denied']),
    ('synth-into-ro', ['synth', '{w}/ro', '--n', '1', '--size', '128x128', '--length', '40-60'], ['ro/synth_00000.png', 'cannot write here']),
    ('predict-into-ro', ['predict', '{w}/good', '{w}/ro', '--model', '{w}/tiny.pt', '--device', 'cpu'], ['ro/', 'cannot write here']),
    ('train-into-ro', ['train', '{w}/coco/annotations.json', '{w}/ro', '--steps', '1', '--device', 'cpu'], ['ro/brnet-train.json', 'cannot write here']),
    ('train-under-ro', ['train', '{w}/coco/annotations.json', '{w}/ro/t', '--steps', '1', '--device', 'cpu'], ['ro/t', 'Permission denied']),
    ('evaluate-out-ro', ['evaluate', '{w}/coco/annotations.json', '{w}/res.json', '--out', '{w}/ro/m.json'], ['ro/m.json', 'cannot write here']),
    ('measure-out-ro', ['measure', '{w}/res.json', '--out', '{w}/ro/m.csv'], ['ro/m.csv', 'cannot write here']),
    ('explain-out-ro', ['explain', '{w}/tiny.pt', '{w}/good/a.png', '--out', '{w}/ro/e.png', '--method', 'uam', '--score-thresh', '0'],
     ['ro/e.png', 'cannot write here']),
]


@pytest.mark.parametrize('case', RO_CASES, ids=[c[0] for c in RO_CASES])
def test_read_only_output(ro_world, case):
    "An output folder the user may not write to: exit 2, one line naming the path, nothing written, nothing changed."
    name, argv, says = case
    argv = [a.format(w=ro_world) for a in argv]
    before = _snapshot(ro_world/'good'), _snapshot(ro_world/'coco')
    rc, out, err, took = _in_child(_brnet_unprivileged, argv, ro_world/'home', timeout=60)
    assert rc is not None, f"{name}: still running after 60 s (killed)"
    lines = err.strip().splitlines()
    assert 'Traceback' not in err and len(lines) == 1, f"{name}: stderr should be one line, got:\n{err}"
    for s in says: assert s in lines[0], f"{name}: {s!r} not in {lines[0]!r}"
    assert rc == 2, (name, rc, err)
    assert list((ro_world/'ro').iterdir()) == [], f"{name}: wrote into the read-only folder"
    assert (_snapshot(ro_world/'good'), _snapshot(ro_world/'coco')) == before
