"""``w2vu train-gan``: train the wav2vec-U GAN on segment features and phonemised text.

    w2vu train-gan runs/gan --features seg/ --text text/ --config configs/gan/w2vu.yaml trainer.max_updates=1000
    w2vu train-gan runs/gan --features seg/ --text text/ --config configs/gan/cpu.yaml --threads 1   # the demo's CPU settings
    torchrun --nproc_per_node 2 -m wav2vec_u.cli train-gan runs/gan --features seg/ --text text/

Writes ``last.pt`` / ``best.pt`` (by the unsupervised metric), ``config.yaml``, ``metrics.jsonl``,
``train-gan.log`` and ``train-gan.run.json`` into the output dir. Re-running the same command
resumes from ``last.pt``. Under ``torchrun`` each process takes its share of the global batch.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from wav2vec_u.io import resource_path
from wav2vec_u.config import add_config_arguments, add_tracking_arguments, config_from_args
from wav2vec_u.train.config import GanConfig

log = logging.getLogger("wav2vec_u.train")

DEFAULT_CONFIG = resource_path("configs", "gan", "w2vu.yaml")


def add_gan_input_arguments(parser: argparse.ArgumentParser) -> None:
    """--features, --text, --threads: read by :func:`gan_config_and_threads` (train-gan and sweep)."""
    parser.add_argument("--features", help="segment feature dir (sets data.features)")
    parser.add_argument("--text", help="prepare-text output dir (sets data.text)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, one per core); 1 is "
                        "fastest for the demo's small models on a shared machine, as the demo sets it")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("outdir", type=Path, help="output dir (checkpoints, logs); resumes from its last.pt")
    add_gan_input_arguments(parser)
    add_config_arguments(parser, DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    add_tracking_arguments(parser)


def gan_config_and_threads(args: argparse.Namespace) -> GanConfig:
    """The GanConfig of ``--config`` + overrides with ``--features``/``--text`` applied; sets ``--threads``."""
    cfg = config_from_args(GanConfig, args)
    if args.threads is not None:
        import torch  # noqa: PLC0415

        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.features:
        cfg.data.features = args.features
    if args.text:
        cfg.data.text = args.text
    return cfg


def run(args: argparse.Namespace) -> int:
    from wav2vec_u.train.run import train_gan  # noqa: PLC0415
    from wav2vec_u.train.trainer import TrainingDiverged  # noqa: PLC0415

    cfg = gan_config_and_threads(args)
    try:
        summary = train_gan(cfg, args.outdir, wandb=args.wandb)
    except TrainingDiverged as exc:
        log.error("%s", exc)
        return 3
    log.info("train-gan %s at update %d; best weighted_lm_ppl %.4g", summary["status"], summary["step"],
             summary["best_weighted_lm_ppl"])
    return 0
