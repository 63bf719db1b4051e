"""Every tutorial runs headless on a real Jupyter kernel, as `jupyter nbconvert --execute` runs it.

The library notebooks run in-process under nbdev (`tests/test_notebooks.py`). The tutorials run here
instead, with nbclient and the python3 kernel, because that is how a reader's JupyterLab, a docs
build or `nbconvert --execute` runs them: widgets with no front end to answer them, progress bars,
`%matplotlib inline`. (An explorer cell once left nbconvert waiting for good: jupyter/nbclient#312.)

Each tutorial runs from a copy in a temporary folder, at the same depth as in the repository, so its
`../../runs/tutorials/NAME` lands in the temporary folder; the repository's `git status` must not
change. The saved copy must read well without a kernel: no widget shown as `VBox(children=(...`, no
progress bar frozen short of 100 %. Time limits are hang guards, far above the 10-70 s a tutorial takes.

The repository's copies carry their outputs, so that a reader on GitHub sees the figures without
running anything: a cell that shows something when run must have a saved output, and each saved
figure stays under PNG_LIMIT. `make tutorials` (`python tests/test_tutorials_nbclient.py [NOTEBOOK...]`)
runs the tutorials the same way and saves their outputs.
"""
import re, shutil, subprocess, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT/'nbs'/'tutorials').glob('*.ipynb'))
CELL_TIMEOUT = 600   # seconds one cell may run
RUN_LIMIT = 900      # seconds the whole tutorial may run
WIDGET = 'application/vnd.jupyter.widget-view+json'
PNG_LIMIT = 150_000   # bytes of one saved figure: the notebooks stay small to clone
FIG_WIDTH = 860       # pixels: saved figures are scaled down to this width (GitHub shows about 830)


def _git_status():
    try: return subprocess.run(['git', '-C', str(ROOT), 'status', '--porcelain', '--untracked-files=all'],
                               capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError): return None   # not a git checkout (an sdist)


def _drop_flagged(nb):
    "Leave out the cells flagged `#| slow` / `#| cuda` (pyproject's tst_flags) unless BRNET_TEST_FLAGS names the flag, as nbdev-test does; the indices of the cells kept."
    import os
    from nbdev.config import get_config
    skip = set(get_config(ROOT).tst_flags.split()) - set(os.environ.get('BRNET_TEST_FLAGS', '').split())
    flagged = lambda c: any(re.match(r'#\|\s*(\w+)\s*$', l) and l.split('|')[1].strip() in skip for l in c.source.splitlines()[:5])
    kept = [i for i, c in enumerate(nb.cells) if not (c.cell_type == 'code' and flagged(c))]
    nb.cells = [nb.cells[i] for i in kept]
    return kept


def _shown(nb):
    "(cell index, output data) of every displayed output."
    return [(i, o.get('data', {})) for i, c in enumerate(nb.cells) if c.cell_type == 'code'
            for o in c.outputs if o.output_type in ('display_data', 'execute_result')]


def run_tutorial(path:Path, tmp:Path):
    "Run a copy of tutorial `path` inside `tmp` (at the repository's depth) on a python3 kernel; the executed notebook, seconds and the kept cells' indices in `path`."
    import nbformat, nbclient
    copy = tmp/'nbs'/'tutorials'/path.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    kept = _drop_flagged(nb)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name='python3',
                                     resources={'metadata': {'path': str(copy.parent)}})
    t0 = time.monotonic()
    client.execute()                      # raises CellExecutionError, with the cell and its traceback, if a cell raised
    return nb, time.monotonic() - t0, kept


def _shows(cell)->bool: return any(o.output_type in ('display_data', 'execute_result', 'stream') for o in cell.get('outputs', []))


def _png_sizes(nb)->list[int]:
    "Bytes of every PNG in the notebook's outputs."
    return [len(o['data']['image/png']) * 3 // 4 for c in nb.cells if c.cell_type == 'code'
            for o in c.get('outputs', []) if 'image/png' in o.get('data', {})]


