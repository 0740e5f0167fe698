"""Benchmark (not a test): efm on one GPU. The field estimator against its bare matmuls and against broadcasting, the two
routes forced, the paper UNet's training step in fp32 / bf16 / channels_last / torch.compile, the toy step on the GPU
against the CPU, and where a preset's step spends its time.

Run on the lent GPU machine (`.device/` prepared by `bash ../shared/device/prepare.sh`, carried with the tree):

    bash .device/on_device.sh python3 bench/gpu.py

about 7 minutes on an H200 (each section has a time budget; optional work such as compiles is skipped, with a note,
when its section runs out). Prints markdown and writes it to `bench/gpu_results.md` after every section (a copy also goes
to `$OUT/gpu_results.md` where the device tool's `$OUT` folder exists). `--only field,routes,unet,toy,shares` runs some
sections; with `--only` or `--quick` the committed file is only written when `--out` is given.

On a machine without a GPU: `.venv/bin/python bench/gpu.py --device cpu --quick --out /tmp/gpu_quick.md` runs every
section at tiny sizes with 2 timed repeats in well under two minutes. It checks that the script works; its numbers mean
nothing (on the CPU, `train` ignores `amp`, so the "bf16" rows run in fp32, and compiling uses the 'eager' backend).

What is measured, each figure against a baseline measured in the same run:

1. field: `capacitor_field(..., check=False)` (the hot path of training, superposition mode), `capacitor_field(...)`
   (checked, the public default), the hot path under `torch.compile(fullgraph=True, dynamic=False)` (compile time apart),
   the bare matmuls `(x @ P.T, W @ P, x @ Q.T, W @ Q)` and broadcasting (every difference `[b, B, D+1]` materialised,
   log-space weights, as `bench/field.py`'s `broadcast_field`; skipped where it would need more than ~40 GB). Median of
   20 calls after 3 warm-up calls, the methods interleaved call by call, `torch.cuda.synchronize()` around each call,
   float32 with TF32 off. The hot path's largest angle to a float64 `capacitor_field` of the same inputs, and the host's
   waits in one hot-path call (`efm.field.host_syncs`; 0 expected on CUDA).
2. routes: the hot path with the direct route forced (`use_plan(device, direct_D=10**9)`) and the matmul route forced
   (`direct_D=0`), D = 1 ... 32, at two sizes; the largest D at which the direct route is at least as fast at both sizes
   is the suggested `PLANS['cuda'].direct_D`.
3. unet: images/s of the paper UNet's training step (58.7M parameters, per-plate target over B = 1024 charges per plate),
   measured through `efm.training.train` itself: one run per variant (fresh copy of the same initial weights) of
   2T + K steps with `log_every = T`, so the losses are read at steps T and 2T only. The source of P notes when its
   (T+1)-th and (2T+1)-th draws begin (the first thing of a step; the read before it has just waited for the device):
   the time between is T steps, the first T steps (compile included) are the warm-up. The last K steps run under
   `host_syncs`: the host's waits per step (the final read of the losses among them).
4. toy: steps/s of the `toy-swissroll` preset (FieldMLP(2), b = 256, B = 2048) through `train` as in 3, on the GPU and on
   this machine's CPU (with the process's torch threads, and with every core).
5. shares: a hand-written step that mirrors `train`'s loop line by line (`_draw`, `objective.batch`, bf16 autocast forward,
   `efm_loss`, backward, clipping, fused Adam, schedule, `ema_update`) for the presets `cmnist-gen`, `cmnist-3to2` and
   `cifar10` (CIFAR-10 replaced by random uint8 images of its shape, drawn as `cifar10_sampler` draws), with
   `torch.cuda.synchronize()` between the parts: the share of a step in drawing samples, building the target and the
   network. Those synchronisations are waits a real step does not have, so the step is also timed without them.
"""
import argparse, contextlib, copy, datetime, gc, math, os, platform, signal, statistics, subprocess, sys, time, traceback, warnings
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository, when efm is not installed
import torch
import torch.nn.functional as F

import efm
from efm.capacitor import Capacitor
from efm.cli import PRESETS
from efm.data import ImageSampler, gaussian_images
from efm.field import capacitor_field, host_syncs, plan_for, use_plan
from efm.models import FieldUNet, n_params
from efm.training import Sampler, TrainConfig, _draw, _LossLog, efm_loss, ema_update, lr_factor, train

L = 1.0                                   # plate separation of the field benchmarks
FIELD_SIZES = [  # (b points, B charges per plate, D) on the GPU, and the stand-in of --quick
    ((64, 1024, 3072), (8, 64, 3072)), ((256, 4096, 3072), (16, 128, 3072)), ((1024, 16384, 3072), (32, 256, 3072)),
    ((1024, 8192, 784), (32, 128, 784)), ((256, 2048, 2), (16, 128, 2)), ((256, 2048, 8), (16, 128, 8)),
    ((4096, 16384, 2), (64, 256, 2))]
