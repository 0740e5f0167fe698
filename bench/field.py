"""Benchmark (not a test): `efm.field.capacitor_field` against the plain broadcasting formula, against its own two bare
matmuls, route against route, and against the code before issue 16; float32 accuracy near charges; the demo's training time.

Run: `.venv/bin/python bench/field.py` (from the repository root; about 15 minutes on 2 cores). Prints markdown and writes
it to `bench/field_results.md`. `--only main,routes,accuracy,pool,demo` runs some of the sections (the file is then not written).

What is compared, in float32 on the CPU, superposition target, the same points and charges throughout:

* `broadcast`: the authors' approach. Every point-charge difference is materialised as a `[b, B, D+1]` tensor per plate,
  distances and weights come from it, the weighted sum is a reduction over it (written in log space, so that it gives the
  right answer at D = 3072 and the methods can be checked against each other).
* `bare matmuls`: the estimator's unavoidable work at image scale, the two matmuls per plate `x @ X.T` (distances) and
  `W @ X` (the weighted sum), nothing else. `capacitor_field` / bare matmuls is how close it runs to its arithmetic.
* `capacitor_field`: the library's estimator. `_plate_sums` takes the direct route (`[D, b, c]` differences, weights as
  powers, no log/exp over `[b, B]`) for D <= `efm.field._DIRECT_D` and the matmul route beyond; the table says which.
* `before`: the same `capacitor_field` with the `_plate_sums` and `_targets` of the commit before issue 16 (copied below
  verbatim, `_plate_sums_before`, `_targets_before`), i.e. the matmul route at every D, as it was. Timed in the same processes.
* Routes forced (`efm.field._direct_up_to`) for D = 1 ... 32: where the crossover lies.

Time: the fastest call of each method, the methods interleaved call by call in one process (per size and thread count) after
a warm-up call each, so that other jobs on a shared machine slow all of them alike; the minimum, not the median, because
other jobs only ever add time. The broadcast runs first, on its own (its gigabytes of temporaries would slow the calls next
to it). "Paired": the median over rounds of capacitor_field / bare matmuls timed back to back. Each timing process waits
(up to 2 min) for a moment when no other job runs, and the table says how many other tasks ran meanwhile on average: with
2 cores, 2 torch threads and another job running, every parallel region waits for a descheduled thread, and the many small
ones of the estimator suffer more than the four big bare matmuls. Processes run with glibc's default allocator.

Peak memory: honest and allocator-independent, at the level of the operating system. Each (method, size) runs in a fresh
subprocess. After its inputs are built and one warm-up call, the process's peak resident-set counter is reset (writing "5"
to /proc/self/clear_refs sets VmHWM back to the current RSS; Linux >= 4.0); the method is called once; the extra peak is
VmHWM afterwards minus VmRSS before. It counts every page the call touched: tensors, temporaries, allocator slack, thread
buffers. These subprocesses (and only these) run with MALLOC_MMAP_THRESHOLD_=65536: every block over 64 KiB is mmap-ed by
glibc and unmapped on free, so RSS follows the live allocations (without it glibc raises its mmap threshold after the
warm-up call frees its blocks, the measured call reuses retained heap, and small peaks read as zero). That setting makes
every large allocation pay its page faults, which is why time is not measured there.

Demo: `efm.cli.swissroll_demo()` (the `efm demo` / `make demo` job, 2000 steps of b = 256 points, B = 2048 charges per plate,
D = 2) in fresh processes, `before` and now alternately, twice each; its `train_seconds`.
"""
import json, math, os, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository, when efm is not installed

SIZES = {  # name: (b points, B charges per plate, D)
    'image': (64, 1024, 3072),
    'toy': (256, 256, 2),
    'demo step': (256, 2048, 2),
    'toy D=8': (256, 2048, 8),
    'toy D=16': (256, 2048, 16),
}
ROUTE_DS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32)
ROUTE_SIZES = ((256, 2048), (64, 256))
POOL = (64, 50_000, 3072)   # a pool of 10^5 charges (5*10^4 per plate) of dimension 3072: capacitor_field only
THREADS = (2, 1)            # torch intra-op threads: the CI machine's 2 cores, and 1
L = 1.0
METHODS = ('broadcast', 'bare matmuls', 'before', 'capacitor_field')


