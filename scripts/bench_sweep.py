#!/usr/bin/env python
"""Sweep throughput: N GAN runs as one stacked model (``w2vu sweep``) against the same N runs one after another.

    .venv/bin/python scripts/bench_sweep.py --sizes toy demo --runs 16 --updates 10 --threads 1
    .venv/bin/python scripts/bench_sweep.py --sizes paper --runs 16 --updates 2 --threads 1
    .venv/bin/python scripts/bench_sweep.py --sizes demo paper --device cuda          # on a GPU

Sizes are ``scripts/bench_gan.py``'s (random features and text of those shapes, reference settings
otherwise). Both sides do the same work: every run (seeds 1..N) makes ``--warmup`` untimed and then
``--updates`` timed updates (D and G alternating, as training does), sequentially with
:class:`GanTrainer.train_step` or all together with :class:`StackedTrainer.train_step`. Throughput is
run-updates per second (N x updates / timed seconds). Each side runs in its own fresh process, so
"peak MiB" is that process's peak resident memory (CPU) or peak allocated GPU memory. The share
of the machine's dense matmul rate uses ``bench_gan``'s FLOP count of one update: when the
sequential side is already near 100 %, no batching can speed it up much.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gan import SIZES, count_flops, make_inputs, matmul_rate, sync  # noqa: E402

from wav2vec_u.train.stacked import StackedTrainer, build_members  # noqa: E402
from wav2vec_u.train.trainer import GanTrainer  # noqa: E402


def side(which: str, size: str, device: torch.device, runs: int, warmup: int, updates: int) -> dict:
    """One side of the comparison, in this process: timed seconds and peak memory."""
    cfgs, sets = [], None
    for seed in range(1, runs + 1):
        cfg, train, text, phones = make_inputs(size, device, amp=False, seed=seed)
        sets = sets or (train, text, phones)
        cfgs.append(cfg)
    train, text, phones = sets
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = 0.0
    if which == "sequential":
        for cfg in cfgs:
            tr = GanTrainer(cfg, "/nonexistent", train, text, phones)
            for _ in range(warmup):
                tr.train_step()
            sync(device)
            t = time.perf_counter()
            for _ in range(updates):
                tr.train_step()
            sync(device)
            seconds += time.perf_counter() - t
            del tr
    else:
        stack = StackedTrainer(build_members(cfgs, ["/nonexistent"] * runs, train, text, phones))
        for _ in range(warmup):
            stack.train_step()
        sync(device)
        t = time.perf_counter()
        for _ in range(updates):
            stack.train_step()
        sync(device)
        seconds = time.perf_counter() - t
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"seconds": seconds, "ups": runs * updates / seconds, "peak_mib": peak, "data_mib": base_rss}


def run_side(args: argparse.Namespace, which: str, size: str) -> dict:
    cmd = [sys.executable, __file__, "--side", which, "--sizes", size, "--runs", str(args.runs), "--updates",
           str(args.updates), "--warmup", str(args.warmup), "--threads", str(args.threads), "--device", args.device]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["toy", "demo", "paper"], choices=[s for s in SIZES if not s.endswith("2")])
    ap.add_argument("--runs", type=int, default=16)
    ap.add_argument("--updates", type=int, default=10, help="timed updates per run")
    ap.add_argument("--warmup", type=int, default=2, help="untimed updates per run before timing")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for both sides")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--side", choices=["sequential", "stacked"], help=argparse.SUPPRESS)  # a child process
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.side:
        print(json.dumps(side(args.side, args.sizes[0], device, args.runs, args.warmup, args.updates)))
        return
    peak = matmul_rate(device, torch.float32, 1024 if device.type == "cpu" else 8192, 5 if device.type == "cpu" else 20)
    print(f"torch {torch.__version__}, {device}, threads {torch.get_num_threads()}, dense fp32 matmul "
          f"{peak / 1e9:.1f} GFLOP/s; {args.runs} runs x {args.updates} timed updates each (+{args.warmup} warm-up)")
    print()
    print("| size (in, V, D dim, B, T) | sequential run-upd/s | stacked run-upd/s | ratio | sequential % of matmul "
          "| stacked % of matmul | sequential peak MiB | stacked peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        cfg, train, text, phones = make_inputs(size, device, amp=False)
        flops = count_flops(GanTrainer(cfg, "/nonexistent", train, text, phones))
        seq = run_side(args, "sequential", size)
        stk = run_side(args, "stacked", size)
        share = lambda r: 100 * flops * r["ups"] / peak  # noqa: E731
        print(f"| {size} {SIZES[size]} | {seq['ups']:.2f} | {stk['ups']:.2f} | {stk['ups'] / seq['ups']:.2f}x | "
              f"{share(seq):.0f} | {share(stk):.0f} | {seq['peak_mib']:.0f} | {stk['peak_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
