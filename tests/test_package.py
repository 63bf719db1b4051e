"""brnet-kit as users install it: the `brnet` command, a clean import path, a wheel that installs alone."""
import subprocess, sys, venv, zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HEAVY = ('labelme', 'PyQt5', 'onnxruntime', 'IPython', 'ipywidgets', 'ipykernel', 'jupyterlab', 'notebook', 'nbdev')

CHECK_IMPORTS = f"""
import importlib, pkgutil, sys
import brnet_kit
mods = [m.name for m in pkgutil.walk_packages(brnet_kit.__path__, 'brnet_kit.') if not m.name.endswith('_modidx')]
for m in mods: importlib.import_module(m)
heavy = sorted({{n.split('.')[0] for n in sys.modules}} & set({HEAVY!r}))
assert not heavy, f'importing brnet_kit pulled in {{heavy}}'
print(len(mods), 'modules')
"""


def test_cli_help_lists_subcommands():
    from brnet_kit.cli import COMMANDS
    out = subprocess.run([str(BIN/'brnet'), '--help'], capture_output=True, text=True, check=True).stdout
    assert 'usage: brnet' in out
    for name in COMMANDS: assert name in out, f"`brnet --help` does not list {name}"
    ver = subprocess.run([str(BIN/'brnet'), '--version'], capture_output=True, text=True, check=True).stdout
    import brnet_kit
    assert ver.strip() == f'brnet-kit {brnet_kit.__version__}'


def test_library_import_pulls_in_neither_labelme_nor_jupyter():
    "Every module of the library imports without labelme (GPL, PyQt5) or Jupyter, even though both are installed here."
    r = subprocess.run([sys.executable, '-c', CHECK_IMPORTS], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_wheel_installs_without_extras(tmp_path):
    "`python -m build` makes a wheel and an sdist; the wheel installs into a fresh venv without extras and works."
    dist = tmp_path/'dist'
    subprocess.run([sys.executable, '-m', 'build', '--outdir', str(dist), str(ROOT)], check=True, capture_output=True)
    wheels, sdists = list(dist.glob('*.whl')), list(dist.glob('*.tar.gz'))
    assert len(wheels) == 1 and len(sdists) == 1, list(dist.iterdir())
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert 'brnet_kit/settings.ini' in names, "the presets must ship inside the wheel"
    models = [n for n in names if n.startswith('brnet_kit/models/')]
    assert {'brnet_kit/models/worms.pt', 'brnet_kit/models/worms.md'} <= set(models), models
    sizes = sum(i.file_size for i in zipfile.ZipFile(wheels[0]).infolist() if i.filename.endswith('.pt'))
    assert sizes <= 20e6, f"bundled weights take {sizes/1e6:.1f} MB (at most 20 MB)"
    env = tmp_path/'venv'
    venv.create(env, with_pip=True)
    py = env/'bin'/'python'
    pip = [str(py), '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check']
    subprocess.run(pip + ['torch==2.14.1', 'torchvision==0.29.1'], check=True, capture_output=True)
    subprocess.run(pip + [str(wheels[0])], check=True, capture_output=True)
    out = subprocess.run([str(env/'bin'/'brnet'), '--help'], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert 'usage: brnet' in out
    r = subprocess.run([str(py), '-c', CHECK_IMPORTS + "\nfrom brnet_kit.settings import load_preset; print(load_preset('cpu').backbone)"
                        "\nfrom brnet_kit.model import load_model; assert load_model('worms', device='cpu').config.mask_aligned"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for pkg in ('labelme', 'PyQt5', 'jupyterlab', 'ipywidgets'):
        r = subprocess.run([str(py), '-c', f'import {pkg}'], capture_output=True, cwd=tmp_path)
        assert r.returncode != 0, f"{pkg} was installed without asking for an extra"
