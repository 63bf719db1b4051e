"""Every exported function and class has a one-line docstring and every parameter a documented meaning (docments)."""
import importlib, inspect, pkgutil

import brnet_kit
from fastcore.docments import docments

SKIP_PARAMS = {'self', 'cls', 'args', 'kwargs'}


def _public():
    for m in pkgutil.walk_packages(brnet_kit.__path__, 'brnet_kit.'):
        if m.name.endswith('_modidx'): continue
        mod = importlib.import_module(m.name)
        for name in getattr(mod, '__all__', []):
            obj = getattr(mod, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == mod.__name__: yield f'{m.name}.{name}', obj


def test_every_export_has_a_docstring_and_documented_parameters():
    missing_doc, missing_params = [], []
    for qual, obj in _public():
        if not (inspect.getdoc(obj) or '').strip(): missing_doc.append(qual)
        if inspect.isclass(obj) and '__init__' not in vars(obj): continue   # dataclasses document fields; inherited inits are documented upstream
        func = obj if inspect.isfunction(obj) else obj.__init__
        params = inspect.signature(func).parameters
        try: docs = docments(func, full=True, returns=False)
        except OSError: continue   # generated code (dataclass, namedtuple): its fields are documented in the class body
        undocumented = [p for p, d in docs.items() if p not in SKIP_PARAMS and not d['docment']
                        and params[p].kind not in (params[p].VAR_POSITIONAL, params[p].VAR_KEYWORD)]
        if undocumented: missing_params.append(f"{qual}({', '.join(undocumented)})")
    assert not missing_doc, f"no docstring: {missing_doc}"
    assert not missing_params, f"parameters without a docment: {missing_params}"


def test_readme_module_table_names_every_notebook_and_module():
    "The README's table of notebooks and modules matches the repository: every library notebook and every module is in it, and nothing it names is missing."
    import fnmatch, re
    from pathlib import Path
    root = Path(brnet_kit.__file__).resolve().parents[1]
    readme = (root/'README.md').read_text(encoding='utf-8')
    table = readme[readme.index('| notebook | module |'):].split('\n\n')[0]
    rows = [[c.strip() for c in l.strip('|').split('|')] for l in table.splitlines()[2:]]
    rows = [r for r in rows if not r[0].startswith('`tutorials/')]   # the tutorials' row: no module
    named_nbs = [n for r in rows for n in re.findall(r'`([^`]+)`', r[0])]
    named_mods = [m for r in rows for m in re.findall(r'`([^`]+)`', r[1])]
    nbs = sorted(p.stem for p in (root/'nbs').glob('*.ipynb') if p.stem != 'index')
    mods = sorted(m.name.removeprefix('brnet_kit.') for m in pkgutil.walk_packages(brnet_kit.__path__, 'brnet_kit.')
                  if not m.name.endswith('_modidx') and not m.ispkg)
    assert not [n for n in nbs if not any(fnmatch.fnmatch(n, pat) for pat in named_nbs)], "notebooks missing from the README's table"
    assert not [p for p in named_nbs if not fnmatch.filter(nbs, p)], "the README's table names notebooks that do not exist"
    assert not [m for m in mods if not any(fnmatch.fnmatch(m, pat) for pat in named_mods)], "modules missing from the README's table"
    assert not [p for p in named_mods if not fnmatch.filter(mods, p)], "the README's table names modules that do not exist"
