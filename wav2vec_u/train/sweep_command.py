"""``w2vu sweep``: many GAN runs (seeds x settings) trained as stacked models, then one picked without labels.

    w2vu sweep runs/sweep --features seg/ --text text/ --config configs/gan/cpu.yaml \\
        --seeds 1 2 3 4 --grid loss.gradient_penalty=1.5,2.0 --grid optim.lr_g=0.0004,0.001 --threads 1
    w2vu sweep runs/sweep --features seg/ --text text/ --sweep configs/sweep/w2vu.yaml --launcher slurm

Every run gets its own folder ``runs/sweep/<settings>/`` with what ``w2vu train-gan`` writes there
(``last.pt``, ``best.pt``, ``config.yaml``, ``metrics.jsonl``, ``train-gan.log``); runs that differ
only in per-run settings (seeds, learning rates, loss weights, ...) train as one stacked model in
one process; a run that diverges is dropped and the others go on. At the end the runs' ``best.pt``
are compared by paper Eqs. 5-6 (as ``w2vu select``): ``selection.json``, ``sweep.json`` and a table
on stdout. Re-running the same command resumes every run from its ``last.pt``.

``--config`` and the trailing ``key=value`` overrides set the GAN settings every run starts from;
``--sweep`` (a YAML file of :class:`~wav2vec_u.train.config.SweepConfig`) the grid, and
``--seeds`` / ``--grid`` / ``--stack-size`` / ``--launcher`` replace its values.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from wav2vec_u.config import (ConfigError, add_config_arguments, add_tracking_arguments,
                              from_dict, load_yaml, yaml_load)
from wav2vec_u.train.config import SweepConfig
from wav2vec_u.train.train_command import DEFAULT_CONFIG, add_gan_input_arguments, gan_config_and_threads

log = logging.getLogger("wav2vec_u.train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("outdir", type=Path, help="sweep folder: one sub-folder per run, sweep.json, selection.json")
    add_gan_input_arguments(parser)
    parser.add_argument("--sweep", type=Path, help="YAML file of the sweep: seeds, grid, stack_size, launcher, slurm")
    parser.add_argument("--seeds", type=int, nargs="+", help="trainer.seed of the runs (replaces the file's seeds)")
    parser.add_argument("--grid", action="append", metavar="KEY=V1,V2", help="values of one GAN config key; "
                        "repeat for more keys; every combination is run for every seed")
    parser.add_argument("--stack-size", type=int, help="at most this many runs per stacked model (0: no limit)")
    parser.add_argument("--launcher", choices=["none", "local", "slurm"],
                        help="none: train here; local/slurm: one submitit job per stacked model")
    add_config_arguments(parser, DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    add_tracking_arguments(parser)


def sweep_config_from_args(args: argparse.Namespace) -> SweepConfig:
    data = load_yaml(args.sweep) if args.sweep else {}
    if args.seeds:
        data["seeds"] = list(args.seeds)
    for item in args.grid or []:
        if "=" not in item:
            raise ConfigError(f"--grid {item}: expected KEY=V1,V2,...")
        key, raw = item.split("=", 1)
        data.setdefault("grid", {})[key.strip()] = yaml_load(f"[{raw}]")
    if args.stack_size is not None:
        data["stack_size"] = args.stack_size
    if args.launcher:
        data["launcher"] = args.launcher
    return from_dict(SweepConfig, data)


def run(args: argparse.Namespace) -> int:
    from wav2vec_u.train.sweep import run_sweep  # noqa: PLC0415

    cfg = gan_config_and_threads(args)
    sweep = sweep_config_from_args(args)
    summary = run_sweep(cfg, sweep, args.outdir, wandb=args.wandb)
    print(summary["table"])
    if summary["chosen"]:
        print(f"chosen: {summary['chosen']}")
    not_done = [r["name"] for r in summary["runs"] if r.get("status") != "done"]
    if not_done:
        log.warning("%d of %d runs did not finish: %s", len(not_done), len(summary["runs"]), ", ".join(not_done))
    # exit 3 (as train-gan when its run diverges) only when no run finished or can still resume
    alive = [r for r in summary["runs"] if r.get("status") not in ("diverged", "failed")]
    return 0 if alive else 3
