"""wav2vec-U audio preparation as one function: frame features, then segments, each a cached stage.

    prepare_audio(Path("out/corpus"), Path("out/prep"), PrepareAudioConfig())   # out/prep/{frames,segments}

``mode: w2vu2`` prepares wav2vec-U 2.0's inputs instead: frame features and the auxiliary
targets beside them (``frames/{split}.km``, k-means ids of Kaldi MFCC frames, which are kept in
``mfcc/``); no segments (:mod:`wav2vec_u.audio.targets`)::

    prepare_audio(corpus, Path("out/prep2"), PrepareAudioConfig(mode="w2vu2"))  # out/prep2/{frames,mfcc}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from wav2vec_u.audio.extract import ExtractConfig
from wav2vec_u.audio.segments import SegmentsConfig
from wav2vec_u.audio.extract import ExtractionJob
from wav2vec_u.audio.features import build_extractor
from wav2vec_u.audio.manifest import split_manifests
from wav2vec_u.audio.segments import segments_stage
from wav2vec_u.audio.targets import TargetsConfig, make_mfcc, targets_stage

log = logging.getLogger(__name__)


@dataclass
class PrepareAudioConfig:
    # w2vu: frames -> segments (1.0); w2vu2: frames + MFCC-cluster targets, no segments (2.0)
    mode: Literal["w2vu", "w2vu2"] = "w2vu"
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    segments: SegmentsConfig = field(default_factory=SegmentsConfig)  # mode w2vu only
    targets: TargetsConfig = field(default_factory=TargetsConfig)  # mode w2vu2 only


def prepare_audio(corpus: Path, outdir: Path, cfg: PrepareAudioConfig, splits: list[str] | None = None,
                  progress: bool = True) -> dict:
    """Extract + segments (or, in 2.0 mode, + targets) with stage caching; returns what each stage did."""

    manifests = split_manifests(corpus, splits)
    frames, segs = outdir / "frames", outdir / "segments"
    done = {}
    extractor = None
    for split, manifest in manifests.items():
        if extractor is None:
            extractor = build_extractor(cfg.extract.features)
        done[split] = ExtractionJob(manifest, frames, split, cfg.extract, (0, 1), extractor).run(progress=progress)["status"]
    if cfg.mode == "w2vu2":
        mfcc = make_mfcc(manifests, outdir / "mfcc", cfg.targets, progress)
        ran = targets_stage(outdir / "mfcc", frames, list(manifests), cfg.targets)
        return {"extract": done, "mfcc": mfcc, "targets": "done" if ran else "up-to-date"}
    seg_cfg = cfg.segments
    if not seg_cfg.splits:
        seg_cfg.splits = list(manifests)
    if seg_cfg.fit_split not in seg_cfg.splits:
        raise ValueError(f"segments.fit_split '{seg_cfg.fit_split}' is not among the splits {seg_cfg.splits} "
                         f"(add {seg_cfg.fit_split}.tsv to {corpus} or set segments.fit_split)")
    ran = segments_stage(frames, segs, seg_cfg)
    return {"extract": done, "segments": "done" if ran else "up-to-date"}
