"""Every distribution that efm's requirements pull in must carry a permissive licence: efm is Apache-2.0, and a
non-commercial or copyleft requirement would make it unusable for many of its users. The installed environment is
read with `importlib.metadata`: efm's `Requires-Dist` (without extras), then theirs, recursively, markers evaluated.
A distribution's licence is its `License-Expression` (SPDX), else its `License ::` classifiers, else its `License`
field; every term of an AND must be permissive, one of an OR suffices. Metadata can be wrong, so the licence files a
distribution ships are read too: one whose title is a non-commercial or copyleft licence makes it non-permissive whatever
its metadata says (flow-matching declares "MIT License" and ships CC BY-NC 4.0).

One exemption, named in the output: the CUDA runtime libraries (`nvidia-*`, `cuda-toolkit`) that a CUDA build of PyTorch
brings. They are NVIDIA's proprietary, redistributable runtime, not efm's requirement: a CPU build of torch has none,
and the user chooses the build. Run `python tests/test_licences.py` for the table."""
import re
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PERMISSIVE = ('MIT', 'MIT-CMU', 'BSD', 'BSD-2-Clause', 'BSD-3-Clause', '0BSD', 'Apache-2.0', 'Apache 2.0', 'PSF-2.0', 'Python-2.0',
              'ISC', 'Zlib', 'CC0-1.0', 'BSL-1.0', 'Unlicense', 'HPND', 'LLVM-exception')
CLASSIFIERS = ('MIT License', 'BSD License', 'Apache Software License', 'Python Software Foundation License', 'ISC License (ISCL)',
               'zlib/libpng License', 'The Unlicense (Unlicense)', 'Historical Permission Notice and Disclaimer (HPND)')
CUDA_RUNTIME = re.compile(r'^(nvidia-.*|cuda-toolkit)$')
NOT_PERMISSIVE_TEXT = ('NonCommercial', 'Non-Commercial', 'GNU GENERAL PUBLIC LICENSE', 'GNU LESSER GENERAL PUBLIC LICENSE',
                       'GNU AFFERO', 'Mozilla Public License', 'Server Side Public License', 'Business Source License')


def _permissive_spdx(expr: str) -> bool:
    "An SPDX expression whose AND terms are all permissive (an OR needs one); `WITH` exceptions are permissive additions."
    expr = expr.strip().strip('()')
    if ' OR ' in expr: return any(_permissive_spdx(e) for e in expr.split(' OR '))
    terms = [t.strip().strip('()').split(' WITH ')[0].strip() for t in expr.split(' AND ')]
    return all(t in PERMISSIVE for t in terms)


def _shipped(dist) -> str:
    "The first non-permissive licence that titles a licence file of the distribution's own (in its .dist-info, not vendored code's), or ''."
    for f in dist.files or []:
        if len(f.parts) > 1 and f.parts[0].endswith('.dist-info') and re.search(r'(LICEN[CS]E|COPYING)', f.name, re.I):
            try: text = f.locate().read_text(errors='replace')[:400]   # its title: later lines may quote bundled or compatible licences
            except OSError: continue
            hit = next((w for w in NOT_PERMISSIVE_TEXT if w.lower() in text.lower()), '')
            if hit: return f'{f.name} says {hit!r}'
    return ''


def licence(dist) -> tuple:
    "(licence as declared, permissive?) of an installed distribution; its shipped licence files overrule its metadata."
    shipped = _shipped(dist)
    if shipped: return shipped, False
    m = dist.metadata
    expr = m.get('License-Expression')
    if expr: return expr, _permissive_spdx(expr)
    cls = [c.split('::')[-1].strip() for c in m.get_all('Classifier') or [] if c.startswith('License ::')]
    if cls: return '; '.join(cls), all(c in CLASSIFIERS for c in cls)
    text = (m.get('License') or '').strip()
    first = text.splitlines()[0][:60] if text else 'none declared'
    return first, bool(text) and _permissive_spdx(first)


def closure(name: str = 'efm', extras: tuple = ()) -> dict:
    "Every installed distribution that `name` (with `extras`) requires, directly or not: {canonical name: distribution}."
    seen, todo = {}, [(name, tuple(extras))]
    while todo:
        n, ex = todo.pop()
        key = canonicalize_name(n)
        if key in seen and not ex: continue
        dist = metadata.distribution(n)
        seen[key] = dist
        for spec in dist.requires or []:
            r = Requirement(spec)
            if r.marker is not None and not any(r.marker.evaluate({'extra': e}) for e in (ex or ('',))): continue
            todo.append((r.name, tuple(r.extras)))
    return seen


def verdicts() -> list:
    "(name, version, licence, verdict) for efm's requirements: 'permissive', 'exempt: CUDA runtime' or 'NOT PERMISSIVE'."
    out = []
    for key, dist in sorted(closure().items()):
        if key == 'efm': continue
        lic, ok = licence(dist)
        out.append((dist.metadata['Name'], dist.version, lic, 'permissive' if ok else 'exempt: CUDA runtime' if CUDA_RUNTIME.match(key) else 'NOT PERMISSIVE'))
    return out


def test_requirements_are_permissive():
    bad = [f'{n} {v} ({lic})' for n, v, lic, verdict in verdicts() if verdict == 'NOT PERMISSIVE']
    assert not bad, 'non-permissive required distributions: ' + ', '.join(bad)


def test_the_check_can_fail():
    "The classifier refuses what it must: copyleft and non-commercial licences, and flow-matching (CC BY-NC 4.0) where installed."
    assert not _permissive_spdx('GPL-3.0-only') and not _permissive_spdx('CC-BY-NC-4.0') and not _permissive_spdx('MIT AND LGPL-2.1')
    assert _permissive_spdx('Apache-2.0 AND Apache-2.0 WITH LLVM-exception AND BSD-3-Clause') and _permissive_spdx('Apache-2.0 OR BSD-2-Clause')
    assert 'flow-matching' not in closure() and 'flow_matching' not in closure()   # an optional extra, never a requirement
    try: fm = metadata.distribution('flow_matching')
    except metadata.PackageNotFoundError: return
    assert not licence(fm)[1], licence(fm)


if __name__ == '__main__':
    rows = verdicts()
    print('| distribution | version | licence | verdict |\n|---|---|---|---|')
    for n, v, lic, verdict in rows: print(f'| {n} | {v} | {lic[:70]} | {verdict} |')
    print(f'\n{len(rows)} distributions: {sum(r[3] == "permissive" for r in rows)} permissive, '
          f'{sum(r[3].startswith("exempt") for r in rows)} exempt (CUDA runtime), {sum(r[3] == "NOT PERMISSIVE" for r in rows)} not permissive')
