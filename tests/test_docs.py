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
