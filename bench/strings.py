"""Benchmark (not a test): IFM's estimator `efm.ifm.string_field` against broadcasting and against its own two matmuls.

Run: `.venv/bin/python bench/strings.py` (from the repository root; about 5 minutes on 2 cores). Prints markdown and writes
it to `bench/strings_results.md`; `--quick` checks the script at small sizes (the file is then only written with `--out`).
On the lent GPU machine: `bash .device/on_device.sh python3 bench/strings.py --device cuda --out $OUT/strings_cuda.md`.

What is compared, float32, the same points and strings throughout (the estimator's hot path, `check=False`, as
`IFM.batch` calls it), for both forms of the field (`exact`, and `authors`: the released code's field):

* `broadcast`: the authors' approach. Every offset between a point and every string is materialised as a `[b, B, D]`
  tensor, the weights come from its squared norms and the weighted sum is a reduction over it. The weights are those of
  `efm.ifm` (its private `_heights` and `_coefficients`, so the two differ only in how the sum is laid out), in log
  space, so that the baseline also gives the right answer at D = 3072. Its largest angle to a float64 `string_field`
  of the same inputs is reported: the baseline computes the same target.
* `bare matmuls`: the estimator's unavoidable work at image scale, its two products `x @ [P; Delta].T` (distances to
  every string) and `W @ [Delta; P]` (the weighted sum), nothing else. `string_field` / bare matmuls is how close it
  runs to its arithmetic.
* `string_field`: the library's estimator (the direct route for D <= `efm.ifm._DIRECT_D`, the matmul route beyond).

Time: the median of `--reps` calls after 2 warm-up calls, the three called in turn, so that load from other jobs slows
them alike. Sizes: the 2-D peers step (b = B = 2048, the pairs of one batch; and b = 256), a middle dimension, and the
digit presets' step (b = B = 64, D = 3 x 32 x 32) and a larger image batch. On CUDA each call is synchronised. The
host's waits inside one hot-path call are counted (`efm.field.host_syncs`; 0 expected; on the CPU every tensor counts, so
the CPU run already shows whether the GPU path would wait).
"""
import argparse, math, statistics, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import torch
from efm.field import host_syncs
from efm.ifm import string_field, _heights, _coefficients   # the same weights as the estimator (see above)

L, SIGMA, K = 40.0, 10.0, 5.0   # the digit presets' IFM settings; sigma scaled with sqrt(D) below for other D


def inputs(b, B, D, device, seed=0):
    "B pairs (P ~ N(0, I), Q ~ N(1, I)) and b points on random strings at random heights, spread by a tenth of the width."
    g = torch.Generator(device).manual_seed(seed)
    rn = lambda *s: torch.randn(*s, generator=g, device=device)
    P, Q = rn(B, D), rn(B, D) + 1.0
    z = torch.rand(b, generator=g, device=device) * L
    i = torch.randint(B, (b,), generator=g, device=device)
    x = P[i] + (z / L)[:, None] * (Q[i] - P[i]) + 0.1 * width(D) * rn(b, D)
    return x, z, P, Q


def width(D): return SIGMA * math.sqrt(D / 3072)   # the digits' sigma at D = 3072, the same share of sqrt(D) elsewhere


def broadcast_strings(x, z, P, Q, form):
    "IFM's target with every offset [b, B, D] materialised, the estimator's weights, log space."
    (b, D), B, sigma = x.shape, P.shape[0], width(x.shape[1])
    s, s2, s2c, sc, ds, rate = _heights(z, L, sigma, K, x.dtype)
    t, Dl = (z / L)[:, None, None], Q - P
    Y = torch.where(t < 0.5, (x[:, None] - P) - t * Dl, (x[:, None] - Q) + (1 - t) * Dl)          # [b, B, D]
    nlq = torch.full((B,), math.log(B), dtype=x.dtype, device=x.device)
    psi, p, h, e = _coefficients(Y.pow(2).sum(-1), s, s2, sc, ds, rate, nlq, (Dl * Dl).sum(1), L, sigma, D, form, 1e-2)
    w = torch.exp(-(psi - psi.amin(1, keepdim=True)) / s2c)
    E = torch.cat([(w * p) @ Dl + ((w * h)[..., None] * Y).sum(1), (w * e).sum(1, keepdim=True)], 1)
    return math.sqrt(D + 1) * E / E.norm(dim=1, keepdim=True)


def full(f): return torch.cat([f.x.flatten(1), f.z[:, None]], 1)   # a Field as [b, D + 1]


def hot(x, z, P, Q, form): return string_field(x, z, P, Q, L, width(x.shape[1]), K, form=form, check=False)


