"""Every library notebook in nbs/ runs as one pytest test (in-process, as `nbdev-test` runs it); the
tutorials run on a real Jupyter kernel in tests/test_tutorials_nbclient.py.

Cells flagged with one of the nbdev test flags in pyproject.toml (`notest slow cuda`) are
skipped; set BRNET_TEST_FLAGS="slow" (space-separated) to run those cells too.
"""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb')
                   if '.ipynb_checkpoints' not in p.parts and not p.name.startswith('_'))
LIBRARY = [p for p in NOTEBOOKS if 'tutorials' not in p.relative_to(ROOT/'nbs').parts]


def _flags():
    from nbdev.config import get_config
    skip = get_config(ROOT).tst_flags.split()
    force = os.environ.get('BRNET_TEST_FLAGS', '').split()
    return [f for f in skip if f not in force], force


@pytest.mark.parametrize('nb', LIBRARY, ids=[str(p.relative_to(ROOT/'nbs')) for p in LIBRARY])
def test_notebook(nb):
    from nbdev.test import test_nb
    skip, force = _flags()
    ok, secs = test_nb(nb, skip_flags=skip, force_flags=force, showerr=True)
    assert ok, f"{nb.relative_to(ROOT)} raised in a cell (traceback above)"


def test_every_notebook_opens_on_a_python_kernel():
    "A saved notebook without a kernelspec opens JupyterLab's 'Select Kernel' dialog; a beginner who picks 'No Kernel' sees nothing run."
    import json
    bad = [str(p.relative_to(ROOT)) for p in NOTEBOOKS
           if json.loads(p.read_text(encoding='utf-8'))['metadata'].get('kernelspec', {}).get('name') != 'python3']
    assert not bad, f"notebooks without the python3 kernelspec: {bad}"