FIELD_TARGETS = {(1024, 16384, 3072): 1.5, (64, 1024, 3072): 3.0}   # hot path / bare matmuls at most this
BROADCAST_MAX = 40e9                      # bytes: b B (D+1) 4 bytes x ~4 temporaries, beyond which broadcasting is skipped
ROUTE_DS = (1, 2, 3, 4, 5, 6, 8, 12, 16, 32)
ROUTE_SIZES, ROUTE_SIZES_QUICK = ((256, 2048), (4096, 16384)), ((16, 128), (64, 256))
UNET_B, UNET_B_QUICK, UNET_CHARGES = (128, 64, 256), (4, 2), 1024   # b=128 first: its target is the one that counts
SHARE_PRESETS = ('cmnist-gen', 'cmnist-3to2', 'cifar10')
SECTIONS = ('field', 'routes', 'unet', 'toy', 'shares')
BUDGET = dict(field=110, routes=25, unet=230, toy=20, shares=40)   # seconds on an H200, 425 in all
TOTAL = 450                               # seconds: the whole run stays under 7.5 min


# ---------------------------------------------------------------------------------------------------- timing helpers
class Overtime(Exception): "A step of the benchmark ran past its section's budget."


@contextlib.contextmanager
def _alarm(seconds):
    "Raise `Overtime` in the main thread after `seconds` (a compile that would take the run past its budget)."
    def handler(*_): raise Overtime(f'stopped after {seconds:.0f} s (the section budget)')
    old = signal.signal(signal.SIGALRM, handler); signal.setitimer(signal.ITIMER_REAL, max(1.0, seconds))
    try: yield
    finally: signal.setitimer(signal.ITIMER_REAL, 0); signal.signal(signal.SIGALRM, old)


class Clock:
    "Time left to the run and to the current section."
    def __init__(self, total, budgets, scale=1.0):
        self.t0, self.end, self.budgets, self.scale = time.perf_counter(), time.perf_counter() + total * scale, budgets, scale
    def start(self, name, later):
        "Open section `name`; `later` sections still to run keep 15 s each."
        now = time.perf_counter()
        self.section_end = min(now + self.budgets[name] * self.scale, self.end - 15 * later * self.scale)
    def left(self): return self.section_end - time.perf_counter()
    def elapsed(self): return time.perf_counter() - self.t0


def _sync(device):
    return (lambda: torch.cuda.synchronize(device)) if device.type == 'cuda' else (lambda: None)


def _interleaved(fns, reps, warm, sync, reps_of=None):
    "Median seconds of each function over `reps` calls after `warm` calls, the functions called in turn, synchronised around each call."
    times = {k: [] for k in fns}
    for r in range(warm + max([reps, *(reps_of or {}).values()])):
        for k, f in fns.items():
            if r >= warm + (reps_of or {}).get(k, reps): continue
            sync(); t0 = time.perf_counter(); f(); sync()
            if r >= warm: times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _free(device):
    gc.collect()
    if device.type == 'cuda': torch.cuda.empty_cache()


def _ms(t): return '-' if t is None else f'{t * 1e3:,.3f} ms' if t < 0.01 else f'{t * 1e3:,.1f} ms'
def _x(r): return '-' if r is None else f'{r:,.2f}x'
def _ok(c): return '✓' if c else '✗'
def _log(*a): print(*a, file=sys.stderr, flush=True)   # progress: stdout holds the markdown alone
def _short(e): return f'{type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ""}'


# ---------------------------------------------------------------------------------------------------- 1. the field table
def _inputs(b, B, D, device, seed=0):
    "bench/field.py's `_inputs` on the device: P ~ N(0, I), Q ~ N(0.5, I), points near segments between paired charges."
    g = torch.Generator(device).manual_seed(seed)
    rn = lambda *s: torch.randn(*s, generator=g, device=device)
    P, Q = rn(B, D), rn(B, D) + 0.5
    t, i = torch.rand(b, generator=g, device=device), torch.arange(b, device=device)
    x = (1 - t)[:, None] * P[i % B] + t[:, None] * Q[(i * 7) % B] + 0.1 * rn(b, D)
    return x, t * L, P, Q


def broadcast_field(x, z, P, Q, L):
    "bench/field.py's `broadcast_field` on any device: differences [b, B, D+1] per plate materialised, log-space weights."
    n = x.shape[1] + 1
    pts = torch.cat([x, z[:, None]], 1)
    def plate(C, zc):
        d = pts[:, None] - F.pad(C, (0, 1), value=zc)[None]                          # [b, B, n]
        return d, -n * d.norm(dim=-1).log() - math.log(len(C))
    (dP, lP), (dQ, lQ) = plate(P, 0.0), plate(Q, L)
    m = torch.maximum(lP.amax(1), lQ.amax(1))[:, None]
    u = ((lP - m).exp()[..., None] * dP).sum(1) - ((lQ - m).exp()[..., None] * dQ).sum(1)
    return math.sqrt(n) * u / u.norm(dim=1, keepdim=True)