def bare(x, P, Q):
    "The estimator's two products at this size, nothing else."
    G = x @ torch.cat([P, Q - P]).T
    return G @ torch.cat([Q - P, P])


def max_angle(a, b):
    "Largest angle (radians) between rows of a and b, in float64."
    a, b = a.double(), b.double()
    u, v = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    return (2 * torch.atan2((u - v).norm(dim=1), (u + v).norm(dim=1))).max().item()


def timed(fns, reps, sync):
    "Median seconds of each function, called in turn, 2 warm-up rounds."
    times = {k: [] for k in fns}
    for r in range(2 + reps):
        for k, f in fns.items():
            sync(); t0 = time.perf_counter(); f(); sync()
            if r >= 2: times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def ms(t): return f'{t * 1e3:,.3f} ms' if t < 0.01 else f'{t * 1e3:,.1f} ms'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--reps', type=int, default=15)
    ap.add_argument('--threads', default='1,2', help='CPU torch threads to run each size with (default 1,2)')
    ap.add_argument('--quick', action='store_true', help='small sizes, 2 repeats: checks the script')
    ap.add_argument('--broadcast-max-gb', type=float, default=3.0, help='skip broadcasting where [b, B, D] float32 needs more')
    ap.add_argument('--out', default=None)
    a = ap.parse_args()
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == 'cuda' else (lambda: None)
    sizes = [(64, 64, 2), (32, 32, 64), (16, 16, 3072)] if a.quick else \
            [(256, 2048, 2), (2048, 2048, 2), (256, 1024, 64), (64, 64, 3072), (256, 1024, 3072)]
    reps = 2 if a.quick else a.reps
    threads = [0] if dev.type == 'cuda' else [int(t) for t in a.threads.split(',')]
    where = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f'{torch.get_num_threads()} CPU threads available'
    lines = [f'# Benchmark: `string_field` (IFM\'s estimator)', '',
             f'`bench/strings.py` on {a.device} ({where}), torch {torch.__version__}, float32, {time.strftime("%Y-%m-%d")}; '
             f'median of {reps} calls, the three methods called in turn. L = {L:g}, K = {K:g}, sigma = {SIGMA:g} sqrt(D / 3072).', '',
             '| size (b, B, D) | form | threads | broadcast | bare matmuls | `string_field` | broadcast / `string_field` | `string_field` / bare matmuls | float32 angle | broadcast angle | host waits |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for b, B, D in sizes:
        x, z, P, Q = inputs(b, B, D, dev)
        for form in ('exact', 'authors'):
            ref = full(string_field(x.double(), z.double(), P.double(), Q.double(), L, width(D), K, form=form))
            big = b * B * D * 4 / 1e9 > a.broadcast_max_gb
            ang = '-' if big else f'{max_angle(broadcast_strings(x, z, P, Q, form), ref):.1e}'
            ang32 = f'{max_angle(full(hot(x, z, P, Q, form)), ref):.1e}'
            with host_syncs(None if dev.type == 'cpu' else dev.type) as hs: hot(x, z, P, Q, form); sync()
            waits = str(len(hs.calls))
            for th in threads:
                if th: torch.set_num_threads(th)
                fns = {'hot': lambda: hot(x, z, P, Q, form), 'bare': lambda: bare(x, P, Q)}
                if not big: fns['broadcast'] = lambda: broadcast_strings(x, z, P, Q, form)
                t = timed(fns, reps, sync)
                bc = t.get('broadcast')
                vs = f'{bc / t["hot"]:.2f}x' if bc else '-'
                row = (f'| ({b}, {B}, {D}) | {form} | {th or "-"} | {ms(bc) if bc else "skipped"} | {ms(t["bare"])} | {ms(t["hot"])} | '
                       f'{vs} | {t["hot"] / t["bare"]:.2f}x | {ang32} | {ang} | {waits} |')
                print(row, file=sys.stderr, flush=True); lines.append(row)
    lines += ['', 'Ratios of median times (above 1 in the first: `string_field` is faster than broadcasting). '
              '"float32 angle": the hot path\'s largest angle (radians) to a float64 `string_field` of the same inputs. '
              '"broadcast angle": the baseline\'s largest angle (radians) to a float64 `string_field` (the same target). '
              '"host waits": the places where one hot-path call waits for the device '
              '(`efm.field.host_syncs`; on the CPU every tensor counts, standing in for a device).']
    text = '\n'.join(lines) + '\n'
    print(text)
    out = a.out or (None if a.quick else str(ROOT / 'bench' / 'strings_results.md'))
    if out: Path(out).write_text(text)


if __name__ == '__main__':
    main()
