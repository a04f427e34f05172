"""The train-gan stage over folders: load features, text and phone LM, train, return a summary.

    summary = train_gan(cfg, "runs/gan")        # cfg.data.features / cfg.data.text name the inputs

``w2vu train-gan`` parses its arguments and calls this; the demo calls it too. Under
``torchrun`` each process takes its share of the global batch. The first process holds the
output folder's run lock (:mod:`wav2vec_u.lock`) for the whole run: a second run on the same
folder is refused instead of overwriting its checkpoints and config.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from wav2vec_u.config import ConfigError, save_config
from wav2vec_u.io import read_json, sha256_file
from wav2vec_u.lock import run_lock
from wav2vec_u.train.config import GanConfig
from wav2vec_u.text.lm import find_phone_lm, load_lm
from wav2vec_u.tracking import Tracker
from wav2vec_u.train.data import FeatureSet, TextSet, read_dictionary
from wav2vec_u.train.trainer import GanTrainer

log = logging.getLogger("wav2vec_u.train")


def _input_files(feat_dir: Path, text_dir: Path, cfg: GanConfig, lm_path: Path | None) -> dict[str, Path]:
    """The files a run learns from, by role ("features/train.npy"), so a moved folder still matches.

    The feature arrays are hashed whole: the trainer reads them into memory anyway, so hashing
    costs about as much as loading once more, and a re-extracted train.npy of the same shape
    (same .lengths) is exactly the change a resume must notice.
    """
    d = cfg.data
    files = {f"features/{name}": feat_dir / name
             for name in (f"{d.train_split}.npy", f"{d.train_split}.lengths", f"{d.valid_split}.npy",
                          f"{d.valid_split}.lengths", "meta.json")}
    if cfg.loss.aux_weight > 0 and d.aux_targets:  # 2.0's auxiliary targets
        files[f"features/{d.train_split}.{d.aux_targets}"] = feat_dir / f"{d.train_split}.{d.aux_targets}"
    files.update({f"text/{name}": text_dir / name for name in (d.text_file, "dict.phn.txt", "meta.json")})
    if lm_path is not None:
        files[f"phone_lm/{lm_path.name}"] = lm_path
    return {k: p for k, p in files.items() if p.is_file()}


def feature_kind(feat_dir: Path) -> str | None:
    """"frames" or "segments" as the folder's meta.json says (None for folders from elsewhere): what
    ``w2vu transcribe`` must compute from audio for this GAN (2.0 reads frames, 1.0 segments)."""
    meta = feat_dir / "meta.json"
    try:
        return read_json(meta).get("kind") if meta.is_file() else None
    except ValueError:
        return None


def aux_target_options(cfg: GanConfig, feat_dir: Path) -> dict:
    """How :meth:`FeatureSet.from_dir` reads 2.0's auxiliary targets, checked against the config and
    against what prepare-audio recorded (``{suffix}.json``: classes and frame-rate ratio)."""
    d, loss, gen = cfg.data, cfg.loss, cfg.generator
    if loss.aux_weight <= 0:
        return {}
    if not d.aux_targets:
        raise ConfigError("loss.aux_weight > 0 needs data.aux_targets, the suffix of the target files "
                          "beside the features (2.0: km)", key="data.aux_targets")
    if gen.aux_classes <= 0 or not gen.residual:
        raise ConfigError("loss.aux_weight > 0 needs the auxiliary head: generator.aux_classes (2.0: 64) and "
                          "generator.residual=true", key="generator.aux_classes")
    record = feat_dir / f"{d.aux_targets}.json"
    if record.is_file():  # written by w2vu prepare-audio; fairseq's 2.0 layout has none
        rec = read_json(record)
        if int(rec["classes"]) > gen.aux_classes:
            raise ConfigError(f"{record}: the targets have {rec['classes']} classes but generator.aux_classes is "
                              f"{gen.aux_classes}", key="generator.aux_classes")
        if int(rec["downsample"]) != d.aux_downsample:
            raise ConfigError(f"{record}: the targets are at {rec['target_frame_rate']} Hz and the features at "
                              f"{rec['feature_frame_rate']} Hz, so data.aux_downsample must be {rec['downsample']}, "
                              f"not {d.aux_downsample}", key="data.aux_downsample")
    return {"aux_targets": d.aux_targets, "aux_downsample": d.aux_downsample}


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
    outdir = Path(outdir)
    if not cfg.data.features or not cfg.data.text:
        raise ValueError("set the inputs: --features DIR --text DIR (or data.features=... data.text=...)")
    rank, world, device = setup_distributed(cfg.trainer.device)
    cfg.trainer.device = device
    # one process writes the folder (rank 0 saves every file), so one lock covers all ranks
    with run_lock(outdir, "train-gan") if rank == 0 else contextlib.nullcontext():
        return _train_gan(cfg, outdir, wandb, rank, world, device)


@dataclass
class GanInputs:
    """What a GAN run learns from, loaded once (``w2vu sweep`` shares it between its runs)."""

    phones: list[str]
    train: FeatureSet
    text: TextSet
    valid: FeatureSet | None
    lm: Any
    lineage: dict[str, Any]  # features, text, phone_lm, input hashes, files: recorded in every checkpoint
    inputs: dict[str, str]  # role -> sha256


def load_inputs(cfg: GanConfig, device: str) -> GanInputs:
    """Read the features, text, phone LM and their hashes that ``cfg.data`` names."""
    feat_dir, text_dir = Path(cfg.data.features), Path(cfg.data.text)
    phones = read_dictionary(text_dir)
    train = FeatureSet.from_dir(feat_dir, cfg.data.train_split, device=device, **aux_target_options(cfg, feat_dir))
    if train.targets is not None and int(train.targets.max()) >= cfg.generator.aux_classes:
        raise ConfigError(f"{feat_dir / cfg.data.train_split}.{cfg.data.aux_targets} holds class ids up to "
                          f"{int(train.targets.max())}, but generator.aux_classes is {cfg.generator.aux_classes}",
                          key="generator.aux_classes")
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
    files = _input_files(feat_dir, text_dir, cfg, Path(lm_path) if lm_path else None)
    inputs = {k: sha256_file(p) for k, p in files.items()}
    lineage = {"features": str(feat_dir), "text": str(text_dir), "phone_lm": str(lm_path) if lm_path else None,
               "inputs": inputs, "files": {k: str(p) for k, p in files.items()},
               "feature_kind": feature_kind(feat_dir)}
    return GanInputs(phones, train, text, valid, lm, lineage, inputs)


def _train_gan(cfg: GanConfig, outdir: Path, wandb: bool, rank: int, world: int, device: str) -> dict:
    data = load_inputs(cfg, device)
    phones, train, text, valid, lm, lineage, inputs = (data.phones, data.train, data.text, data.valid, data.lm,
                                                       data.lineage, data.inputs)
    trainer = GanTrainer(cfg, outdir, train, text, phones, valid=valid, lm=lm, lineage=lineage, rank=rank,
                         world_size=world)
    trainer.maybe_resume()  # before anything in outdir is rewritten: a refused resume changes nothing
    if rank == 0:
        outdir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, outdir / "config.yaml")  # the settings this run continues with
    with Tracker(outdir, "train-gan", config=cfg, seed=cfg.trainer.seed, inputs=inputs, wandb=wandb, rank=rank) as tr:
        trainer.lineage["provenance"] = {k: v for k, v in tr.info.items() if k != "config"}
        trainer.tracker = tr
        result = trainer.train()
    if world > 1:
        import torch.distributed as dist  # noqa: PLC0415

        dist.barrier()
        dist.destroy_process_group()
    checksum = float(sum(p.detach().double().sum() for p in trainer.gan.parameters()))  # equal on every rank
    return {"status": result.status, "step": result.step, "best_weighted_lm_ppl": result.best_metric,
            "param_checksum": checksum, "rank": rank, "world_size": world,
            **{k: v for k, v in result.last_metrics.items() if isinstance(v, (int, float))}}