@pytest.mark.parametrize('path', TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_on_a_kernel(path, tmp_path):
    nbformat, nbclient = pytest.importorskip('nbformat'), pytest.importorskip('nbclient')
    before = _git_status()
    nb, secs, kept = run_tutorial(path, tmp_path)
    assert secs < RUN_LIMIT, f"{path.name} ran {secs:.0f} s on a kernel (limit {RUN_LIMIT} s): a cell hangs or waits"
    assert not [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs if o.output_type == 'error']
    assert (tmp_path/'runs'/'tutorials'/path.stem).is_dir(), f"{path.name} wrote nothing under ../../runs/tutorials/{path.stem}"
    if before is not None: assert _git_status() == before, f"{path.name} wrote into the repository"
    for i, data in _shown(nb):
        text = data.get('text/plain', '')
        if WIDGET not in data: continue
        assert not re.match(r'\w+\(', text) or 'image/png' in data, \
            f"cell {i} of {path.name}: a saved copy shows the widget as {text[:40]!r} and no picture"
        if (m := re.search(r'(\d+)%\|', text)):
            assert m.group(1) == '100', f"cell {i} of {path.name}: a saved copy shows a progress bar stopped at {text!r}"
    # the repository's copy carries the outputs a reader on GitHub should see without running anything
    saved = nbformat.read(path, as_version=4).cells
    missing = [j for c, j in zip(nb.cells, kept) if c.cell_type == 'code' and _shows(c) and not _shows(saved[j])]
    assert not missing, (f"{path.name}: cells {missing} show something when run but their saved outputs are missing; "
                         f"refresh them with `make tutorials`")
    pngs = _png_sizes(nbformat.read(path, as_version=4))
    assert all(b <= PNG_LIMIT for b in pngs), f"{path.name}: a saved figure of {max(pngs)//1024} KB (limit {PNG_LIMIT//1024} KB): lower its size or dpi"


def _small_png(b64:str)->str:
    "The figure at most FIG_WIDTH pixels wide, as a PNG of at most 256 colours (base64; fewer where it would pass PNG_LIMIT): photographs of worms compress poorly as full-colour PNGs."
    import base64, io
    from PIL import Image
    raw = base64.b64decode(b64)
    im = Image.open(io.BytesIO(raw)).convert('RGB')
    if im.width > FIG_WIDTH: im = im.resize((FIG_WIDTH, round(im.height * FIG_WIDTH / im.width)), Image.Resampling.LANCZOS)
    for colors in (256, 128, 64):        # fewer colours only where a figure would pass PNG_LIMIT
        buf = io.BytesIO()
        im.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(buf, 'PNG', optimize=True)
        if buf.tell() <= PNG_LIMIT: break
    return base64.b64encode(buf.getvalue()).decode() if buf.tell() < len(raw) else b64


def save_outputs(paths=TUTORIALS):
    "Run each tutorial on a kernel (as the test does) and write its outputs into the repository's copy; `make tutorials` runs this, then `nbdev-clean`."
    import tempfile, nbformat
    for path in paths:
        with tempfile.TemporaryDirectory() as tmp:
            nb, secs, kept = run_tutorial(Path(path), Path(tmp))
        orig = nbformat.read(path, as_version=4)
        for c, j in zip(nb.cells, kept):
            if c.cell_type != 'code': continue
            for o in c.outputs:
                if 'image/png' in o.get('data', {}): o['data']['image/png'] = _small_png(o['data']['image/png'])
            orig.cells[j].outputs, orig.cells[j].execution_count = c.outputs, None
        nbformat.write(orig, path)
        print(f"{Path(path).name}: ran in {secs:.0f} s; outputs saved ({sum(_png_sizes(orig))//1024} KB of figures)")


if __name__ == '__main__':
    import sys
    save_outputs([Path(a).resolve() for a in sys.argv[1:]] or TUTORIALS)
