"""Benchmark (not a test): throughput of one EFM training step of a `FieldUNet`, fp32 against bf16 autocast.

Run on a GPU machine (the check issue 7 asks for):

    .venv/bin/python bench/unet_step.py --preset paper --batch 64 128 --steps 20 --train 300

On a CPU it runs too (small settings, to check the script): `--device cpu --preset cpu --batch 8 --steps 2 --train 20`.

One step is what `efm.training.train` does per step, minus data loading: draw B charges per plate, build b training
points and their target (`Capacitor.batch`, the per-plate field over the B charges, as the `cifar10` preset), forward
the UNet (under `torch.autocast(bfloat16)` or in fp32), the EFM loss, backward, gradient clipping and an Adam step.
Throughput is training points (images) per second over `--steps` timed steps after 3 warm-up steps, with CUDA
synchronised before reading the clock. bf16 is reported as a ratio against fp32 measured in the same run.
`--train N` then trains the preset's UNet for N steps on coloured digits (noise -> digits, bf16) and prints the loss
every N/10 steps, to show it falls. Results go to stdout as a markdown table and to bench/unet_step_results.md.
"""
import argparse, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository, when efm is not installed
import torch
from efm.capacitor import Capacitor
from efm.models import FieldUNet, n_params
from efm.training import efm_loss


def step_time(net, opt, cap, b, B, device, amp, steps):
    "Seconds per training step (mean over `steps`, after 3 warm-up steps)."
    g = torch.Generator(device=device).manual_seed(0)
    def one():
        xp = torch.randn(B, 3, 32, 32, device=device, generator=g)
        xq = torch.rand(B, 3, 32, 32, device=device, generator=g) * 2 - 1
        tb = cap.batch(xp, xq, b=b, generator=g)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            pred = net(tb.x, tb.z)
        loss = efm_loss(pred, tb.target)
        opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0); opt.step()
    for _ in range(3): one()
    if device.type == 'cuda': torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps): one()
    if device.type == 'cuda': torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def short_training(preset, device, steps, b, L=75.0):
    "Train on noise -> coloured digits for `steps` steps in bf16 (fp32 on CPU); print the loss every steps/10."
    from efm.data import ColouredMNIST, gaussian_images
    from efm.training import TrainConfig, train
    torch.manual_seed(0)
    net = FieldUNet.preset(preset, L=L).to(device)
    cfg = TrainConfig(steps=steps, batch=b, lr=2e-4 if preset == 'paper' else 1e-3, warmup=min(100, steps // 10), ema=0.999)
    res = train(net, gaussian_images((3, 32, 32)), ColouredMNIST(), Capacitor(L=L, sigma=0.01), cfg, show_progress=False)
    k = max(1, steps // 10)
    marks = [(i + k, sum(res.losses[i:i + k]) / k) for i in range(0, steps - k + 1, k)]
    print('short training (noise -> coloured digits), mean loss per block of steps:')
    for s, l in marks: print(f'  steps {s - k + 1:5d}-{s:5d}: {l:.1f}')
    print(f'  {steps} steps in {res.seconds:.0f} s')
    return marks


def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument('--preset', default='paper', choices=['paper', 'cpu'])
    a.add_argument('--batch', type=int, nargs='+', default=[64, 128], help='training points per step b')
    a.add_argument('--charges', type=int, default=1024, help='charges per plate B (the target is over them)')
    a.add_argument('--steps', type=int, default=20, help='timed steps per setting')
    a.add_argument('--train', type=int, default=0, help='then train this many steps to show the loss fall (0: skip)')
    a.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = a.parse_args()
    device = torch.device(args.device)
    if device.type == 'cuda': torch.backends.cudnn.benchmark = True
    net = FieldUNet.preset(args.preset, L=500.0).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    cap = Capacitor(L=500.0, sigma=0.01, mode='per_plate', gamma=5.0)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU, {torch.get_num_threads()} threads'
    rows = [f'`FieldUNet.preset({args.preset!r})`, {n_params(net):,} parameters, on {name}; B = {args.charges} charges per plate, '
            f'per-plate target included; {args.steps} timed steps\n', '| batch b | fp32 img/s | bf16 img/s | bf16 / fp32 |', '|---|---|---|---|']
    for b in args.batch:
        B = max(b, args.charges)
        t32 = step_time(net, opt, cap, b, B, device, False, args.steps)
        t16 = step_time(net, opt, cap, b, B, device, device.type == 'cuda', args.steps) if device.type == 'cuda' else float('nan')
        rows.append(f'| {b} | {b / t32:.1f} | {b / t16:.1f} | {t32 / t16:.2f} |')
        print(rows[-1], flush=True)
    out = '\n'.join(rows)
    print(out)
    if args.train: short_training(args.preset, device, args.train, args.batch[0])
    Path(__file__).with_name(f'unet_step_results_{device.type}.md').write_text(out + '\n')


if __name__ == '__main__':
    main()
