"""``w2vu segments``: PCA, k-means, merge and mean-pool a frame feature folder into segment features.

    w2vu segments feats/ segs/                                   # every split in feats/, fit on train
    w2vu segments feats/ segs/ kmeans.k=64 pool.mean_pool=false
    w2vu segments /old/fairseq/prepared/ segs/                   # raw {split}.npy of fairseq's prepare_audio.sh
    w2vu segments feats_test/ segs_test/ --pretrained segs/      # apply train's PCA and centroids

Options: :class:`wav2vec_u.audio.segments.SegmentsConfig` (``--config configs/features/segments.yaml``
plus ``key=value`` overrides). A rerun with the same options and inputs does nothing.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from wav2vec_u.audio.features_io import resolve_feature_dir
from wav2vec_u.audio.segments import SegmentsConfig, segments_stage
from wav2vec_u.config import add_config_arguments, add_tracking_arguments, config_from_args

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("features", type=Path, help="frame feature folder ({split}.npy + .lengths), ours or fairseq's")
    parser.add_argument("outdir", type=Path, help="segment feature folder to write")
    parser.add_argument("--pretrained", type=Path, help="reuse pca_A/pca_b/centroids.npy from an earlier segments folder")
    add_config_arguments(parser)
    add_tracking_arguments(parser, tracked=False)


def run(args: argparse.Namespace) -> int:

    cfg = config_from_args(SegmentsConfig, args)
    frames = resolve_feature_dir(args.features, cfg.splits[0] if cfg.splits else cfg.fit_split, kind="frames")
    ran = segments_stage(frames, args.outdir, cfg, args.pretrained)
    print(f"segments: {'written to' if ran else 'up to date in'} {args.outdir}")
    return 0