def _plate_sums_before(xo, z, X, zq, logq, n, chunk, shift, dt, name):
    "efm.field._plate_sums as of commit a41cd5a (before issue 16), verbatim: the matmul route at every D."
    import torch
    xf = xo - shift                                                               # centred points, for the matmuls
    b, D = xf.shape
    m = xf.new_full((b,), -math.inf); a = xf.new_zeros(b); S = xf.new_zeros(b, D)
    cl, cd = xf.new_full((b,), -math.inf), xf.new_zeros(b, D)   # the nearest charge so far: log weight, exact x - X_i
    xx, dz2, rows, tiny = xf.pow(2).sum(1), (z - zq).pow(2), torch.arange(b, device=xf.device), torch.finfo(dt).tiny
    for s in range(0, X.shape[0], chunk):
        Xr = X[s:s + chunk].flatten(1)
        Xc = Xr.to(dt) - shift                                                    # [c, D], centred
        XX = torch.linalg.vector_norm(Xc, dim=1).square()                         # one pass, no [c, D] temporary
        if not bool(torch.isfinite(XX).all()): raise ValueError(f'{name} has non-finite values (rows {s}..{s + len(Xr) - 1} of {name} {tuple(X.shape)})')
        r2 = (xx[:, None] + XX[None] - 2 * (xf @ Xc.T)).clamp_min_(0) + dz2[:, None]
        lw = logq[None, s:s + chunk] - 0.5 * n * r2.clamp_min_(tiny).log()       # [b, c]
        k = lw.argmax(1); d = xo - Xr[k].to(dt)                                   # the chunk's nearest, exactly (uncentred)
        lk = logq[s + k] - 0.5 * n * (d.pow(2).sum(1) + dz2).clamp_min(tiny).log()
        lw[rows, k] = -math.inf                                                   # ... and out of the matmul
        m2 = torch.maximum(torch.maximum(m, lk), lw.max(1).values)
        ms = torch.where(torch.isfinite(m2), m2, torch.zeros_like(m2))
        w = torch.exp(lw - ms[:, None]); sc = torch.exp(m - ms); ws = w.sum(1)
        a = a * sc + ws; S = S * sc[:, None] + ws[:, None] * xf - w @ Xc        # rescale, add the chunk
        new = lk > cl                                                             # the loser of the two nearest joins the sums
        wl = torch.exp(torch.where(new, cl, lk) - ms)
        a = a + wl; S = S + wl[:, None] * torch.where(new[:, None], cd, d)
        cl, cd, m = torch.where(new, lk, cl), torch.where(new[:, None], d, cd), m2
    wc = torch.exp(cl - torch.where(torch.isfinite(m), m, torch.zeros_like(m)))
    return m, a + wc, S + wc[:, None] * cd


def _targets_before(z, L, n, sums, mode, gamma):
    "efm.field._targets as of commit a41cd5a, verbatim (log|E| summed in the working precision)."
    import torch
    from efm.field import log_sphere_area
    (mP, aP, SP), (mQ, aQ, SQ) = sums
    M = torch.maximum(mP, mQ); cP, cQ = torch.exp(mP - M), torch.exp(mQ - M)    # one max for both plates
    ux, uz = cP[:, None] * SP - cQ[:, None] * SQ, cP * aP * z - cQ * aQ * (z - L)
    un = (ux.pow(2).sum(1) + uz.pow(2)).sqrt()
    log_norm = M + un.log() - log_sphere_area(n)
    if mode == 'superposition':
        s = torch.where(un > 0, math.sqrt(n) / un, torch.zeros_like(un))          # a point on a charge: no direction, 0
        return ux * s[:, None], uz * s, log_norm
    ex, ez, fx, fz = SP / aP[:, None], z, -SQ / aQ[:, None], L - z                 # E+, E-: softmax means per plate
    sp = math.sqrt(n) / ((ex.pow(2).sum(1) + ez.pow(2)).sqrt() + gamma)
    sq = math.sqrt(n) / ((fx.pow(2).sum(1) + fz.pow(2)).sqrt() + gamma)
    return sp[:, None] * ex + sq[:, None] * fx, sp * ez + sq * fz, log_norm


