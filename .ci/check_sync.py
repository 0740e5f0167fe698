#!/usr/bin/env python
"""Fail if `nbdev_export` or `nbdev_clean` would change any file: the notebooks are the source of truth.

Runs both commands on a throw-away copy of the project (so nothing in the working tree is touched) and reports
every file that differs: a hand-edited `efm/*.py`, a notebook not exported, or a notebook not cleaned."""
import filecmp, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPY = ['settings.ini', 'setup.py', 'nbs', 'efm']


def _ignore(d, names): return [n for n in names if n in ('__pycache__', '.ipynb_checkpoints')]


def _files(root: Path, sub: str):
    base = root / sub
    if base.is_file(): return {sub}
    return {str(p.relative_to(root)) for p in base.rglob('*') if p.is_file() and '__pycache__' not in p.parts
            and '.ipynb_checkpoints' not in p.parts}


def main():
    with tempfile.TemporaryDirectory(prefix='efm-sync-') as tmp:
        tmp = Path(tmp)
        for c in COPY:
            src = ROOT / c
            if src.is_dir(): shutil.copytree(src, tmp / c, ignore=_ignore)
            elif src.exists(): shutil.copy2(src, tmp / c)
        for cmd, what in [('nbdev_export', 'efm/ is out of sync with the notebooks (a hand edit of efm/*.py, or a notebook not exported): edit the notebook and run nbdev_export'),
                          ('nbdev_clean', 'notebooks are not clean: run nbdev_clean (or install the hooks with nbdev_install_hooks)')]:
            r = subprocess.run([str(BIN / cmd)], cwd=tmp, capture_output=True, text=True)
            if r.returncode: sys.exit(f'{cmd} failed:\n{r.stdout}\n{r.stderr}')
            changed = []
            for sub in ('nbs', 'efm'):
                before, after = _files(ROOT, sub), _files(tmp, sub)
                changed += [f'{f} (would be created)' for f in sorted(after - before)]
                changed += [f'{f} (would be deleted)' for f in sorted(before - after)]
                changed += [f for f in sorted(before & after) if not filecmp.cmp(ROOT / f, tmp / f, shallow=False)]
            if changed:
                print(f'FAIL: {cmd} would change {len(changed)} file(s) — {what}:', *changed, sep='\n  ', file=sys.stderr)
                sys.exit(1)
            # the next command runs on top of this one's result, as in a developer's tree
    print('ok: nbdev_export and nbdev_clean leave nbs/ and efm/ unchanged')


if __name__ == '__main__': main()
