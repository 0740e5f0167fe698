#!/usr/bin/env python
"""Committed notebook outputs are what the site shows: fail when they carry what a reader must not see.

* a machine path: a home folder or cache (`/root/`, `/home/<user>/`, `/Users/`, `~/.cache`), a temporary folder
  (`/tmp/...`, a kernel's `ipykernel_<pid>` file), this checkout (`/work/...`), the virtual environment (`.venv`,
  `site-packages`);
* a warning or an error: an `error` output, or a `stderr` stream that holds a warning or a traceback;
* weight: a notebook over 1 MB (figure size, dpi, one figure per result).

Usage: check_outputs.py [NOTEBOOK ...]   (default: every notebook under nbs/)
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 1_000_000
MACHINE = re.compile(r'(?<![\w.])(?:/root/|/home/\w|/Users/\w|~/\.cache|/tmp/|/var/folders/|/work/|C:\\Users)'
                     r'|\.venv\b|site-packages|ipykernel_\d+')
NOISE = re.compile(r'\w*Warning\b|Traceback \(most recent call last\)|^\s*warnings\.warn', re.M)


def _text(o: dict) -> str:
    t = o.get('text', '')
    t = ''.join(t) if isinstance(t, list) else t
    for k, v in o.get('data', {}).items():
        if k.startswith('text/'): t += '\n' + (''.join(v) if isinstance(v, list) else v)
    return t + '\n'.join(o.get('traceback', []))


def problems(path: Path) -> list:
    "Every offending output of one notebook, as 'cell N: what: the line'."
    out, nb = [], json.loads(path.read_text())
    if path.stat().st_size > MAX_BYTES: out.append(f'{path.stat().st_size / 1e6:.2f} MB, over the {MAX_BYTES / 1e6:.0f} MB limit')
    for i, c in enumerate(nb['cells']):
        for o in c.get('outputs', []):
            t = _text(o)
            if o['output_type'] == 'error': out.append(f"cell {i}: an error output: {o.get('ename')}: {o.get('evalue', '')[:100]}")
            for line in dict.fromkeys(l for l in t.split('\n') if MACHINE.search(l)):
                out.append(f'cell {i}: a machine path: {line.strip()[:160]}')
            if o.get('name') == 'stderr' and NOISE.search(t):
                out.append(f'cell {i}: a warning on stderr: {NOISE.search(t).group(0)} ... {t.strip()[:120]!r}')
    return out


def main(paths):
    nbs = [Path(p) for p in paths] or sorted(p for p in (ROOT / 'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
    bad = {p: problems(p) for p in nbs}
    bad = {p: v for p, v in bad.items() if v}
    for p, v in bad.items():
        print(f'{p.relative_to(ROOT) if p.is_absolute() else p}:')
        for line in v: print('  ' + line)
    if bad: sys.exit(f'FAIL: committed outputs of {len(bad)} notebook(s) show machine paths, warnings or weight (see above); '
                     'change what the cell prints and re-execute the notebook')
    print(f'outputs clean: {len(nbs)} notebooks, no machine paths, warnings or errors, each under {MAX_BYTES / 1e6:.0f} MB')


if __name__ == '__main__':
    main(sys.argv[1:])
