"""Benchmark (not a test): the cost of one training step of each method on the digit presets, as a ratio to I-CFM's.

Run: `.venv/bin/python bench/methods.py` (from the repository root; a few minutes on 2 cores; `--quick` for a check).
The training minutes of long runs measure the machine as much as the method when other jobs share it, so this times the
methods against each other in one process, on one thread, interleaved: for each task (`cmnist-3to2`, `cmnist-gen`) and
each method of the peers page's digit comparison (the preset with the method's overrides, as `nbs/experiments/peers`
builds it), `efm.training.train` runs a fresh network for `--steps` steps in each of `--rounds` rounds, the methods one
after another within a round. A step is timed from one call of `train`'s `stop` hook to the next (the sampling of the
step's batch, the objective's targets, forward, loss, backward, clipping, Adam and EMA); the first `--warm` steps of a
call are left out. Per method: the median step; ratio: the median over rounds of (method / I-CFM), each round's pair
timed minutes apart at most, so load that comes and goes slows both alike. Prints markdown and writes it to
`bench/methods_results.md` (with `--out`, elsewhere).
"""
import argparse, statistics, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import torch
from efm.cli import PRESETS
from efm.training import train

METHODS = {  # task preset: {method: overrides}, the digit runs of nbs/experiments/peers
    'cmnist-3to2': {'EFM-OT': dict(), 'IFM-OT': dict(objective='ifm'), 'I-CFM': dict(objective='cfm', pairing='independent', sigma=0.0),
                    'OT-CFM': dict(objective='cfm', sigma=0.0)},
    'cmnist-gen': {'EFM-OT': dict(pairing='ot'), 'IFM': dict(objective='ifm'), 'IFM-OT': dict(objective='ifm', pairing='ot'),
                   'I-CFM': dict(objective='cfm', sigma=0.0), 'OT-CFM': dict(objective='cfm', pairing='ot', sigma=0.0)},
}


def step_times(p, steps, warm):
    "Seconds of each training step of preset `p` after the first `warm` (a fresh network, no checkpoints)."
    marks = []
    def mark(): marks.append(time.perf_counter()); return False
    P, Q = p.sources()
    train(p.build_model(), P, Q, p.build_objective(), p.train_config(), until=warm + steps + 1, show_progress=False, stop=mark)
    return [b - a for a, b in zip(marks[warm:], marks[warm + 1:])]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=20, help='timed steps per call (default 20)')
    ap.add_argument('--warm', type=int, default=3, help='steps left out at the start of each call (default 3)')
    ap.add_argument('--rounds', type=int, default=3, help='rounds of all methods (default 3)')
    ap.add_argument('--threads', type=int, default=1, help='torch intra-op threads (default 1, as the peers page trains)')
    ap.add_argument('--quick', action='store_true', help='2 steps, 1 warm-up, 1 round: checks the script')
    ap.add_argument('--out', default=str(ROOT / 'bench' / 'methods_results.md'))
    a = ap.parse_args()
    if a.quick: a.steps, a.warm, a.rounds = 2, 1, 1
    torch.set_num_threads(a.threads)
    lines = [f'Training step of each digit method (`bench/methods.py`: {a.steps} timed steps x {a.rounds} rounds, interleaved, '
             f'{a.threads} thread(s); {time.strftime("%Y-%m-%d")})', '',
             '| task | method | median step | ratio to I-CFM (median over rounds) |', '|---|---|---|---|']
    for task, methods in METHODS.items():
        presets = {m: PRESETS[task].override(name=f'peers-{m}', **kw) for m, kw in methods.items()}
        times = {m: [] for m in methods}
        for r in range(a.rounds):
            for m, p in presets.items():
                times[m].append(step_times(p, a.steps, a.warm))
                print(f'{task} {m} round {r}: {statistics.median(times[m][-1]) * 1e3:.0f} ms/step', file=sys.stderr, flush=True)
        base = [statistics.median(t) for t in times['I-CFM']]
        for m in methods:
            med = statistics.median(x for t in times[m] for x in t)
            ratio = statistics.median(statistics.median(t) / b for t, b in zip(times[m], base))
            lines.append(f'| {task} | {m} | {med * 1e3:.0f} ms | {ratio:.2f}x |')
    text = '\n'.join(lines) + '\n'
    print(text)
    if not a.quick: Path(a.out).write_text(text)


if __name__ == '__main__': main()
