#!/usr/bin/env python
"""GAN training throughput: updates/s, FLOPs per update, achieved FLOP/s vs the machine's matmul rate.

    .venv/bin/python scripts/bench_gan.py                 # CPU (and CUDA when present)
    .venv/bin/python scripts/bench_gan.py --sizes paper --updates 20 --threads 2
    .venv/bin/python scripts/bench_gan.py --sizes demo demo2 toy toy2 --threads 1   # 1.0 and 2.0 side by side

Sizes ending in ``2`` are wav2vec-U 2.0 (``configs/gan/w2vu2.yaml``: frames in, BatchNorm, residual
block, stride 3, the auxiliary loss on 64 k-means targets, discriminator kernel 8); the others
1.0 (``w2vu``, segments in).

Each row runs the real training step (``GanTrainer.train_step``: batch gather from the
in-memory sets, generator, join, discriminator, gradient penalty, Adam), alternating D and G
updates as training does, on random features and text of the given sizes. FLOPs per update
are counted with ``torch.utils.flop_counter``'s formulas at the dispatch level (matmuls and convolutions, forward, backward and
the gradient penalty's double backward; elementwise work is not counted), averaged over a D
and a G update. The matmul rate is a dense (n x n) @ (n x n) product timed by this script on
the same device (fp32; bf16 too on CUDA), so the last columns say how far from the hardware
limit one update is.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from wav2vec_u.config import apply_overrides, from_dict, load_yaml
from wav2vec_u.io import resource_path
from wav2vec_u.train.config import GanConfig
from wav2vec_u.train.data import FeatureSet, TextSet
from wav2vec_u.train.trainer import GanTrainer

# name: (input dim, phones, discriminator dim, batch, segments (1.0) or frames (2.0) per utterance)
SIZES = {
    "paper": (512, 41, 384, 160, 90),  # PCA 512, ~40 phones + <SIL>, D 384 wide, batch 160
    "demo": (64, 30, 128, 64, 40),  # a small synthetic-corpus run
    # the demo's own GAN settings (configs/gan/cpu.yaml: batch 40, D 64 wide) on its 195-dim MFCC
    # segments: ~13 words x ~3.5 phones x ~1.1 segments per English sentence, ~40 phones with <SIL>
    "democpu": (195, 40, 64, 40, 50),
    "toy": (32, 20, 64, 64, 20),  # the learning test's toy cipher
    # 2.0: wav2vec 2.0 Large frames at 50 Hz, no PCA; ~10 s of speech after VAD = 500 frames
    "paper2": (1024, 41, 384, 160, 500),
    "demo2": (195, 30, 128, 64, 180),  # 195-dim MFCC at 50 Hz, ~3.6 s utterances (the demo corpus)
    "toy2": (32, 20, 128, 64, 60),  # tests/test_gan_learns.py's frame toy: ~14 phones x ~4.3 frames
}
AUX_CLASSES = 64  # w2vu2: target_dim 64


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int, reps: int) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_inputs(size: str, device: torch.device, amp: bool, seed: int = 1) -> tuple:
    """Random features and text of the given sizes and the config of a run on them:
    (cfg, FeatureSet, TextSet, phones). scripts/bench_sweep.py shares the sets between runs."""
    dim, V, ddim, B, T = SIZES[size]
    v2 = size.endswith("2")
    rng = np.random.default_rng(0)
    n_utt, n_text = max(4 * B, 256), max(4 * B, 256)
    lengths = rng.integers(int(T * 0.7), int(T * 1.3) + 1, size=n_utt).tolist()
    feats = rng.normal(size=(sum(lengths), dim)).astype(np.float32)
    targets = rng.integers(0, AUX_CLASSES, size=sum(lengths)) if v2 else None
    phones = [f"p{i}" for i in range(V - 1)] + ["<SIL>"]
    out_len = T // 3 if v2 else T  # text as long as the generator's output
    sents = [[phones[j] for j in rng.integers(0, V, size=int(rng.integers(int(out_len * 0.5), out_len + 1)))]
             for _ in range(n_text)]
    base = load_yaml(resource_path("configs", "gan", "w2vu2.yaml")) if v2 else {}
    cfg = from_dict(GanConfig, apply_overrides(base, [
        f"discriminator.dim={ddim}", f"data.batch_size={B}", f"trainer.device={device}", f"trainer.amp={str(amp).lower()}",
        "trainer.progress=false", f"trainer.static_shapes={str(device.type == 'cuda').lower()}", f"trainer.seed={seed}"]))
    return (cfg, FeatureSet(feats, lengths, device=device, targets=targets), TextSet(sents, phones, device=device),
            phones)


def make_trainer(size: str, device: torch.device, amp: bool) -> GanTrainer:
    cfg, train, text, phones = make_inputs(size, device, amp)
    return GanTrainer(cfg, "/nonexistent", train, text, phones)


class FlopCounter(TorchDispatchMode):
    """Counts matmul/convolution FLOPs of every aten op (torch's own formulas), forward and backward.

    torch's FlopCounterMode installs module hooks that do not support the gradient penalty's
    ``autograd.grad``; counting at the dispatch level has no such hooks."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.total += count(*args, **kwargs, out_val=out)
        return out


def count_flops(tr: GanTrainer) -> float:
    total = 0
    for _ in range(2):  # one G and one D update
        with FlopCounter() as fc:
            tr.train_step()
        total += fc.total
    return total / 2


def bench(size: str, device: torch.device, updates: int, amp: bool) -> dict:
    tr = make_trainer(size, device, amp)
    flops = count_flops(tr)
    for _ in range(4):
        tr.train_step()
    sync(device)
    t = time.perf_counter()
    for _ in range(updates):
        tr.train_step()
    sync(device)
    dt = (time.perf_counter() - t) / updates
    return {"size": size, "device": str(device), "amp": amp, "ups": 1 / dt, "ms": dt * 1e3, "gflop": flops / 1e9,
            "achieved": flops / dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--updates", type=int, default=10, help="timed updates per row (after 4 warm-up)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    ap.add_argument("--no-cuda", action="store_true")
    ap.add_argument("--no-cpu", action="store_true", help="GPU rows only (the paper size takes minutes on a CPU)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [] if args.no_cpu else [torch.device("cpu")]
    if torch.cuda.is_available() and not args.no_cuda:
        devices.append(torch.device("cuda"))
    peaks = {}
    for d in devices:
        peaks[(d.type, "fp32")] = matmul_rate(d, torch.float32, 1024 if d.type == "cpu" else 8192, 5 if d.type == "cpu" else 20)
        if d.type == "cuda":
            peaks[(d.type, "bf16")] = matmul_rate(d, torch.bfloat16, 8192, 20)
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"))
    for (dev, dt), rate in peaks.items():
        print(f"dense matmul {dev} {dt}: {rate / 1e9:,.1f} GFLOP/s")
    print()
    print("| sizes (in, V, D dim, B, T) | device | updates/s | ms/update | GFLOP/update | achieved GFLOP/s | % of matmul |")
    print("|---|---|---|---|---|---|---|")
    for d in devices:
        for amp in ([False, True] if d.type == "cuda" else [False]):
            for s in args.sizes:
                r = bench(s, d, args.updates, amp)
                peak = peaks[(d.type, "bf16" if amp else "fp32")]
                print(f"| {s} {SIZES[s]} | {r['device']}{' bf16' if amp else ''} | {r['ups']:.2f} | {r['ms']:.1f} | "
                      f"{r['gflop']:.2f} | {r['achieved'] / 1e9:.1f} | {100 * r['achieved'] / peak:.1f} |", flush=True)


if __name__ == "__main__":
    main()
