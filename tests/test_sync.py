"""Notebooks are the source: exporting them must reproduce brnet_kit/ exactly, and they must be clean.

Both checks run nbdev on a copy of the project, so the working tree is never modified.
"""
import filecmp, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _copy(tmp_path):
    dst = tmp_path/'proj'
    dst.mkdir()
    for name in ('pyproject.toml', 'settings.ini', 'README.md'):
        if (ROOT/name).exists(): shutil.copy2(ROOT/name, dst/name)
    ignore = shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints', '*.pyc')
    shutil.copytree(ROOT/'nbs', dst/'nbs', ignore=ignore)
    shutil.copytree(ROOT/'brnet_kit', dst/'brnet_kit', ignore=ignore, symlinks=True)
    return dst


def _tree(p):
    return {f.relative_to(p): f for f in p.rglob('*') if f.is_file() and '__pycache__' not in f.parts}


def _diff(a, b):
    ta, tb = _tree(a), _tree(b)
    changed = sorted(str(k) for k in ta.keys() & tb.keys() if not filecmp.cmp(ta[k], tb[k], shallow=False))
    return changed + [f'+{k}' for k in sorted(tb.keys() - ta.keys())] + [f'-{k}' for k in sorted(ta.keys() - tb.keys())]


def test_export_does_not_change_library(tmp_path):
    proj = _copy(tmp_path)
    subprocess.run([str(BIN/'nbdev-export')], cwd=proj, check=True, capture_output=True)
    diff = _diff(ROOT/'brnet_kit', proj/'brnet_kit')
    assert not diff, f"nbdev-export changed brnet_kit/ (edit the notebooks, not the .py files, then run nbdev-export): {diff}"


def test_notebooks_are_clean(tmp_path):
    proj = _copy(tmp_path)
    subprocess.run([str(BIN/'nbdev-clean')], cwd=proj, check=True, capture_output=True)
    diff = _diff(ROOT/'nbs', proj/'nbs')
    assert not diff, f"nbdev-clean changed nbs/ (run nbdev-clean and commit): {diff}"
