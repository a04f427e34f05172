#!/usr/bin/env python
"""Diagnostic (uses the synthesiser's phone timings, i.e. labels): segment features at espeak's own
phone boundaries, one mean-pooled frame-feature vector per phone.

    .venv/bin/python scripts/research/oracle_segments.py RUN/corpus RUN/features OUT

Writes OUT/{train,valid}.{npy,lengths,phn} in the layout `w2vu train-gan --features` reads. It
answers "is the segmentation the problem?": docs/demo-findings.md, section "Search, not
features".
"""

import json
import sys
from pathlib import Path

from wav2vec_u.audio.features_io import load_features, save_features
from wav2vec_u.research.segmenters import oracle_segments


def main() -> int:
    corpus, feats_dir, out = map(Path, sys.argv[1:4])
    for split in ("train", "valid"):
        feats, lens = load_features(feats_dir, split, mmap=True)
        recs = [json.loads(x) for x in (corpus / f"{split}.timings.jsonl").read_text().splitlines()]
        segs, seg_lens = oracle_segments(feats, lens, [r["timings"] for r in recs])  # 100 frames/s
        save_features(out, split, segs, seg_lens)
        (out / f"{split}.phn").write_text("".join(" ".join(r["phones"]) + "\n" for r in recs), encoding="utf-8")
        print(split, sum(seg_lens), "segments,", len(seg_lens), "utterances")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
