"""``w2vu prepare-audio``: frame features and segment features in one step (wav2vec-U audio prep).

    w2vu prepare-audio corpus/ prep/ --config configs/features/prepare_mfcc.yaml
    w2vu prepare-audio corpus/ prep/ --config configs/features/prepare_wav2vec2_large.yaml \\
        --extractor fairseq:/models/wav2vec_vox_new.pt extract.features.device=cuda

Every manifest in ``corpus/`` is a split (or ``--splits train valid``); other ``.tsv`` tables
such as ``skipped.tsv`` are not (``wav2vec_u.audio.manifest.scan_manifests``). Outputs::

    prep/frames/    {split}.npy .lengths .tsv (+ labels), meta.json   (w2vu extract)
    prep/segments/  {split}.npy .lengths .tsv .cluster (+ labels), pca_A/pca_b/centroids.npy, meta.json

wav2vec-U 2.0 (``mode: w2vu2``, ``configs/features/prepare_w2vu2.yaml``; on a CPU
``prepare_w2vu2_mfcc.yaml``) writes no segments; it adds the auxiliary targets beside the frames::

    prep/frames/    ... as above, + {split}.km (k-means ids of the MFCC frames), km.json, km.centroids.npy
    prep/mfcc/      {split}.npy: 39-dim Kaldi MFCC + deltas at 100 Hz, the targets' source

Both stages are cached: a rerun with the same options does nothing; a changed segment option
(e.g. ``segments.kmeans.k=64``) recomputes only the segments; a changed extraction option
recomputes both. Options: :class:`PrepareAudioConfig` (``extract.*`` and ``segments.*``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from wav2vec_u.config import add_config_arguments, add_stage_arguments, add_tracking_arguments, config_from_args
from wav2vec_u.audio.prepare import PrepareAudioConfig, prepare_audio
from wav2vec_u.audio.manifest import split_manifests
from wav2vec_u.tracking import Tracker

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", type=Path, help="folder with fairseq manifests ({split}.tsv), or one manifest")
    parser.add_argument("outdir", type=Path, help="output folder (frames/ and segments/ inside)")
    parser.add_argument("--splits", nargs="+", help="only these splits (default: every *.tsv)")
    parser.add_argument("--extractor", help="shortcut for extract.features.extractor")
    parser.add_argument("--layer", help="shortcut for extract.features.layer")
    parser.add_argument("--device", help="shortcut for extract.features.device")
    add_stage_arguments(parser, force=False)
    add_config_arguments(parser)
    add_tracking_arguments(parser)


def run(args: argparse.Namespace) -> int:

    short = []
    for flag, key in (("extractor", "extractor"), ("layer", "layer"), ("device", "device")):
        if getattr(args, flag) is not None:
            short.append(f"extract.features.{key}={getattr(args, flag)}")
    args.overrides = short + list(args.overrides)
    cfg = config_from_args(PrepareAudioConfig, args)
    split_manifests(args.corpus, args.splits)  # a bad manifest fails here, before OUTDIR exists
    seed = cfg.targets.seed if cfg.mode == "w2vu2" else cfg.segments.seed
    with Tracker(args.outdir, stage="prepare-audio", config=cfg, seed=seed, wandb=args.wandb) as tracker:
        result = prepare_audio(args.corpus, args.outdir, cfg, args.splits, args.progress)
        tracker.log({k: v for k, v in result.items() if k in ("extract", "segments", "targets")})
    rest = f"targets {result['targets']}" if "targets" in result else f"segments {result['segments']}"
    print(f"prepare-audio: frames {result['extract']}, {rest} ({args.outdir})")
    return 0
