"""``w2vu train-gan``: train the wav2vec-U GAN on segment features and phonemised text.

    w2vu train-gan runs/gan --features seg/ --text text/ --config configs/gan/w2vu.yaml trainer.max_updates=1000
    torchrun --nproc_per_node 2 -m wav2vec_u.cli train-gan runs/gan --features seg/ --text text/

Writes ``last.pt`` / ``best.pt`` (by the unsupervised metric), ``config.yaml``, ``metrics.jsonl``,
``train-gan.log`` and ``train-gan.run.json`` into the output dir. Re-running the same command
resumes from ``last.pt``. Under ``torchrun`` each process takes its share of the global batch.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import torch

from wav2vec_u.config import add_config_arguments, add_tracking_arguments, config_from_args, save_config
from wav2vec_u.io import sha256_file
from wav2vec_u.train.config import GanConfig

log = logging.getLogger("wav2vec_u.train")

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "gan" / "w2vu.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("outdir", type=Path, help="output dir (checkpoints, logs); resumes from its last.pt")
    parser.add_argument("--features", help="segment feature dir (sets data.features)")
    parser.add_argument("--text", help="prepare-text output dir (sets data.text)")
    add_config_arguments(parser, DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    add_tracking_arguments(parser)


def _inputs(feat_dir: Path, text_dir: Path, cfg: GanConfig) -> dict[str, str]:
    """Hashes of the small files that identify the inputs (lengths, text, dictionary, metas)."""
    files = [feat_dir / f"{cfg.data.train_split}.lengths", feat_dir / "meta.json",
             text_dir / cfg.data.text_file, text_dir / "dict.phn.txt", text_dir / "meta.json"]
    return {str(p): sha256_file(p) for p in files if p.is_file()}


def setup_distributed(device: str) -> tuple[int, int, str]:
    """(rank, world_size, device) from torchrun's environment; single process without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    import torch.distributed as dist  # noqa: PLC0415

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return rank, world, device


def train_gan(cfg: GanConfig, outdir: str | Path, wandb: bool = False) -> dict:
    """The whole command as a function: load data, train, return a summary."""
    from wav2vec_u.tracking import Tracker  # noqa: PLC0415
    from wav2vec_u.train.data import FeatureSet, TextSet, read_dictionary  # noqa: PLC0415
    from wav2vec_u.train.selection import find_phone_lm, load_lm  # noqa: PLC0415
    from wav2vec_u.train.trainer import GanTrainer  # noqa: PLC0415

    outdir = Path(outdir)
    if not cfg.data.features or not cfg.data.text:
        raise ValueError("set the inputs: --features DIR --text DIR (or data.features=... data.text=...)")
    feat_dir, text_dir = Path(cfg.data.features), Path(cfg.data.text)
    rank, world, device = setup_distributed(cfg.trainer.device)
    cfg.trainer.device = device
    phones = read_dictionary(text_dir)
    train = FeatureSet.from_dir(feat_dir, cfg.data.train_split, device=device)
    text = TextSet.from_file(text_dir / cfg.data.text_file, phones, device=device)
    valid = None
    if (feat_dir / f"{cfg.data.valid_split}.npy").is_file():
        valid = FeatureSet.from_dir(feat_dir, cfg.data.valid_split, device=device)
    else:
        log.warning("no %s split in %s: no validation, no best.pt", cfg.data.valid_split, feat_dir)
    lm_path = find_phone_lm(text_dir)
    lm = load_lm(lm_path) if lm_path is not None else None
    if lm is None:
        log.warning("no phone LM (lm.phones.4.bin/.arpa) in %s: no unsupervised metric, no best.pt", text_dir)
    inputs = _inputs(feat_dir, text_dir, cfg)
    if rank == 0:
        outdir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, outdir / "config.yaml")
    lineage = {"features": str(feat_dir), "text": str(text_dir), "phone_lm": str(lm_path) if lm_path else None,
               "inputs": inputs}
    with Tracker(outdir, "train-gan", config=cfg, seed=cfg.trainer.seed, inputs=inputs, wandb=wandb, rank=rank) as tr:
        lineage["provenance"] = {k: v for k, v in tr.info.items() if k != "config"}
        trainer = GanTrainer(cfg, outdir, train, text, phones, valid=valid, lm=lm, tracker=tr, lineage=lineage,
                             rank=rank, world_size=world)
        result = trainer.train()
    if world > 1:
        import torch.distributed as dist  # noqa: PLC0415

        dist.barrier()
        dist.destroy_process_group()
    checksum = float(sum(p.detach().double().sum() for p in trainer.gan.parameters()))  # equal on every rank
    return {"status": result.status, "step": result.step, "best_weighted_lm_ppl": result.best_metric,
            "param_checksum": checksum, "rank": rank, "world_size": world,
            **{k: v for k, v in result.last_metrics.items() if isinstance(v, (int, float))}}


def run(args: argparse.Namespace) -> int:
    from wav2vec_u.train.trainer import TrainingDiverged  # noqa: PLC0415

    cfg = config_from_args(GanConfig, args)
    if args.features:
        cfg.data.features = args.features
    if args.text:
        cfg.data.text = args.text
    try:
        summary = train_gan(cfg, args.outdir, wandb=args.wandb)
    except TrainingDiverged as exc:
        log.error("%s", exc)
        return 3
    log.info("train-gan %s at update %d; best weighted_lm_ppl %.4g", summary["status"], summary["step"],
             summary["best_weighted_lm_ppl"])
    return 0