def _max_angle(a, b):
    "Largest angle (radians) between rows of a and b, in float64 (2 atan2(|u-v|, |u+v|): exact for small angles)."
    a, b = a.double(), b.double()
    u, v = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    return (2 * torch.atan2((u - v).norm(dim=1), (u + v).norm(dim=1))).max().item()


def _broadcast_limit(device):
    if device.type == 'cuda': return min(BROADCAST_MAX, 0.8 * torch.cuda.mem_get_info(device)[0])
    avail = next((int(l.split()[1]) * 1024 for l in Path('/proc/meminfo').read_text().splitlines() if l.startswith('MemAvailable')), 8e9)
    return min(BROADCAST_MAX, 0.5 * avail)


def section_field(device, quick, clock, backend):
    sync, reps, warm, dt = _sync(device), (2 if quick else 20), (1 if quick else 3), device.type
    # fullgraph needs a path with no host waits: on a CPU that is the device path (`use_plan('cpu', host=False)`)
    dev_path = (lambda: use_plan('cpu', host=False)) if dt == 'cpu' else contextlib.nullcontext
    rows, notes, compile_est = [], [], 30.0
    for full, small in FIELD_SIZES:
        b, B, D = small if quick else full
        label = f'({b}, {B}, {D})' + (f' for {full}' if quick else '')
        try:
            x, z, P, Q = _inputs(b, B, D, device)
            W = torch.rand(b, B, device=device)
            hot = lambda: capacitor_field(x, z, P, Q, L, check=False)
            fns = {'hot': hot, 'checked': lambda: capacitor_field(x, z, P, Q, L),
                   'bare': lambda: (x @ P.T, W @ P, x @ Q.T, W @ Q)}
            need = b * B * (D + 1) * 4 * 4
            if need <= _broadcast_limit(device): fns['broadcast'] = lambda: broadcast_field(x, z, P, Q, L)
            else: notes.append(f'{label}: broadcasting skipped (about {need / 1e9:,.0f} GB)')
            comp, compile_s, comp_note = None, None, ''
            if clock.left() > 1.5 * compile_est + 10:
                torch._dynamo.reset()
                cf = torch.compile(lambda x, z, P, Q: capacitor_field(x, z, P, Q, L, check=False), fullgraph=True, dynamic=False, backend=backend)
                try:
                    with _alarm(min(60, clock.left() - 5)), dev_path():
                        sync(); t0 = time.perf_counter(); cf(x, z, P, Q); sync(); compile_s = time.perf_counter() - t0
                    compile_est = compile_s                                   # the next size's compile costs about as much
                    def comp():
                        with dev_path(): return cf(x, z, P, Q)
                    fns['compiled'] = comp
                except Exception as e: comp_note = f'compile failed: {_short(e)}'
            else: comp_note = 'compile skipped (section budget)'
            if comp_note: notes.append(f'{label}: {comp_note}')
            big = need > 2e9                                          # broadcasting at gigabytes: 5 calls are enough
            t = _interleaved(fns, reps, warm, sync, reps_of={'broadcast': min(reps, 5)} if big else None)
            with host_syncs(None if x.device.type == 'cpu' else x.device.type) as hs: hot(); sync()   # on a GPU: its tensors' waits
            ref = capacitor_field(x.double(), z.double(), P.double(), Q.double(), L)
            angle = _max_angle(hot().flat(), ref.flat())
            angle_c = _max_angle(comp().flat(), ref.flat()) if comp else None
            if 'broadcast' in fns: notes.append(f'{label}: broadcasting vs float64, max angle {_max_angle(broadcast_field(x, z, P, Q, L), ref.flat()):.1e} rad')
            route = 'direct' if D <= plan_for(device).direct_D else 'matmul'
            r_bare, r_bc = t['hot'] / t['bare'], (t['broadcast'] / t['hot'] if 'broadcast' in t else None)
            flags = []
            if full in FIELD_TARGETS: flags.append(f'≤{FIELD_TARGETS[full]:g}x bare {_ok(r_bare <= FIELD_TARGETS[full])}')
            if r_bc is not None: flags.append(f'faster than broadcast {_ok(r_bc > 1)}')
            rows.append(f"| {label} | {route} | {_ms(t['hot'])} | {_ms(t['checked'])} | {_ms(t.get('compiled'))} "
                        f"| {'-' if compile_s is None else f'{compile_s:.1f} s'} | {_ms(t['bare'])} | {_ms(t.get('broadcast'))} "
                        f"| **{_x(r_bare)}** | {_x(r_bc)} | {_x(t['compiled'] / t['hot']) if 'compiled' in t else '-'} "
                        f"| {angle:.1e}{'' if angle_c is None else f' ({angle_c:.1e})'} | {len(hs)} | {', '.join(flags) or '-'} |")
            if len(hs): notes.append(f'{label}: host waits of one hot-path call: {hs.where()}')
        except Exception as e:
            rows.append(f'| {label} | failed: {_short(e)} |' + ' |' * 12)
            traceback.print_exc()
        finally:
            x = z = P = Q = W = fns = None; torch._dynamo.reset(); _free(device)
        _log(rows[-1])
    head = ('| size (b, B, D) | route | hot path | checked | compiled | compile (first call) | bare matmuls | broadcasting '
            '| hot / bare | broadcast / hot | compiled / hot | max angle to float64, rad (compiled) | host waits, one hot call | targets |')
    text = ['## 1. The field: `capacitor_field` against its bare matmuls and broadcasting\n',
            f'float32, TF32 off, superposition mode, L = {L}; median of {reps} calls after {warm} warm-up calls, methods interleaved '
            'call by call, synchronised around each call. hot path: `capacitor_field(..., check=False)`; checked: `capacitor_field(...)`; '
            f'compiled: the hot path under `torch.compile(fullgraph=True, dynamic=False, backend={backend!r})`, its first call (compile) timed apart'
            + (' (on the CPU under `use_plan(\'cpu\', host=False)`: fullgraph needs the path without host waits)' if dt == 'cpu' else '')
            + '; bare matmuls: `(x @ P.T, W @ P, x @ Q.T, W @ Q)`; broadcasting: differences `[b, B, D+1]` materialised. '
            'Angle: float32 hot path against `capacitor_field` in float64 on the same inputs. Host waits: `efm.field.host_syncs` '
            'over one hot-path call (0 expected on CUDA). Targets: hot path <= 1.5x the bare matmuls at (1024, 16384, 3072), '
            '<= 3x at (64, 1024, 3072), faster than broadcasting wherever it ran.\n',
            head, '|' + '---|' * 14, *rows, '', *[f'* {n}' for n in notes], '']
    return '\n'.join(text)


