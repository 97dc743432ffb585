"""Training throughput of one small CNN per trial: the seed notebook's loop against bnorder's
execution modes, measured side by side in one process on CIFAR-shaped random data.

The seed loop is the notebook's, faithfully: a Dataset of PIL images, ``ToTensor`` +
``Normalize(0.5)``, a DataLoader with 2 workers, fp32, ``loss.item()`` and ``.sum().item()``
every step. bnorder's modes keep the uint8 data on the device and normalise there, then add
channels_last, bf16 autocast (BN statistics stay fp32), torch.compile and fused seed arrays (K
seed replicates as one grouped network). Each mode trains the same network (seed CNN, case1).

    uv run python benchmarks/throughput.py                      # GPU: depth 8, width 64, batch 128
    uv run python benchmarks/throughput.py --device cpu --quick # 2 CPU cores, under a minute

MFU = achieved model FLOP/s (3x the forward FLOPs per image, counted from the network's convs
and linears) over the GPU's dense peak for the mode's precision (TF32 for fp32 convolutions).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bnorder import TrialConfig
from bnorder.data import RawData, prepare_data
from bnorder.device import device_name, peak_flops, resolve_device
from bnorder.fused import fuse_models, fused_cross_entropy
from bnorder.models import forward_flops
from bnorder.train import DIVERGENCE_CHECK_EVERY, build_model, optimizer_for

CIFAR_TRAIN = 50_000  # images per CIFAR-10 epoch, for s/epoch


@dataclass(frozen=True)
class Mode:
    name: str
    fuse: int = 1
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False


# ---------------------------------------------------------------- the seed notebook's loop
class PILDataset(torch.utils.data.Dataset):
    """torchvision's CIFAR10.__getitem__: uint8 HWC array -> PIL image -> transforms."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        import torchvision.transforms as T

        self.x, self.y = x, y
        self.transform = T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


