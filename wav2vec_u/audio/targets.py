"""wav2vec-U 2.0's auxiliary targets: k-means ids of Kaldi MFCC frames, written beside the frame features.

The reference (fairseq ``prepare_audio_v2.sh`` with HuBERT's ``simple_kmeans`` scripts) computes
39-dim MFCC of the training audio (Kaldi's definition + deltas + delta-deltas, 100 Hz), fits
64-cluster k-means on every frame and writes ``train.km``: one line per utterance, the cluster
id of every MFCC frame. The GAN decimates them by 2 to the 50 Hz frame rate of its input. Here::

    cfg = TargetsConfig()                                   # k 64, Kaldi MFCC + deltas
    make_mfcc(manifests, Path("prep/mfcc"), cfg)           # the one extraction job: cached, resumable
    targets_stage(Path("prep/mfcc"), Path("prep/frames"), ["train", "valid"], cfg)
    # -> prep/frames/{train,valid}.km, km.json (classes, both frame rates, their ratio), km.centroids.npy

Every split gets targets (the reference makes them for train only; the others cost little and
are not read by training). ``km.json`` lets ``w2vu train-gan`` check ``data.aux_downsample``
against the two frame rates. K-means is the segments stage's (faiss), not the reference's
scikit-learn mini-batch k-means.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wav2vec_u.audio.extract import ExtractConfig, ExtractionJob
from wav2vec_u.audio.features import FeatureConfig
from wav2vec_u.audio.features_io import align_targets, load_features, save_npy, write_clusters
from wav2vec_u.audio.segments import assign_clusters, fit_kmeans, sample_rows
from wav2vec_u.audio.spectral import kaldi_mfcc
from wav2vec_u.config import at_least, in_range, to_dict
from wav2vec_u.io import read_json, write_json
from wav2vec_u.stage import fingerprint, run_stage
from wav2vec_u.tokens import split_by_lengths
from wav2vec_u.tracking import provenance

log = logging.getLogger(__name__)


@dataclass
class TargetsConfig:
    """The auxiliary targets of ``prepare-audio`` in 2.0 mode; every default is the reference's."""

    k: int = at_least(2, default=64)  # prepare_audio_v2.sh: dim=64 clusters (w2vu2.yaml: target_dim 64)
    niter: int = at_least(1, default=100)  # learn_kmeans.py: max_iter 100
    nredo: int = at_least(1, default=3)  # ours: faiss restarts, best kept (learn_kmeans.py: n_init 20 k-means++ seeds)
    sample_frames: int | None = at_least(1, default=None)  # None: every frame of fit_split (learn_kmeans.py: percent -1)
    deltas: int = in_range(0, 2, default=2)  # dump_mfcc_feature.py: MFCC + deltas + delta-deltas = 39 dims
    fit_split: str = "train"  # prepare_audio_v2.sh: k-means fitted on the train split
    suffix: str = "km"  # the files' extension (w2vu2.yaml: task.aux_target_postfix km)
    seed: int = 1


def mfcc_extract_config(cfg: TargetsConfig) -> ExtractConfig:
    """The MFCC the targets are clustered from: Kaldi's definition (no CMVN, no stacking)."""
    return ExtractConfig(features=FeatureConfig(extractor="mfcc", spectral=kaldi_mfcc(cfg.deltas)))


def make_mfcc(manifests: dict[str, Path], mfcc_dir: Path, cfg: TargetsConfig, progress: bool = True) -> dict:
    """Kaldi MFCC of every split into ``mfcc_dir`` (a frame feature folder); what each job did."""
    ex = mfcc_extract_config(cfg)
    return {split: ExtractionJob(manifest, mfcc_dir, split, ex).run(progress=progress)["status"]
            for split, manifest in manifests.items()}