# ---------------------------------------------------------------------------------------------------- 2. routes forced
def section_routes(device, quick, clock):
    sync, reps, warm, dt = _sync(device), (2 if quick else 20), (1 if quick else 3), device.type
    sizes, res = (ROUTE_SIZES_QUICK if quick else ROUTE_SIZES), {}
    for D in ROUTE_DS:
        for b, B in sizes:
            if clock.left() < 0: break
            x, z, P, Q = _inputs(b, B, D, device)
            def forced(direct_D):
                def f():
                    with use_plan(dt, direct_D=direct_D): return capacitor_field(x, z, P, Q, L, check=False)
                return f
            res[D, b, B] = _interleaved({'direct': forced(10**9), 'matmul': forced(0)}, reps, warm, sync)
            del x, z, P, Q; _free(device)
    cols = ' | '.join(f'direct / matmul at ({b}, {B})' for b, B in sizes)
    rows = [f'| D | {cols} | direct at least as fast at both |', '|---|' + '---|' * (len(sizes) + 1)]
    wins = {}
    for D in ROUTE_DS:
        if not all((D, b, B) in res for b, B in sizes): rows.append(f'| {D} | skipped (section budget) |' + ' |' * len(sizes)); continue
        cells = [f"{_ms(res[D, b, B]['direct'])} / {_ms(res[D, b, B]['matmul'])}" for b, B in sizes]
        wins[D] = all(res[D, b, B]['direct'] <= res[D, b, B]['matmul'] for b, B in sizes)
        rows.append(f'| {D} | ' + ' | '.join(cells) + f' | {"yes" if wins[D] else "no"} |')
    won = [D for D, w in wins.items() if w]
    largest, now = max(won, default=0), plan_for(device).direct_D
    gaps = [D for D in wins if D < largest and not wins[D]]
    says = (f'Suggested `PLANS[{dt!r}].direct_D` = **{largest}**: the largest D at which the direct route was at least as fast at both sizes '
            f'(it was at D = {", ".join(map(str, won)) or "none"}; the plan now says {now})'
            + (f'. Not at D = {", ".join(map(str, gaps))} below it: the crossover is not clean there' if gaps else '') + '.')
    _log(says)
    return '\n'.join(['## 2. Routes forced: direct against matmul\n',
                      f'The hot path with `use_plan({dt!r}, direct_D=10**9)` (direct) and `direct_D=0` (matmul), float32, median of {reps} '
                      f'interleaved calls after {warm} warm-up calls.\n', *rows, '', says, ''])