class _before:
    "Context: efm.field's estimator as before issue 16 (`_plate_sums` and `_targets` of commit a41cd5a)."
    def __enter__(self):
        import efm.field as ef
        self.saved = ef._plate_sums, ef._targets
        ef._plate_sums, ef._targets = _plate_sums_before, _targets_before
    def __exit__(self, *exc):
        import efm.field as ef
        ef._plate_sums, ef._targets = self.saved


def _inputs(b, B, D, seed=0):
    import torch
    g = torch.Generator().manual_seed(seed)
    P, Q = torch.randn(B, D, generator=g), torch.randn(B, D, generator=g) + 0.5
    t = torch.rand(b, generator=g)
    x = (1 - t)[:, None] * P[torch.arange(b) % B] + t[:, None] * Q[(torch.arange(b) * 7) % B] + 0.1 * torch.randn(b, D, generator=g)
    return x, t * L, P, Q


def broadcast_field(x, z, P, Q, L):
    "Superposition target from materialised differences [b, B, D+1] per plate (log-space weights)."
    import torch
    n = x.shape[1] + 1
    pts = torch.cat([x, z[:, None]], 1)
    dP = pts[:, None] - torch.cat([P, torch.zeros(len(P), 1)], 1)[None]               # [b, N, n]
    dQ = pts[:, None] - torch.cat([Q, torch.full((len(Q), 1), L)], 1)[None]           # [b, M, n]
    lP = -n * dP.norm(dim=-1).log() - math.log(len(P))
    lQ = -n * dQ.norm(dim=-1).log() - math.log(len(Q))
    m = torch.maximum(lP.max(1).values, lQ.max(1).values)[:, None]
    u = ((lP - m).exp()[..., None] * dP).sum(1) - ((lQ - m).exp()[..., None] * dQ).sum(1)
    return math.sqrt(n) * u / u.norm(dim=1, keepdim=True)


def _cf(route=None):
    "capacitor_field as now (route None), with the code before issue 16 ('before'), or with one route forced."
    import contextlib
    import efm.field as ef
    def f(x, z, P, Q, L):
        ctx = (contextlib.nullcontext() if route is None else _before() if route == 'before'
               else ef._direct_up_to({'matmul': 0, 'direct': 10**9}[route]))
        with ctx: return ef.capacitor_field(x, z, P, Q, L).flat()
    return f


def _methods(x, z, P, Q):
    import torch
    W = torch.rand(x.shape[0], P.shape[0])
    return {'broadcast': lambda: broadcast_field(x, z, P, Q, L),
            'bare matmuls': lambda: (x @ P.T, W @ P, x @ Q.T, W @ Q),
            'before': lambda: _cf('before')(x, z, P, Q, L),
            'capacitor_field': lambda: _cf()(x, z, P, Q, L)}


def _fastest(fs, rounds, per_round=None):
    "Fastest call of each function, interleaved: `rounds` rounds, each calling every function `per_round[name]` times."
    for f in fs.values(): f()                                          # warm-up: lazy initialisation, thread pools
    best = {k: math.inf for k in fs}
    for _ in range(rounds):
        for k, f in fs.items():
            for _ in range((per_round or {}).get(k, 1)):
                t0 = time.perf_counter(); f(); best[k] = min(best[k], time.perf_counter() - t0)
    return best


def _status(key):
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(key): return int(line.split()[1]) * 1024
    raise RuntimeError(key)


def _cos(a, b): return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).min().item()


def one_time(b, B, D, threads):
    """Fresh process: broadcast timed on its own first (its gigabytes of temporaries would disturb the calls next to it), then
    bare matmuls, before and capacitor_field interleaved call by call, 40 rounds. Fastest call of each, and the median over
    rounds of capacitor_field / bare matmuls within a round (robust to other jobs that come and go). Minimum cosine between
    each method's target and capacitor_field's."""
    import statistics, torch
    torch.set_num_threads(threads)
    import efm.field as ef
    x, z, P, Q = _inputs(b, B, D)
    fs = _methods(x, z, P, Q)
    best = _fastest({'broadcast': fs['broadcast']}, 3 if b * B * D > 10**8 else 20)
    rest = {k: f for k, f in fs.items() if k != 'broadcast'}
    for f in rest.values(): f()
    times = {k: [] for k in rest}
    for _ in range(40):
        for k, f in rest.items():
            t0 = time.perf_counter(); f(); times[k].append(time.perf_counter() - t0)
    best.update({k: min(v) for k, v in times.items()})
    paired = statistics.median(c / m for c, m in zip(times['capacitor_field'], times['bare matmuls']))
    ref = fs['capacitor_field']()
    cos = {k: _cos(fs[k](), ref) for k in ('broadcast', 'before')}
    return dict(time=best, paired=paired, cos=cos, threads=torch.get_num_threads(), route='direct' if D <= ef._DIRECT_D else 'matmul', direct_d=ef._DIRECT_D)