def seed_loop(cfg: TrialConfig, x: np.ndarray, y: np.ndarray, steps: int) -> tuple[float, int]:
    device = resolve_device(cfg.device)
    model = build_model(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(
        PILDataset(x.transpose(0, 2, 3, 1), y),
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=2,
        persistent_workers=True,
    )

    def epoch(limit: int) -> int:
        model.train()
        images, correct, loss_sum = 0, 0, 0.0
        for step, (inputs, labels) in enumerate(loader):
            if step == limit:
                break
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item()
            correct += (outputs.max(1)[1] == labels).sum().item()
            images += labels.size(0)
        return images

    epoch(2)  # warm-up: worker start, the allocator (cudnn.benchmark is off, as in bnorder)
    t0 = time.perf_counter()
    images = epoch(steps)
    return time.perf_counter() - t0, images


# ---------------------------------------------------------------- bnorder's modes
@dataclass(frozen=True)
class Window:
    """A timed run: wall-clock start and end (``time.time``, comparable across processes)."""

    start: float
    end: float
    images: int

    @property
    def seconds(self) -> float:
        return self.end - self.start


def bnorder_loop(
    cfg: TrialConfig,
    raw: RawData,
    mode: Mode,
    steps: int,
    *,
    barrier: Any = None,
    window_s: float = 0.0,
) -> Window:
    """bnorder's training step in ``mode``, with the work ``train_trial`` does per step
    (augmentation from a CPU generator, loss and accuracy sums on the device, the schedule
    step, a finiteness check every 20 steps), timed over ``steps`` steps after a warm-up, or
    for at least ``window_s`` seconds once every process of a packed run passed ``barrier``.
    """
    device = resolve_device(cfg.device)
    data = prepare_data(raw, val_fraction=0.0, split_seed=0, device=device)
    layout = torch.channels_last if mode.channels_last else torch.contiguous_format
    cfgs = [cfg.replace(seed=s) for s in range(mode.fuse)]
    if mode.fuse > 1:
        model: nn.Module = fuse_models([build_model(c) for c in cfgs])
        model.input_layout = layout
    else:
        model = build_model(cfg)
    model = model.to(device).to(memory_format=layout)
    net = torch.compile(model) if mode.compile else model
    optimizer, schedule = optimizer_for(cfg, model.parameters(), len(data.train))
    gens = [torch.Generator().manual_seed(s) for s in range(mode.fuse)]
    autocast: Callable[[], contextlib.AbstractContextManager] = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
        if mode.bf16
        else contextlib.nullcontext
    )

    def batches() -> object:
        while True:
            member = (data.train_batches(cfg.batch_size, g, augment=cfg.augment) for g in gens)
            yield from zip(*member, strict=True)

    stream = batches()
    loss_sum = torch.zeros(mode.fuse, device=device)
    correct = torch.zeros(mode.fuse, device=device, dtype=torch.long)

    def run(n: int) -> int:
        model.train()
        images = 0
        for step in range(1, n + 1):
            batch = next(stream)
            if mode.fuse > 1:
                x = torch.stack([b[0] for b in batch], 1)
                y = torch.stack([b[1] for b in batch], 1)
            else:
                ((x, y),) = batch
                x = x.contiguous(memory_format=layout)
            with autocast():
                out = net(x)
                if mode.fuse > 1:
                    loss, per_member = fused_cross_entropy(out.float(), y)
                else:
                    loss = per_member = F.cross_entropy(out.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum.add_(per_member.detach() * len(y))
            correct.add_((out.detach().argmax(-1) == y).sum(0))
            if step % DIVERGENCE_CHECK_EVERY == 0 and not torch.isfinite(loss_sum).any():
                break
            images += y.numel()
        loss_sum.sum().item()  # one sync at the end, as bnorder's loop does per epoch
        return images

    run(3 if mode.compile else 2)  # warm-up: compilation, the allocator
    _sync(device)
    if barrier is not None:
        barrier.wait()  # every packed process starts timing together
    start = time.time()
    images = run(steps)
    while time.time() - start < window_s:
        images += run(steps)
    _sync(device)
    return Window(start, time.time(), images)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


_BARRIER: Any = None


def _packed_init(barrier: Any) -> None:
    global _BARRIER
    _BARRIER = barrier
    torch.set_num_threads(1)


def _packed_worker(args: tuple[TrialConfig, RawData, Mode, int, float]) -> Window:
    cfg, raw, mode, steps, window_s = args
    return bnorder_loop(cfg, raw, mode, steps, barrier=_BARRIER, window_s=window_s)


@dataclass(frozen=True)
class Packed:
    """k processes' windows: the images they trained while all ran, and how well they
    overlapped (the common span over the longest window; 1.0 is perfect)."""

    windows: list[Window]

    @property
    def common(self) -> float:
        return min(w.end for w in self.windows) - max(w.start for w in self.windows)

    @property
    def overlap(self) -> float:
        return max(0.0, self.common) / max(w.seconds for w in self.windows)

    @property
    def rate(self) -> float:
        """Images/s of all k together: each process's own rate, summed."""
        return sum(w.images / w.seconds for w in self.windows)


def packed(
    cfg: TrialConfig, raw: RawData, mode: Mode, steps: int, k: int, window_s: float
) -> Packed:
    """k trials at once in k processes on one device, as Ray packs trials with ``gpu: 1/k``.
    The processes build, load and warm up at their own pace, then wait at a barrier and each
    trains for at least ``window_s`` seconds, so the timed windows overlap."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(k)
    with ProcessPoolExecutor(
        k, mp_context=ctx, initializer=_packed_init, initargs=(barrier,)
    ) as pool:
        return Packed(list(pool.map(_packed_worker, [(cfg, raw, mode, steps, window_s)] * k)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="small sizes: CPU, under a minute")
    p.add_argument("--depth", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=None, help="timed steps per mode")
    p.add_argument("--fuse", type=int, default=None, help="K of the fused seed array")
    p.add_argument("--compile", action="store_true", help="also time torch.compile on CPU")
    p.add_argument(
        "--packed", type=int, default=None, help="also k trials per device in k processes"
    )
    p.add_argument("--window", type=float, default=None, help="seconds each packed process trains")
    args = p.parse_args()

    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    depth = args.depth or (2 if args.quick else 8)
    width = args.width or (16 if args.quick else 64)
    steps = args.steps or (4 if args.quick else 50)
    fuse = args.fuse or (4 if args.quick else 8)
    args.window = args.window if args.window is not None else (2.0 if args.quick else 20.0)
    # not a multiple of the batch: the partial last batch (and its recompile) shows, as in a
    # real epoch (45,000 % 128 = 72)
    n_images = max(args.batch * (steps + 3), 2048) + args.batch // 2 + 3
    cfg = TrialConfig(
        dataset="cifar10", arch="cnn", ordering="case1", depth=depth, width=width,
        batch_size=args.batch, device=str(device),
    )  # fmt: skip
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n_images, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, n_images)
    raw = RawData.from_numpy(x, y, x[:256], y[:256], "random uint8, CIFAR-10 shape")

    flops = 3 * forward_flops(build_model(cfg), (3, 32, 32))  # forward + backward per image
    modes = [
        Mode("bnorder fp32 (data on device)"),
        Mode("+ channels_last", channels_last=True),
        Mode("+ bf16", channels_last=True, bf16=True),
        Mode(f"fused {fuse} fp32", fuse=fuse),
        Mode(f"fused {fuse} + channels_last + bf16", fuse=fuse, channels_last=True, bf16=True),
    ]
    if gpu or args.compile:
        modes += [
            Mode("+ bf16 + compile", channels_last=True, bf16=True, compile=True),
            Mode(f"fused {fuse} + bf16 + compile", fuse=fuse, channels_last=True, bf16=True,
                 compile=True),
        ]  # fmt: skip

    print(
        f"cnn depth {depth} width {width} batch {args.batch}, 32x32x3, {steps} timed steps per "
        f"mode, on {device_name(device)}; {flops / 1e9:.3f} GFLOP per image (fwd+bwd)"
    )
    rows = []
    seconds, images = seed_loop(cfg, x, y, steps)
    rows.append(("seed loop (DataLoader, PIL, fp32)", images / seconds, None))
    for mode in modes:
        w = bnorder_loop(cfg, raw, mode, steps)
        rows.append((mode.name, w.images / w.seconds, mode))
    k = args.packed or (4 if gpu else 0)
    if k > 1:
        mode = Mode(f"packed {k} per device + bf16", channels_last=True, bf16=True)
        run = packed(cfg, raw, mode, steps, k, window_s=args.window)
        rows.append((mode.name, run.rate, mode))
        print(
            f"packed: {k} processes, windows {min(w.seconds for w in run.windows):.1f}-"
            f"{max(w.seconds for w in run.windows):.1f} s, all running together for "
            f"{run.common:.1f} s: overlap {run.overlap:.0%}"
        )
    base = rows[0][1]
    print(f"{'mode':<40} {'images/s':>10} {'s/epoch':>8} {'speedup':>8} {'MFU':>6}")
    for name, rate, mode in rows:
        peak = peak_flops(device_name(device), bf16=bool(mode and mode.bf16)) if gpu else None
        mfu = f"{flops * rate / peak:.1%}" if peak else ""
        print(f"{name:<40} {rate:>10,.0f} {CIFAR_TRAIN / rate:>8.2f} {rate / base:>7.2f}x {mfu:>6}")
    best = max(rows[1:], key=lambda r: r[1])
    print(f"best speedup vs seed loop: {best[1] / base:.2f}x ({best[0]})")


if __name__ == "__main__":
    main()