# ---------------------------------------------------------------------------------------------------- train, timed from the inside
class _Probe:
    "A source that notes when its calls number `marks` begin (`train` draws P first in a step), and may run a hook there."
    def __init__(self, src, device, hooks):
        self.src, self.sync, self.hooks, self.calls, self.t = src, _sync(device), hooks, 0, {}
        self.draws_on_device = getattr(src, 'draws_on_device', False)
    def __call__(self, n, generator=None):
        self.calls += 1
        if self.calls in self.hooks:
            self.sync(); self.t[self.calls] = time.perf_counter(); self.hooks[self.calls]()
        return self.src(n, generator=generator)


def _train_rate(model, P, Q, obj, cfg, T, K, device, alarm=None):
    """Run `train` for 2T + K steps with `log_every = T`: (seconds per step over steps T+1 ... 2T, seconds of the first T
    steps, host waits over the last K steps or None, warnings about compiling)."""
    cfg = replace(cfg, steps=2 * T + K, log_every=T)
    stack, box = contextlib.ExitStack(), {}
    def start_count(): box['hs'] = stack.enter_context(host_syncs(None if torch.device(device).type == 'cpu' else torch.device(device).type))
    probe = _Probe(P, device, {T + 1: lambda: None, 2 * T + 1: start_count if K else (lambda: None)})
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        t0 = time.perf_counter()
        try:
            with (_alarm(alarm) if alarm else contextlib.nullcontext()):
                with stack: train(model, probe, Q, obj, cfg, show_progress=False)
        finally: t1 = time.perf_counter()
    tT, t2T = probe.t[T + 1], probe.t.get(2 * T + 1, t1)
    fallback = [str(w.message)[:200] for w in ws if 'torch.compile' in str(w.message)]
    hs = box.get('hs')
    return (t2T - tT) / T, tT - t0, (None if hs is None else hs), fallback


def _device_images(shape=(3, 32, 32)):
    "Synthetic images in [-1, 1] drawn on the generator's device (the plate Q of the UNet step)."
    def sample(n, generator=None):
        return torch.rand(n, *shape, generator=generator, device=None if generator is None else generator.device) * 2 - 1
    sample.draws_on_device = True
    return sample


