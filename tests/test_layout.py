"The package's layout rules: no module imports another module's private names (issue 21), and the floors hold."
import ast, re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / 'efm'
MODULES = sorted(p for p in PKG.glob('*.py') if not p.name.startswith('_'))


def private_imports(path: Path) -> list:
    "(line, 'module._name') for every `from efm.x import _y` / `from .x import _y` of another module in `path`."
    own, out = path.stem, []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.ImportFrom) or node.module is None: continue
        mod = node.module.split('.')[-1] if node.level else node.module
        if node.level == 0 and not mod.startswith('efm.'): continue
        mod = mod.split('.')[-1]
        if mod == own: continue
        out += [(node.lineno, f'{mod}.{a.name}') for a in node.names if a.name.startswith('_') and not a.name.startswith('__')]
    return out


def test_finder_sees_private_imports(tmp_path):
    "The check can fail: it finds each form of a cross-module private import, and passes public and own names."
    f = tmp_path / 'cfm.py'
    f.write_text('from .field import _scale, coulomb_field\nfrom efm.capacitor import _rand\nfrom .cfm import _own\n'
                 'from torch import _C\nimport efm.field\n')
    assert private_imports(f) == [(1, 'field._scale'), (2, 'capacitor._rand')]


@pytest.mark.parametrize('path', MODULES, ids=[p.name for p in MODULES])
def test_no_private_imports(path):
    "A module uses only the public names of the modules below it."
    bad = private_imports(path)
    assert not bad, f'{path.name} imports private names of other modules: {bad} (make them public in their module, or move the code)'


def test_notebooks_without_private_imports():
    "The notebooks' exported cells obey the same rule (they are where the modules come from)."
    rx = re.compile(r'from (?:efm)?\.(\w+) import ([^\n]*)')
    for nb in sorted((PKG.parent / 'nbs').glob('*.ipynb')):
        text = nb.read_text()
        own = re.search(r'#\| default_exp (\w+)', text)
        for mod, names in rx.findall(text):
            if own and mod == own.group(1): continue
            priv = [n.strip() for n in names.replace('\\n', '').strip('"(), ').split(',') if n.strip().startswith('_')]
            assert not priv, f'{nb.name}: from efm.{mod} import {priv}'
