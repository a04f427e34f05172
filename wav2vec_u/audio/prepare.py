"""wav2vec-U audio preparation as one function: frame features, then segments, each a cached stage.

    prepare_audio(Path("out/corpus"), Path("out/prep"), PrepareAudioConfig())   # out/prep/{frames,segments}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from wav2vec_u.audio.extract import ExtractConfig
from wav2vec_u.audio.segments import SegmentsConfig
from wav2vec_u.audio.extract import ExtractionJob
from wav2vec_u.audio.features import build_extractor
from wav2vec_u.audio.manifest import split_manifests
from wav2vec_u.audio.segments import segments_stage

log = logging.getLogger(__name__)


@dataclass
class PrepareAudioConfig:
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    segments: SegmentsConfig = field(default_factory=SegmentsConfig)


def prepare_audio(corpus: Path, outdir: Path, cfg: PrepareAudioConfig, splits: list[str] | None = None,
                  progress: bool = True) -> dict:
    """Extract + segments with stage caching; returns what each stage did."""

    manifests = split_manifests(corpus, splits)
    frames, segs = outdir / "frames", outdir / "segments"
    done = {}
    extractor = None
    for split, manifest in manifests.items():
        if extractor is None:
            extractor = build_extractor(cfg.extract.features)
        done[split] = ExtractionJob(manifest, frames, split, cfg.extract, (0, 1), extractor).run(progress=progress)["status"]
    seg_cfg = cfg.segments
    if not seg_cfg.splits:
        seg_cfg.splits = list(manifests)
    if seg_cfg.fit_split not in seg_cfg.splits:
        raise ValueError(f"segments.fit_split '{seg_cfg.fit_split}' is not among the splits {seg_cfg.splits} "
                         f"(add {seg_cfg.fit_split}.tsv to {corpus} or set segments.fit_split)")
    ran = segments_stage(frames, segs, seg_cfg)
    return {"extract": done, "segments": "done" if ran else "up-to-date"}