# ---------------------------------------------------------------------------------------------------- 3. the UNet step
def section_unet(device, quick, clock, backend):
    arch, bs = ('cpu', UNET_B_QUICK) if quick else ('paper', UNET_B)
    B, T, K = (8 if quick else UNET_CHARGES), (2 if quick else 12), (1 if quick else 2)
    torch.manual_seed(0)
    base = FieldUNet.preset(arch, L=500.0)                       # one set of initial weights, copied for every variant
    obj = Capacitor(L=500.0, sigma=0.01, mode='per_plate')
    P, Q = gaussian_images((3, 32, 32)), _device_images()
    cfg0 = PRESETS['cifar10'].train_config()                     # lr, warm-up, EMA, clipping of the cifar10 preset
    variants = [('fp32', dict(amp=False, channels_last=False, compile=False)),
                ('bf16', dict(amp=True, channels_last=False, compile=False)),
                ('bf16 + channels_last', dict(amp=True, channels_last=True, compile=False)),
                ('bf16 + channels_last + compile', dict(amp=True, channels_last=True, compile=True if backend == 'inductor' else backend))]
    res, notes, compile_est = {}, [], (150.0 if device.type == 'cuda' and not quick else 10.0)
    order = [(b, v) for b in bs for v in variants[:3]] + [(b, variants[3]) for b in bs]   # eager first: compiles take what is left
    for b, (name, kw) in order:
        if kw['compile'] and clock.left() < 1.1 * compile_est + 10:
            res[b, name] = 'skipped (section budget)'; continue
        if kw['compile'] and quick and b != bs[0]: res[b, name] = 'skipped (--quick: first b only)'; continue
        if clock.left() < 5: res[b, name] = 'skipped (section budget)'; continue
        model = None
        try:
            if kw['compile']: torch._dynamo.reset()
            model = copy.deepcopy(base).to(device)
            s, warm_s, hs, fallback = _train_rate(model, P, Q, obj, replace(cfg0, batch=b, charges=B, **kw), T, 0 if kw['compile'] else K, device,
                                                  alarm=clock.left() - 3 if kw['compile'] else None)
            res[b, name] = dict(rate=b / s, step=s, warm=warm_s, waits=None if hs is None else (len(hs) / K, hs.where()), fallback=fallback)
            if kw['compile']: compile_est = warm_s
            if fallback: notes.append(f'b = {b}, {name}: ran eager: {fallback[0]}')
        except Exception as e:
            res[b, name] = f'failed: {_short(e)}'; traceback.print_exc()
        finally:
            model = None; _free(device)
        r = res[b, name]
        _log(f'unet b={b} {name}: ' + (r if isinstance(r, str) else f"{r['rate']:,.0f} img/s, first {T} steps {r['warm']:.1f} s"))
    rows = ['| b | ' + ' | '.join(f'{n} img/s (x fp32)' for n, _ in variants) + ' | host waits per step (eager) |', '|---|' + '---|' * (len(variants) + 1)]
    for b in sorted(bs):
        f32 = res.get((b, 'fp32'))
        cells = []
        for n, _ in variants:
            r = res.get((b, n), '-')
            if isinstance(r, str): cells.append(r); continue
            ratio = f' ({r["rate"] / f32["rate"]:.2f}x)' if isinstance(f32, dict) and n != 'fp32' else ''
            cells.append(f"{r['rate']:,.0f}{ratio}" + (' (compile fell back to eager)' if r['fallback'] else ''))
        waits = [f"{n}: {r['waits'][0]:.1f}" for n, _ in variants if isinstance(r := res.get((b, n)), dict) and r['waits'] is not None]
        rows.append(f'| {b} | ' + ' | '.join(cells) + f" | {', '.join(waits) or '-'} |")
    tb = bs[0]
    flag = []
    f32 = res.get((tb, 'fp32'))
    for n, _ in variants[1:]:
        r = res.get((tb, n))
        if isinstance(r, dict) and isinstance(f32, dict):
            x = r['rate'] / f32['rate']
            flag.append(f"{n}: {x:.2f}x, {r['rate']:,.0f} img/s {_ok(x >= 2.5 and r['rate'] >= 3200)}")
    warm = [f"b = {b}, {n}: {r['warm']:.1f} s" for (b, n), r in res.items() if isinstance(r, dict) and n.endswith('compile')]
    where = [f"b = {b}, {n}: {r['waits'][1] or 'none'}" for (b, n), r in res.items() if isinstance(r, dict) and r['waits'] is not None]
    lines = ['## 3. The UNet training step\n',
             f'`FieldUNet.preset({arch!r}, L=500.0)` ({n_params(base):,} parameters), `Capacitor(L=500.0, sigma=0.01, mode=\'per_plate\')`, '
             f'B = {B} charges per plate, P = `gaussian_images((3, 32, 32))` and Q = uniform images in [-1, 1], both drawn on the device. '
             f"Measured through `efm.training.train` (the cifar10 preset's optimisation: Adam lr {cfg0.lr:g}, fused on CUDA, clip {cfg0.clip}, EMA {cfg0.ema}): "
             f'{2 * T} steps per variant with `log_every = {T}`, images/s over steps {T + 1} ... {2 * T} (between the reads of the losses), '
             f'each variant on a fresh copy of the same initial weights; `compile`: `TrainConfig(compile={variants[3][1]["compile"]!r})`, '
             f'`torch._dynamo.reset()` before each. Host waits: `host_syncs` over {K} more steps of the eager variants (the last read of the losses is one of them).'
             + (' On the CPU `train` ignores `amp`: every row is fp32.' if device.type == 'cpu' else '') + '\n',
             *rows, '',
             f'Target at b = {tb}: bf16 >= 2.5x fp32 and >= 3200 images/s: ' + ('; '.join(flag) or 'not measured') + '.',
             f'First {T} steps of the compiled variants (compile included): ' + ('; '.join(warm) or 'none ran') + '.',
             f'Where the host waited in those {K} steps:', *[f'* {w}' for w in where], *[f'* {n}' for n in notes], '']
    return '\n'.join(lines)


# ---------------------------------------------------------------------------------------------------- 4. the toy step
def section_toy(device, quick, clock):
    pr = PRESETS['toy-swissroll']
    obj, (P, Q) = pr.build_objective(), pr.sources()
    cfg0 = pr.train_config()
    runs = [(device, None)] if device.type == 'cpu' else [(device, None), (torch.device('cpu'), torch.get_num_threads())]
    if device.type == 'cuda' and os.cpu_count() > torch.get_num_threads(): runs.append((torch.device('cpu'), os.cpu_count()))
    out, threads0 = [], torch.get_num_threads()
    for dev, th in runs:
        T = 2 if quick else (100 if dev.type == 'cuda' else 30)
        try:
            if th: torch.set_num_threads(th)
            s, _, hs, _ = _train_rate(pr.build_model().to(dev), P, Q, obj, cfg0, T, 1 if quick else 2, dev)
            out.append((dev, th or torch.get_num_threads(), 1 / s, None if hs is None else len(hs) / (1 if quick else 2)))
        except Exception as e:
            out.append((dev, th, None, _short(e))); traceback.print_exc()
        finally: torch.set_num_threads(threads0)
        _log(f'toy on {out[-1][0]} ({out[-1][1]} threads): {out[-1][2]} steps/s')
    rows = ['| where | torch threads | steps/s | host waits per step | x CPU |', '|---|---|---|---|---|']
    cpu_best = max([r for d, _, r, _ in out if d.type == 'cpu' and r], default=None)
    for dev, th, r, w in out:
        if r is None: rows.append(f'| {dev} | {th} | failed: {w} | | |'); continue
        rows.append(f"| {dev} | {th} | {r:,.1f} | {'-' if w is None else f'{w:.1f}'} | {_x(r / cpu_best) if cpu_best else '-'} |")
    return '\n'.join(['## 4. The toy step: GPU against CPU\n',
                      f"`PRESETS['toy-swissroll']`: `FieldMLP(2)`, b = {cfg0.batch}, B = {cfg0.charges}, its objective and sources "
                      '(`gaussian`, `swiss_roll`, drawn on the host), through `train` as in section 3 (bf16 autocast on CUDA, as the preset runs); '
                      '"x CPU": against the fastest CPU row.\n', *rows, ''])


