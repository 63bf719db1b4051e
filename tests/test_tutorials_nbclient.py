"""Every tutorial runs headless on a real Jupyter kernel, as `jupyter nbconvert --execute` runs it.

The library notebooks run in-process under nbdev (`tests/test_notebooks.py`). The tutorials run here
instead, with nbclient and the python3 kernel, because that is how a reader's JupyterLab, a docs
build or `nbconvert --execute` runs them: widgets with no front end to answer them, progress bars,
`%matplotlib inline`. (An explorer cell once left nbconvert waiting for good: jupyter/nbclient#312.)

Each tutorial runs from a copy in a temporary folder, at the same depth as in the repository, so its
`../../runs/tutorials/NAME` lands in the temporary folder; the repository's `git status` must not
change. The saved copy must read well without a kernel: no widget shown as `VBox(children=(...`, no
progress bar frozen short of 100 %. Time limits are hang guards, far above the 10-45 s a tutorial takes.
"""
import re, shutil, subprocess, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT/'nbs'/'tutorials').glob('*.ipynb'))
CELL_TIMEOUT = 600   # seconds one cell may run
RUN_LIMIT = 900      # seconds the whole tutorial may run
WIDGET = 'application/vnd.jupyter.widget-view+json'


def _git_status():
    try: return subprocess.run(['git', '-C', str(ROOT), 'status', '--porcelain', '--untracked-files=all'],
                               capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError): return None   # not a git checkout (an sdist)


def _drop_flagged(nb):
    "Leave out the cells flagged `#| slow` / `#| cuda` (pyproject's tst_flags) unless BRNET_TEST_FLAGS names the flag, as nbdev-test does."
    import os
    from nbdev.config import get_config
    skip = set(get_config(ROOT).tst_flags.split()) - set(os.environ.get('BRNET_TEST_FLAGS', '').split())
    flagged = lambda c: any(re.match(r'#\|\s*(\w+)\s*$', l) and l.split('|')[1].strip() in skip for l in c.source.splitlines()[:5])
    nb.cells = [c for c in nb.cells if not (c.cell_type == 'code' and flagged(c))]


def _shown(nb):
    "(cell index, output data) of every displayed output."
    return [(i, o.get('data', {})) for i, c in enumerate(nb.cells) if c.cell_type == 'code'
            for o in c.outputs if o.output_type in ('display_data', 'execute_result')]


@pytest.mark.parametrize('path', TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_on_a_kernel(path, tmp_path):
    nbformat, nbclient = pytest.importorskip('nbformat'), pytest.importorskip('nbclient')
    copy = tmp_path/'nbs'/'tutorials'/path.name
    copy.parent.mkdir(parents=True)
    shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    _drop_flagged(nb)
    before = _git_status()
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name='python3',
                                     resources={'metadata': {'path': str(copy.parent)}})
    t0 = time.monotonic()
    client.execute()                      # raises CellExecutionError, with the cell and its traceback, if a cell raised
    secs = time.monotonic() - t0
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
