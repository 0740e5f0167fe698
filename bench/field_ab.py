"""Benchmark (not a test): `capacitor_field` of this tree against the same function at another git revision, on the CPU.

Run: `.venv/bin/python bench/field_ab.py --rev 9baf4e6` (from the repository root; about a minute on 2 cores). The
package `efm/` of the revision is extracted with `git archive` into a temporary folder and imported under another name,
so both versions run in one process on the same inputs (`bench/field.py`'s `_inputs`, superposition target, float32),
their calls interleaved one by one after two warm-up calls each: other jobs on a shared machine slow both alike. Time:
the fastest call of each; ratio: the median over rounds of (this tree / the revision), timed back to back. This tree is
timed twice: as the public call (`check=True`, the default) and as the training loop's hot path (`check=False`). The
last column is the largest difference of the two versions' targets (float32 rounding where the code did not change).
Prints markdown and writes it to `bench/field_ab_results.md` (with `--out`, elsewhere).
"""
import argparse, importlib, io, statistics, subprocess, sys, tarfile, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / 'bench'))
SIZES = {'image': (64, 1024, 3072), 'toy': (256, 256, 2), 'demo step': (256, 2048, 2), 'toy D=8': (256, 2048, 8), 'toy D=16': (256, 2048, 16)}


def revision_field(rev:str, where:Path):
    "efm.field as of git revision `rev`, imported as the package `efm_at_rev`."
    raw = subprocess.run(['git', 'archive', rev, 'efm'], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as t: t.extractall(where, filter='data')
    (where / 'efm').rename(where / 'efm_at_rev')
    sys.path.insert(0, str(where))
    return importlib.import_module('efm_at_rev.field')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rev', required=True, help='the git revision to compare against (e.g. the commit before a change)')
    ap.add_argument('--threads', type=int, nargs='+', default=[2, 1], help='torch intra-op threads (default: 2 and 1)')
    ap.add_argument('--out', default=str(ROOT / 'bench' / 'field_ab_results.md'))
    a = ap.parse_args()
    import torch
    import efm.field as now
    from field import _inputs
    rev = subprocess.run(['git', 'rev-parse', '--short', a.rev], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        old = revision_field(a.rev, Path(tmp))
        lines = [f'# `capacitor_field`: this tree against {rev}, CPU, float32', '',
                 f'torch {torch.__version__}; the fastest of interleaved calls; ratio: median over rounds of now / {rev}.', '']
        for threads in a.threads:
            torch.set_num_threads(threads)
            lines += [f'{threads} thread(s):', '', f'| size (b, B, D) | {rev} | now | now, check=False | now / {rev} | check=False / {rev} | max diff |',
                      '|---|---|---|---|---|---|---|']
            for name, (b, B, D) in SIZES.items():
                x, z, P, Q = _inputs(b, B, D)
                fs = {'old': lambda: old.capacitor_field(x, z, P, Q, 1.0), 'now': lambda: now.capacitor_field(x, z, P, Q, 1.0),
                      'hot': lambda: now.capacitor_field(x, z, P, Q, 1.0, check=False)}
                for f in fs.values(): f(); f()
                t = {k: [] for k in fs}
                for _ in range(15 if D > 1000 else 200):
                    for k, f in fs.items():
                        t0 = time.perf_counter(); f(); t[k].append(time.perf_counter() - t0)
                best = {k: min(v) * 1e3 for k, v in t.items()}
                ratio = {k: statistics.median(u / o for u, o in zip(t[k], t['old'])) for k in ('now', 'hot')}
                diff = (fs['now']().flat() - fs['old']().flat()).abs().max().item()
                lines.append(f"| {name} ({b}, {B}, {D}) | {best['old']:.3f} ms | {best['now']:.3f} ms | {best['hot']:.3f} ms | "
                             f"{ratio['now']:.3f} | {ratio['hot']:.3f} | {diff:.1e} |")
                print(lines[-1], file=sys.stderr)
            lines.append('')
    text = '\n'.join(lines)
    print(text); Path(a.out).write_text(text + '\n')


if __name__ == '__main__': main()