# ---------------------------------------------------------------------------------------------------- 5. where a step's time goes
def _step_parts(name, device, quick, T):
    "Median seconds of (draw, target, network) over T steps synchronised between the parts, and the mean step without those syncs."
    pr = PRESETS[name]
    obj, cfg = pr.build_objective(), pr.train_config()
    b, B = cfg.batch, cfg.charges or cfg.batch
    if quick: b, B = min(b, 4), min(B, 16)
    if name == 'cifar10':   # CIFAR-10 is not on the device: random uint8 images of its shape, drawn as cifar10_sampler draws them
        g0 = torch.Generator().manual_seed(0)
        P, Q = gaussian_images((3, 32, 32)), ImageSampler(torch.randint(0, 256, (1000 if quick else 50_000, 3, 32, 32), generator=g0, dtype=torch.uint8))
    else: P, Q = pr.sources()
    model = (FieldUNet.preset('cpu', L=pr.L) if quick and pr.model == 'unet-paper' else pr.build_model()).to(device)
    # what train does before its loop (one process, no checkpoints)
    sp, sq = Sampler(P, 'P'), Sampler(Q, 'Q')
    amp = cfg.amp and device.type == 'cuda'
    if amp if cfg.channels_last is None else cfg.channels_last: model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    g = torch.Generator().manual_seed(cfg.seed)
    gd = g if device.type == 'cpu' else torch.Generator(device).manual_seed(cfg.seed)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.Adam(params, lr=cfg.lr, fused=device.type == 'cuda')
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: lr_factor(t, cfg.steps, cfg.warmup, cfg.schedule))
    bank, log, sync = obj.bank(), _LossLog([]), _sync(device)
    model.train()
    def step(i, mark):   # train's loop body, line by line
        xp, xq, charges = _draw(sp, sq, B, g, device, False, gd); mark()
        tb = obj.batch(xp, xq, b=b, bank=bank, generator=gd, charges=charges, check=i == 0); mark()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp): pred = model(tb.x, tb.z)
        loss = efm_loss(pred, tb.target)
        opt.zero_grad(set_to_none=True); loss.backward()
        log.add(loss.detach().clone())
        if cfg.clip is not None: torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        opt.step(); sched.step(); ema_update(ema, model, cfg.ema, i); mark()
    parts, i = [], 0
    for k in range(2 * T):   # T warm-up steps, then T timed ones
        ts = [None]
        def mark(): sync(); ts.append(time.perf_counter())
        sync(); ts[0] = time.perf_counter()
        step(i, mark); i += 1
        if k >= T: parts.append([ts[j + 1] - ts[j] for j in range(3)])
    log.read(i, None)
    sync(); t0 = time.perf_counter()
    for _ in range(T): step(i, lambda: None); i += 1
    log.read(i, None); sync()
    plain = (time.perf_counter() - t0) / T
    return [statistics.median(p[j] for p in parts) for j in range(3)], plain, (b, B, n_params(model), amp, obj)


