#!/usr/bin/env python
"""Sweep throughput: N GAN runs as one stacked model (``w2vu sweep``) against the same N runs one after another.

    .venv/bin/python scripts/bench_sweep.py --sizes toy demo --runs 16 --updates 10 --threads 1
    .venv/bin/python scripts/bench_sweep.py --sizes paper --runs 16 --updates 2 --threads 1
    .venv/bin/python scripts/bench_sweep.py --sizes demo paper --device cuda          # on a GPU

Sizes are ``scripts/bench_gan.py``'s (random features and text of those shapes, reference settings
otherwise). Both sides do the same work: every run (seeds 1..N) makes ``--warmup`` untimed and then
``--updates`` timed updates (D and G alternating, as training does), one run at a time with
:class:`GanTrainer.train_step` or all together with :class:`StackedTrainer.train_step`. The two sides
take turns in one process (``--block`` updates of the stack, then as many of each single run), so a
shared machine's changing load falls on both alike. Throughput is run-updates per second
(N x updates / timed seconds). "Peak MiB" comes from a fresh process per side making two updates of
every run: its peak resident memory (CPU) or peak allocated GPU memory. The share of the machine's
dense matmul rate uses ``bench_gan``'s FLOP count of one update: when a single run already reaches
a large share, batching runs cannot speed them up much (the ceiling is 100 % / that share).
"""

from __future__ import annotations

import argparse
import copy
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


def make_sets(size: str, device: torch.device, runs: int) -> tuple[list, tuple]:
    """The runs' configs (seeds 1..N) and the feature/text sets they share."""
    cfg, train, text, phones = make_inputs(size, device, amp=False)
    cfgs = []
    for seed in range(1, runs + 1):
        cfgs.append(copy.deepcopy(cfg))
        cfgs[-1].trainer.seed = seed
    return cfgs, (train, text, phones)


def timed(device: torch.device, step, n: int) -> float:
    sync(device)
    t = time.perf_counter()
    for _ in range(n):
        step()
    sync(device)
    return time.perf_counter() - t


def compare(size: str, device: torch.device, runs: int, warmup: int, updates: int, block: int) -> dict:
    """Both sides in this process, interleaved: ``block`` updates of the stack, then ``block`` updates of
    each sequential run, again and again, so load from other jobs falls on both sides alike."""
    cfgs, (train, text, phones) = make_sets(size, device, runs)
    alone = [GanTrainer(cfg, "/nonexistent", train, text, phones) for cfg in cfgs]
    stack = StackedTrainer(build_members(cfgs, ["/nonexistent"] * runs, train, text, phones))
    for _ in range(warmup):
        stack.train_step()
        for tr in alone:
            tr.train_step()
    t_seq = t_stack = 0.0
    for _ in range(0, updates, block):
        t_stack += timed(device, stack.train_step, block)
        for tr in alone:
            t_seq += timed(device, tr.train_step, block)
    done = runs * (updates - updates % block if updates % block else updates)
    return {"seq_ups": done / t_seq, "stack_ups": done / t_stack}


def peak_memory(which: str, size: str, device: torch.device, runs: int) -> float:
    """Peak memory (MiB) of one side after two updates of every run: this process's peak RSS, or the
    peak allocated GPU memory."""
    cfgs, (train, text, phones) = make_sets(size, device, runs)
    if which == "sequential":
        for cfg in cfgs:  # one run at a time: its model, optimiser and activations, then the next
            tr = GanTrainer(cfg, "/nonexistent", train, text, phones)
            tr.train_step()
            tr.train_step()
            del tr
    else:
        stack = StackedTrainer(build_members(cfgs, ["/nonexistent"] * runs, train, text, phones))
        stack.train_step()
        stack.train_step()
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # VmHWM: this process's own peak (ru_maxrss would include the parent's peak, inherited at fork)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_side(args: argparse.Namespace, which: str, size: str) -> float:
    cmd = [sys.executable, __file__, "--side", which, "--sizes", size, "--runs", str(args.runs), "--threads",
           str(args.threads), "--device", args.device]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["toy", "demo", "paper"], choices=[s for s in SIZES if not s.endswith("2")])
    ap.add_argument("--runs", type=int, default=16)
    ap.add_argument("--updates", type=int, default=10, help="timed updates per run")
    ap.add_argument("--warmup", type=int, default=2, help="untimed updates per run before timing")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for both sides")
    ap.add_argument("--block", type=int, default=2, help="updates per turn when the sides alternate (2: one D, one G)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--side", choices=["sequential", "stacked"], help=argparse.SUPPRESS)  # a child process
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.side:
        print(peak_memory(args.side, args.sizes[0], device, args.runs))
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
        r = compare(size, device, args.runs, args.warmup, args.updates, args.block)
        mem = {w: run_side(args, w, size) for w in ("sequential", "stacked")}
        share = lambda ups: 100 * flops * ups / peak  # noqa: E731
        print(f"| {size} {SIZES[size]} | {r['seq_ups']:.2f} | {r['stack_ups']:.2f} | {r['stack_ups'] / r['seq_ups']:.2f}x | "
              f"{share(r['seq_ups']):.0f} | {share(r['stack_ups']):.0f} | {mem['sequential']:.0f} | {mem['stacked']:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