def one_memory(method, b, B, D):
    "Fresh process (MALLOC_MMAP_THRESHOLD_ set by the caller): extra peak RSS of one call after a warm-up."
    import torch
    torch.set_num_threads(2)
    x, z, P, Q = _inputs(b, B, D)
    f = _methods(x, z, P, Q)[method]
    f()
    Path('/proc/self/clear_refs').write_text('5')
    rss0 = _status('VmRSS:')
    f()
    return dict(peak=_status('VmHWM:') - rss0, total_peak=_status('VmHWM:'))


def one_routes(b, B, threads):
    "Fresh process: capacitor_field with each route forced, D = 1 ... 32."
    import torch
    torch.set_num_threads(threads)
    import efm.field as ef
    out = {}
    for D in ROUTE_DS:
        x, z, P, Q = _inputs(b, B, D)
        out[D] = _fastest({r: (lambda r=r: _cf(r)(x, z, P, Q, L)) for r in ('direct', 'matmul')}, 20)
    return dict(times=out, direct_d=ef._DIRECT_D)


def one_pool(b, B, D):
    import torch
    torch.set_num_threads(2)
    x, z, P, Q = _inputs(b, B, D)
    f = _methods(x, z, P, Q)['capacitor_field']
    f()
    Path('/proc/self/clear_refs').write_text('5')
    rss0 = _status('VmRSS:')
    t0 = time.perf_counter(); f(); t = time.perf_counter() - t0
    return dict(time=t, peak=_status('VmHWM:') - rss0, total_peak=_status('VmHWM:'))


def _naive_field(x, z, P, Q, L):
    "E [b, D+1] and log|E| [b] in float64 straight from Coulomb's law (differences materialised): the oracle."
    import torch
    from efm.field import coulomb_field
    f64 = torch.float64
    pts = torch.cat([x.double(), z.double()[:, None]], 1)
    ch = torch.cat([torch.cat([P.double(), torch.zeros(len(P), 1, dtype=f64)], 1), torch.cat([Q.double(), torch.full((len(Q), 1), L, dtype=f64)], 1)])
    q = torch.cat([torch.full((len(P),), 1 / len(P), dtype=f64), torch.full((len(Q),), -1 / len(Q), dtype=f64)])
    E = coulomb_field(pts, ch, q)
    return E, E.norm(dim=1).log()


def _errors(F, E, lE):
    u = F.flat().double(); u = u / u.norm(dim=1, keepdim=True)
    l = F.log_norm.double()
    return ((u - E / E.norm(dim=1, keepdim=True)).norm(dim=1).max().item(), (l - lE).abs().max().item(),
            ((l - lE).abs() / lE.abs().clamp_min(1)).max().item())