def section_shares(device, quick, clock):
    T = 1 if quick else 10
    rows = ['| preset | b, B | parameters | draw | target | network | sum of parts | step without the syncs |', '|---|---|---|---|---|---|---|---|']
    notes = []
    for name in SHARE_PRESETS:
        if clock.left() < 3: rows.append(f'| {name} | skipped (section budget) |' + ' |' * 6); continue
        try:
            (d, t, n), plain, (b, B, npar, amp, obj) = _step_parts(name, device, quick, T)
            tot = d + t + n
            rows.append(f'| {name} | {b}, {B} | {npar / 1e6:.1f}M | {_ms(d)} ({d / tot:.0%}) | {_ms(t)} ({t / tot:.0%}) | {_ms(n)} ({n / tot:.0%}) '
                        f'| {_ms(tot)} | {_ms(plain)} |')
            notes.append(f'{name}: {type(obj).__name__}(mode={obj.mode!r}, pool={obj.pool}, pairing={obj.pairing!r}), bf16 autocast {amp}')
        except FileNotFoundError as e:
            rows.append(f'| {name} | skipped: data missing ({_short(e)[:120]}) |' + ' |' * 6)
        except Exception as e:
            rows.append(f'| {name} | failed: {_short(e)} |' + ' |' * 6); traceback.print_exc()
        finally: _free(device)
        _log(rows[-1])
    return '\n'.join(['## 5. Where a step\'s time goes\n',
                      "A hand-written step that mirrors `train`'s loop line by line (`_draw`; `objective.batch` with `check` on the first step only; "
                      'forward under bf16 autocast as `train` runs it on CUDA, with channels_last; `efm_loss`; backward; clipping; fused Adam; '
                      'schedule; `ema_update`), with `synchronize` between the three parts: draw = the sources (host draws copied to the device), '
                      'target = `objective.batch` (training points, charge bank, OT pairing, the field), network = forward + backward + optimizer + EMA. '
                      f'Median over {T} steps after {T} warm-up steps. Those synchronisations add waits a real step does not have: '
                      '"step without the syncs" is the mean over the next steps with none. cifar10: random uint8 images of CIFAR-10\'s shape, '
                      'drawn on the host as `cifar10_sampler` draws them.'
                      + (' (--quick: b <= 4, B <= 16, the paper UNet replaced by the cpu preset.)' if quick else '') + '\n',
                      *rows, '', *[f'* {n}' for n in notes], ''])


# ---------------------------------------------------------------------------------------------------- the run
def _header(device, args):
    if device.type == 'cuda':
        p = torch.cuda.get_device_properties(device)
        dev = f'{torch.cuda.get_device_name(device)} ({p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs), CUDA {torch.version.cuda}'
    else:
        dev = next((l.split(':', 1)[1].strip() for l in Path('/proc/cpuinfo').read_text().splitlines() if l.startswith('model name')), platform.machine())
    try: rev = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except Exception: rev = ''
    return (f'`bench/gpu.py` on {dev}; torch {torch.__version__}, Python {platform.python_version()}, efm {efm.__version__}'
            f'{f" (commit {rev})" if rev else ""}; {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads; '
            f'TF32: matmul {torch.backends.cuda.matmul.allow_tf32}, cuDNN {torch.backends.cudnn.allow_tf32}; '
            f'{datetime.datetime.now().strftime("%Y-%m-%d %H:%M")}; arguments: {" ".join(sys.argv[1:]) or "(none)"}.\n')


def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    a.add_argument('--quick', action='store_true', help='tiny sizes and 2 repeats: checks the script (on a CPU)')
    a.add_argument('--only', help='comma list of sections: ' + ','.join(SECTIONS))
    a.add_argument('--out', help='markdown file to write (default bench/gpu_results.md, written only for a full run)')
    a.add_argument('--backend', help="torch.compile backend (default 'inductor'; 'eager' with --quick)")
    args = a.parse_args()
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available(): a.error('--device cuda: no CUDA device here (use --device cpu --quick)')
    only = SECTIONS if args.only is None else tuple(s.strip() for s in args.only.split(','))
    if bad := [s for s in only if s not in SECTIONS]: a.error(f'unknown sections {bad}; choose from {SECTIONS}')
    backend = args.backend or ('eager' if args.quick else 'inductor')
    out = Path(args.out) if args.out else (None if args.quick or args.only else Path(__file__).with_name('gpu_results.md'))
    torch.backends.cuda.matmul.allow_tf32 = False           # float32 means float32 (PyTorch's default, stated)
    clock = Clock(TOTAL, BUDGET, scale=10.0 if args.quick else 1.0)   # --quick on a slow CPU: budgets never bind
    parts = ['# Benchmark: efm on a GPU\n', _header(device, args)]
    print('\n'.join(parts), flush=True)
    run = dict(field=lambda: section_field(device, args.quick, clock, backend), routes=lambda: section_routes(device, args.quick, clock),
               unet=lambda: section_unet(device, args.quick, clock, backend), toy=lambda: section_toy(device, args.quick, clock),
               shares=lambda: section_shares(device, args.quick, clock))
    for i, s in enumerate(only):
        clock.start(s, len(only) - i - 1)
        t0 = time.perf_counter()
        try: text = run[s]()
        except Exception as e:
            traceback.print_exc(); text = f'## {s}\n\nfailed: {_short(e)}\n'
        _free(device)
        text += f'\n({s}: {time.perf_counter() - t0:.0f} s)\n'
        parts.append(text); print(text, flush=True)
        body = '\n'.join(parts) + f'\nTotal {clock.elapsed():.0f} s.\n'
        for p in [out] + ([Path(os.environ['OUT']) / 'gpu_results.md'] if os.path.isdir(os.environ.get('OUT', '')) else []):
            if p is not None: p.write_text(body)
    print(f'Total {clock.elapsed():.0f} s.' + (f' Written to {out}.' if out else ''), flush=True)


if __name__ == '__main__':
    main()
