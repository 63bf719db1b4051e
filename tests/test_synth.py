"""brnet_kit.synth outside the notebook: byte-identical output across processes, and the embedded sample.

The notebook nbs/04_synth.ipynb checks the generator itself; these tests need separate
processes or the repository's data/ folder.
"""
import filecmp, json, os, re, shlex, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT/'data'/'sample'


def _files(d):
    return sorted(p.relative_to(d).as_posix() for p in Path(d).rglob('*') if p.is_file())


def _run_synth(out, hashseed, fmt='labelme'):
    code = ("from brnet_kit.synth import synth; "
            f"synth({str(out)!r}, n=3, size='200x160', worms='3-6', length='60-90', seed=11, format={fmt!r}, "
            "split='0.67,0.33', bits=16, quiet=True)")
    env = dict(os.environ, PYTHONHASHSEED=str(hashseed), OMP_NUM_THREADS='1')
    subprocess.run([sys.executable, '-c', code], check=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.parametrize('fmt', ['labelme', 'coco'])
def test_same_seed_same_bytes_across_processes(tmp_path, fmt):
    "Two separate processes (with different hash seeds) write byte-identical files for the same seed."
    a, b = tmp_path/'a', tmp_path/'b'
    _run_synth(a, 1, fmt); _run_synth(b, 2, fmt)
    assert _files(a) == _files(b) and len(_files(a)) >= 3
    diff = [f for f in _files(a) if not filecmp.cmp(a/f, b/f, shallow=False)]
    assert not diff, f"files differ between processes: {diff}"


def _readme_command():
    text = (ROOT/'data'/'README.md').read_text()
    m = re.search(r'^brnet synth data/sample .*$', text, re.M)
    assert m, 'data/README.md must give the exact `brnet synth data/sample ...` command'
    return shlex.split(m.group(0))


def test_sample_is_what_the_readme_command_makes(tmp_path):
    "Running the command written in data/README.md regenerates data/sample byte for byte."
    from brnet_kit import cli
    argv = _readme_command()[1:]
    argv[1] = str(tmp_path/'sample')
    cli.COMMANDS.setdefault('synth', 'brnet_kit.synth:synth')
    assert cli.main(argv) == 0
    assert _files(tmp_path/'sample') == _files(SAMPLE)
    diff = [f for f in _files(SAMPLE) if not filecmp.cmp(SAMPLE/f, tmp_path/'sample'/f, shallow=False)]
    assert not diff, f"data/sample differs from what the README command makes: {diff}"


def test_sample_layout_size_and_split():
    "About 24 LabelMe images under 3 MB, split into train/ and val/ with no image in both."
    from brnet_kit.core import sample_dir
    from brnet_kit.labelme import read_labelme, read_image
    from brnet_kit.raster import instances
    assert sample_dir() == SAMPLE
    assert sum(p.stat().st_size for p in SAMPLE.rglob('*') if p.is_file()) < 3_000_000
    parts = {d.name: sorted(p.stem for p in d.glob('*.json')) for d in SAMPLE.iterdir() if d.is_dir()}
    assert set(parts) == {'train', 'val'}
    assert (len(parts['train']), len(parts['val'])) == (18, 6)
    assert not set(parts['train']) & set(parts['val'])
    crossing = {}
    for part, stems in parts.items():
        for s in stems:
            lf = read_labelme(SAMPLE/part/f'{s}.json')
            img = read_image(SAMPLE/part/f'{s}.png')
            assert img.shape == (256, 256) and img.dtype == np.uint8
            masks = np.stack([i.mask for i in instances(lf)])
            assert 4 <= len(masks) <= 7 and masks.any((1, 2)).all()
            crossing[part] = crossing.get(part, 0) + int(((masks.sum(0) > 1) & masks).any((1, 2)).sum())
    assert crossing['train'] > 10 and crossing['val'] > 3, crossing