def make_targets(mfcc_dir: Path, frames_dir: Path, splits: list[str], cfg: TargetsConfig) -> dict:
    """Fit k-means on ``fit_split``'s MFCC, write ``{split}.{suffix}`` into ``frames_dir``; returns the record."""
    mfcc_rate, feat_rate = _frame_rate(mfcc_dir), _frame_rate(frames_dir)
    ratio = mfcc_rate / feat_rate
    downsample = int(round(ratio))
    if downsample < 1 or abs(ratio - downsample) > 1e-6:
        raise ValueError(f"the MFCC targets are at {mfcc_rate:g} Hz and the features in {frames_dir} at {feat_rate:g} "
                         f"Hz: the GAN keeps every n-th target, so the ratio must be a whole number (it is {ratio:g})")
    x, _ = load_features(mfcc_dir, cfg.fit_split, mmap=True)
    rows = sample_rows(len(x), cfg.sample_frames, cfg.seed)
    log.info("k-means (k=%d, %d iterations, %d restarts) on %d MFCC frames of %s", cfg.k, cfg.niter, cfg.nredo,
             len(rows), cfg.fit_split)
    centroids = fit_kmeans(np.asarray(x[rows], dtype=np.float32), cfg.k, cfg.niter, cfg.nredo, cfg.seed)
    del x
    stats = {}
    for split in splits:
        x, lengths = load_features(mfcc_dir, split, mmap=True)
        ids = split_by_lengths(assign_clusters(x, centroids), lengths)
        target = frames_dir / f"{split}.{cfg.suffix}"
        # the targets must line up with this split's features before anything is written
        _, frame_lengths = load_features(frames_dir, split, mmap=True)
        align_targets(ids, frame_lengths, downsample, f"{target} (MFCC of {mfcc_dir / split}.npy)")
        write_clusters(target, ids)
        used = np.bincount(np.concatenate(ids) if ids else np.zeros(0, np.int64), minlength=cfg.k)
        stats[split] = {"utterances": len(ids), "mfcc_frames": int(sum(lengths)),
                        "feature_frames": int(sum(frame_lengths)), "classes_used": int((used > 0).sum())}
    save_npy(frames_dir / f"{cfg.suffix}.centroids.npy", centroids)
    inputs = {f"mfcc/{s}.lengths": str(mfcc_dir / f"{s}.lengths") for s in splits}
    record = {"kind": "aux_targets", "classes": cfg.k, "target_frame_rate": mfcc_rate, "feature_frame_rate": feat_rate,
              "downsample": downsample, "mfcc_dir": str(mfcc_dir.resolve()), "mfcc": to_dict(kaldi_mfcc(cfg.deltas)),
              "targets": to_dict(cfg), "stats": stats, "provenance": provenance(cfg, cfg.seed, inputs)}
    write_json(frames_dir / f"{cfg.suffix}.json", record)
    return record


def _frame_rate(directory: Path) -> float:
    meta = directory / "meta.json"
    rate = read_json(meta).get("frame_rate") if meta.is_file() else None
    if not rate:
        raise FileNotFoundError(f"{meta} records no frame_rate: the folder must be a `w2vu extract` output")
    return float(rate)


def targets_stage(mfcc_dir: Path, frames_dir: Path, splits: list[str], cfg: TargetsConfig) -> bool:
    """Run :func:`make_targets` unless its options and inputs match what it recorded; True if it ran.

    Its record (``.{suffix}.stage.json``) sits in ``frames_dir`` beside the targets, apart from
    the extraction's own records."""
    if cfg.fit_split not in splits:
        raise ValueError(f"targets.fit_split '{cfg.fit_split}' is not among the splits {splits}")
    inputs = [d / f"{s}{x}" for d in (mfcc_dir, frames_dir) for s in splits for x in (".lengths", ".extract.json")]
    fp = fingerprint({"targets": to_dict(cfg), "splits": splits}, [p for p in inputs if p.is_file()])
    outputs = [f"{s}.{cfg.suffix}" for s in splits] + [f"{cfg.suffix}.json", f"{cfg.suffix}.centroids.npy"]
    ran, _ = run_stage(frames_dir, fp, outputs, lambda: make_targets(mfcc_dir, frames_dir, splits, cfg),
                       name=f".{cfg.suffix}.stage.json", what="auxiliary targets")
    if not ran:
        log.info("auxiliary targets in %s are up to date, nothing to do", frames_dir)
    return ran
