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

from wav2vec_u.config import add_config_arguments, add_tracking_arguments, config_from_args, to_dict

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("features", type=Path, help="frame feature folder ({split}.npy + .lengths), ours or fairseq's")
    parser.add_argument("outdir", type=Path, help="segment feature folder to write")
    parser.add_argument("--pretrained", type=Path, help="reuse pca_A/pca_b/centroids.npy from an earlier segments folder")
    add_config_arguments(parser)
    add_tracking_arguments(parser, tracked=False)


def segments_stage(frames_dir: Path, outdir: Path, cfg, pretrained: Path | None = None, extra_meta: dict | None = None) -> bool:
    """Run :func:`make_segments` unless its recorded options and inputs match; True if it ran."""
    from wav2vec_u.audio.features_io import splits_in
    from wav2vec_u.audio.segments import make_segments
    from wav2vec_u.stage import fingerprint, run_stage

    splits = list(cfg.splits) or splits_in(frames_dir)
    if not splits:
        raise FileNotFoundError(f"no {{split}}.npy + {{split}}.lengths in {frames_dir}")
    inputs = []
    npy_stats = {}
    for s in splits:
        inputs.append(frames_dir / f"{s}.lengths")
        rec = frames_dir / f"{s}.extract.json"  # our extraction fingerprint covers the frames' content
        if rec.is_file():
            inputs.append(rec)
        st = (frames_dir / f"{s}.npy").stat()
        npy_stats[s] = [st.st_size, st.st_mtime_ns]  # files from elsewhere: size and time stand in for a hash
    if pretrained is not None:
        inputs += [p for p in sorted(Path(pretrained).glob("*.npy")) if p.stem in ("pca_A", "pca_b", "centroids")]
    fp = fingerprint({"segments": to_dict(cfg), "splits": splits, "npy": npy_stats,
                      "pretrained": str(pretrained) if pretrained else None}, inputs)
    outputs = [f"{s}{x}" for s in splits for x in (".npy", ".lengths")] + ["meta.json"]
    ran, _ = run_stage(outdir, fp, outputs,
                       lambda: make_segments(frames_dir, outdir, cfg, pretrained=pretrained, extra_meta=extra_meta))
    if not ran:
        log.info("segments in %s are up to date, nothing to do", outdir)
    return ran


def run(args: argparse.Namespace) -> int:
    from wav2vec_u.audio.features_io import resolve_feature_dir
    from wav2vec_u.audio.segments import SegmentsConfig

    cfg = config_from_args(SegmentsConfig, args)
    frames = resolve_feature_dir(args.features, cfg.splits[0] if cfg.splits else cfg.fit_split, kind="frames")
    ran = segments_stage(frames, args.outdir, cfg, args.pretrained)
    print(f"segments: {'written to' if ran else 'up to date in'} {args.outdir}")
    return 0