def one_accuracy():
    """Float32 near charges (the notebook's check: P = N(0, I), Q = N(3, I), 2048 charges each, 200 points 1e-5..1e-3 from
    charges of either plate, 3 seeds) and float64 at random points, against the naive float64 sum of the same numbers."""
    import contextlib, torch
    import efm.field as ef
    def run(route, fn):
        ctx = (contextlib.nullcontext() if route == 'now' else _before() if route == 'before'
               else ef._direct_up_to({'matmul': 0, 'direct': 10**9}[route]))
        with ctx: return fn()
    near, f64 = {}, {}
    for D in range(1, 9):
        for seed in range(3):
            g = torch.Generator().manual_seed(seed)
            B, b = 2048, 200
            P, Q = torch.randn(B, D, generator=g), torch.randn(B, D, generator=g) + 3
            C = torch.cat([torch.cat([P, torch.zeros(B, 1)], 1), torch.cat([Q, torch.full((B, 1), L)], 1)])
            u = torch.randn(b, D + 1, generator=g); u = u / u.norm(dim=1, keepdim=True)
            p = C[torch.randint(2 * B, (b,), generator=g)] + 10 ** (-5 + 2 * torch.rand(b, 1, generator=g)) * u
            x, z = p[:, :D].contiguous(), p[:, D].contiguous()
            E, lE = _naive_field(x, z, P, Q, L)
            for route in ('before', 'matmul', 'direct', 'now'):
                e = _errors(run(route, lambda: ef.capacitor_field(x, z, P, Q, L)), E, lE)
                near[route, D] = tuple(max(a, c) for a, c in zip(e, near.get((route, D), (0, 0, 0))))
    for D in (1, 2, 3, 5, 8, 16, 64):
        g = torch.Generator().manual_seed(D)
        x, z = 2 * torch.randn(100, D, generator=g, dtype=torch.float64), 3 * torch.rand(100, generator=g, dtype=torch.float64) - 1
        P, Q = torch.randn(80, D, generator=g, dtype=torch.float64), torch.randn(60, D, generator=g, dtype=torch.float64) + 1
        E, lE = _naive_field(x, z, P, Q, L)
        for route in ('matmul', 'direct', 'now'):
            e = _errors(run(route, lambda: ef.capacitor_field(x, z, P, Q, L)), E, lE)
            f64[route, D] = (e[0], e[2])
    return dict(near={f'{r}|{D}': v for (r, D), v in near.items()}, f64={f'{r}|{D}': v for (r, D), v in f64.items()})


def one_demo(route):
    "Fresh process: the demo (efm.cli.swissroll_demo, default settings), with the estimator as now or as before."
    import efm.field as ef
    from efm.cli import swissroll_demo
    if route == 'before': _before().__enter__()
    with tempfile.TemporaryDirectory() as out:
        r = swissroll_demo(out=out, show_progress=False)
    return dict(train_seconds=r.train_seconds, w2=r.w2, w2_ground_truth=r.w2_ground_truth)


def _running():
    "Tasks running or runnable right now, this one excluded (/proc/loadavg)."
    return int(Path('/proc/loadavg').read_text().split()[3].split('/')[0]) - 1


def _quiet(max_wait=120):
    "Wait (at most max_wait s) for a moment when no other job runs: /proc/loadavg's running count, sampled over 2 s."
    t0 = time.time()
    while time.time() - t0 < max_wait:
        busy = []
        for _ in range(10): busy.append(_running()); time.sleep(0.2)
        if sum(busy) / len(busy) <= 0.3: break


