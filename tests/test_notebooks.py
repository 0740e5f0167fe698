"""Every notebook in `nbs/` is a test: each one runs through nbdev's own notebook runner (`nbdev.test.test_nb`),
honouring `tst_flags` from settings.ini. Cells flagged `slow`/`cuda`/`notest` are skipped unless named in the
environment variable `EFM_TEST_FLAGS` (e.g. `EFM_TEST_FLAGS="slow"`), exactly as `nbdev_test --flags` would."""
import os
from pathlib import Path

import pytest
from nbdev.config import get_config
import nbdev.test as nbdev_test  # not `from ... import test_nb`: pytest would collect it as a test
import efm.cli  # noqa: F401  (imports every method, so that each is in the registry before any notebook runs)
from efm.objective import OBJECTIVES

cfg = get_config()
NBS = Path(cfg.config_path) / cfg.nbs_path


def _skipped(path: Path) -> bool:
    "Notebooks that nbdev_test itself would pass over: private (`_`/`.`) files or folders, checkpoints."
    rel = path.relative_to(NBS)
    return any(p.startswith(('_', '.')) for p in rel.parts) or '.ipynb_checkpoints' in rel.parts


NOTEBOOKS = sorted(p for p in NBS.rglob('*.ipynb') if not _skipped(p))
FORCE = os.environ.get('EFM_TEST_FLAGS', '').split()
SKIP = [f for f in cfg.tst_flags.split() if f not in FORCE]


def test_notebooks_found():
    "Zero notebooks found would make every other test vacuous: fail loudly instead."
    assert len(NOTEBOOKS) > 0, f'no notebooks found under {NBS}'


@pytest.fixture(autouse=True)
def package_registry():
    "Each notebook starts from the package's methods, as it does when run alone: a chapter that defines a method (01_capacitor\n"
    "defines `Capacitor`) registers its own class under the method's name, which must not outlive that notebook's run."
    saved = dict(OBJECTIVES)
    yield
    OBJECTIVES.clear(); OBJECTIVES.update(saved)


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[str(p.relative_to(NBS)) for p in NOTEBOOKS])
def test_notebook(nb, monkeypatch):
    monkeypatch.chdir(nb.parent)  # notebooks run from their own folder, as under nbdev_test
    ok, secs = nbdev_test.test_nb(nb, skip_flags=SKIP, force_flags=FORCE, do_print=False, showerr=True)
    assert ok, f'{nb.relative_to(NBS)} failed after {secs:.1f}s (its traceback is printed above)'