def _sub(*args, memory=False, threads=None):
    """Run `--one args` in a fresh process; its JSON result. With `threads`: wait for a quiet moment first, and record the
    mean number of other tasks running while it ran (sampled every 0.2 s, its own threads subtracted) as 'others'."""
    env = dict(os.environ)
    if memory: env['MALLOC_MMAP_THRESHOLD_'] = '65536'   # fixed threshold: big blocks always mmap-ed, returned on free
    if threads: _quiet()
    p = subprocess.Popen([sys.executable, __file__, '--one', *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    busy = []
    while p.poll() is None:
        busy.append(max(0, _running() - (threads or 0))); time.sleep(0.2)
    out, err = p.communicate()
    if p.returncode: raise RuntimeError(err)
    r = json.loads(out.strip().splitlines()[-1])
    if threads and isinstance(r, dict): r['others'] = sum(busy) / max(len(busy), 1)
    return r


def _mb(x): return f'{x / 2**20:,.1f} MB'
def _ms(x): return f'{x * 1e3:,.2f} ms'


def main_table():
    rows = ['| size (b, B, D) | threads | others running | route | broadcast | bare matmuls | before | `capacitor_field` | vs broadcast | vs bare matmuls (paired) | vs before |',
            '|---|---|---|---|---|---|---|---|---|---|---|']
    notes, res = [], {}
    for th in THREADS:
        for name, (b, B, D) in SIZES.items():
            r = res[name, th] = _sub('time', b, B, D, th, threads=th)
            t = r['time']; cf = t['capacitor_field']
            rows.append(f"| {name} ({b}, {B}, {D}) | {th} | {r['others']:.1f} | {r['route']} | {_ms(t['broadcast'])} | {_ms(t['bare matmuls'])} | {_ms(t['before'])} | {_ms(cf)} "
                        f"| **{t['broadcast'] / cf:,.1f}x faster** | **{cf / t['bare matmuls']:,.2f}x the time** ({r['paired']:.2f}x) | {t['before'] / cf:,.2f}x faster |")
            notes.append(f"{name}, {th} thread(s): min cosine to `capacitor_field`'s target: broadcast {r['cos']['broadcast']:.7f}, before {r['cos']['before']:.7f}")
    mem = ['| size (b, B, D) | broadcast | before | `capacitor_field` | memory ratio vs broadcast |', '|---|---|---|---|---|']
    for name, (b, B, D) in SIZES.items():
        p = {m: _sub('memory', m, b, B, D, memory=True)['peak'] for m in ('broadcast', 'before', 'capacitor_field')}
        ge = '>= ' if p['capacitor_field'] < 4096 else ''                 # below one page: the ratio is a lower bound
        mem.append(f"| {name} ({b}, {B}, {D}) | {_mb(p['broadcast'])} | {_mb(p['before'])} | {_mb(p['capacitor_field'])} "
                   f"| **{ge}{p['broadcast'] / max(p['capacitor_field'], 4096):,.1f}x less** |")
        res[name, 'mem'] = p
    return rows, mem, notes, res


def routes_table():
    out = []
    for th in THREADS:
        for b, B in ROUTE_SIZES:
            r = _sub('routes', b, B, th, threads=th)
            out.append((th, b, B, r['direct_d'], {int(D): v for D, v in r['times'].items()}))
    rows = ['| threads | b, B | ' + ' | '.join(f'D={D}' for D in ROUTE_DS) + ' |', '|---|---|' + '---|' * len(ROUTE_DS)]
    for th, b, B, direct_d, r in out:
        cells = []
        for D in ROUTE_DS:
            d, m = r[D]['direct'], r[D]['matmul']
            taken = 'direct' if D <= direct_d else 'matmul'
            mark = '' if (d <= m) == (taken == 'direct') else ' (!)'
            cells.append(f"{d * 1e3:.2f} / {m * 1e3:.2f}{mark}")
        rows.append(f'| {th} | {b}, {B} | ' + ' | '.join(cells) + ' |')
    faster = {D: sum(r[D]['direct'] <= r[D]['matmul'] for *_, r in out) for D in ROUTE_DS}
    return rows, out, faster


def accuracy_table():
    a = _sub('accuracy')
    near = {tuple(k.split('|')): v for k, v in a['near'].items()}
    rows = ['| D | before: direction / log\\|E\\| (abs) | matmul route | direct route | `capacitor_field` now |', '|---|---|---|---|---|']
    for D in range(1, 9):
        rows.append(f'| {D} | ' + ' | '.join(f"{near[r, str(D)][0]:.1e} / {near[r, str(D)][1]:.1e}" for r in ('before', 'matmul', 'direct', 'now')) + ' |')
    f64 = {tuple(k.split('|')): v for k, v in a['f64'].items()}
    worst64 = {r: max(max(v) for (rr, _), v in f64.items() if rr == r) for r in ('matmul', 'direct', 'now')}
    return rows, near, worst64


def demo_rows():
    runs = []
    for route in ('before', 'now', 'before', 'now'):
        runs.append((route, _sub('demo', route, threads=2)))
    rows = ['| run | estimator | others running | training seconds | W2(mapped, target) | W2 ground-truth field |', '|---|---|---|---|---|---|']
    for i, (route, r) in enumerate(runs, 1):
        rows.append(f"| {i} | {route} | {r['others']:.1f} | {r['train_seconds']:.1f} s | {r['w2']:.3f} | {r['w2_ground_truth']:.3f} |")
    best = {route: min(r['train_seconds'] for rr, r in runs if rr == route) for route in ('before', 'now')}
    return rows, best


def main(only=None):
    want = lambda s: only is None or s in only
    load0, t0 = os.getloadavg(), time.time()
    parts = []
    if want('main'):
        rows, mem, notes, res = main_table()
        parts += ['## Time: `capacitor_field` against broadcasting, its bare matmuls and the code before\n',
                  'Fastest call, methods interleaved in one process per row. "others running": the mean number of tasks of other jobs running meanwhile (2 cores; each row waits up to 2 min for a quiet moment before it starts). "(paired)": the median over 40 rounds of the ratio within a round. "route": the one `_plate_sums` takes at that D. '
                  '"before": `capacitor_field` with `_plate_sums` and `_targets` as before issue 16 (the matmul route everywhere).\n',
                  '\n'.join(rows), '', '\n'.join(f'* {n}' for n in notes), '',
                  '## Peak extra memory of one call\n', '\n'.join(mem), '']
    if want('routes'):
        rows, out, faster = routes_table()
        dd = out[0][3]
        parts += ['## The crossover: both routes forced\n',
                  '`capacitor_field` time, direct route / matmul route (ms), fastest of 20 interleaved calls. '
                  f'`_plate_sums` takes the direct route for D <= {dd} (`efm.field._DIRECT_D`); "(!)" marks a cell where the other route was faster.\n',
                  '\n'.join(rows), '',
                  'Direct route faster in how many of the ' + f'{len(out)} settings: ' + ', '.join(f'D={D}: {k}' for D, k in faster.items()) + '.', '']
    if want('accuracy'):
        rows, near, worst64 = accuracy_table()
        parts += ['## Float32 accuracy near charges\n',
                  'P = N(0, I), Q = N(3, I), 2048 charges each, L = 1, 200 float32 points 1e-5 ... 1e-3 from charges of either plate, 3 seeds; '
                  'max direction error |u - u_ref| and max |log|E| - log|E_ref|| against the naive float64 sum of the same float32 numbers '
                  '(log|E| is of order 10-100 here, where a float32 rounding step is 1e-6 to 8e-6).\n',
                  '\n'.join(rows), '',
                  f"Float64, random points, D = 1 ... 64, against the same oracle: worst direction / relative log|E| error "
                  + ', '.join(f'{r} {v:.1e}' for r, v in worst64.items()) + '.', '']
    if want('pool'):
        b, B, D = POOL
        pl = _sub('pool', b, B, D, memory=True)
        parts += ['## A pool of 10^5 charges\n',
                  f"b = {b}, B = {B:,} per plate, D = {D}, 2 threads, `capacitor_field` (chunked): {pl['time'] * 1e3:,.0f} ms (one call, in the memory process), "
                  f"peak extra memory {_mb(pl['peak'])}; process peak RSS {_mb(pl['total_peak'])} in all (inputs {_mb(2 * B * D * 4)}); "
                  f"broadcasting would need {_mb(4 * b * B * (D + 1) * 2)} for the differences alone.", '']
    if want('demo'):
        rows, best = demo_rows()
        parts += ['## The demo\n', '`efm.cli.swissroll_demo()` with default settings, `before` and now alternately, each in a fresh process.\n',
                  '\n'.join(rows), '',
                  f"Training: {best['before']:.1f} s before, {best['now']:.1f} s now (fastest of two each): {best['before'] / best['now']:.2f}x faster.", '']
    load1 = os.getloadavg()
    head = (f"`bench/field.py` on {os.cpu_count()} CPU cores, load average {load0[0]:.1f} at the start and {load1[0]:.1f} at the end "
            f"(other jobs share the machine: compare ratios within a row, not absolute times), {(time.time() - t0) / 60:.0f} min, "
            f"float32, superposition target.\n")
    text = head + '\n' + '\n'.join(parts) + '\n'
    print(text)
    if only is None: (Path(__file__).parent / 'field_results.md').write_text('# Benchmark: `capacitor_field`\n\n' + text)


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--one':
        kind, args = sys.argv[2], sys.argv[3:]
        if kind == 'time': out = one_time(*map(int, args))
        elif kind == 'memory': out = one_memory(args[0], *map(int, args[1:]))
        elif kind == 'routes': out = one_routes(*map(int, args))
        elif kind == 'pool': out = one_pool(*map(int, args))
        elif kind == 'accuracy': out = one_accuracy()
        elif kind == 'demo': out = one_demo(args[0])
        print(json.dumps(out))
    elif len(sys.argv) > 2 and sys.argv[1] == '--only':
        main(set(sys.argv[2].split(',')))
    else:
        main()
