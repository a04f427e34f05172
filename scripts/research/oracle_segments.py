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

import numpy as np


def main() -> int:
    corpus, feats_dir, out = map(Path, sys.argv[1:4])
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid"):
        feats = np.load(feats_dir / f"{split}.npy", mmap_mode="r")
        lens = [int(x) for x in (feats_dir / f"{split}.lengths").read_text().split()]
        offs = np.cumsum([0] + lens)
        recs = [json.loads(x) for x in (corpus / f"{split}.timings.jsonl").read_text().splitlines()]
        if len(recs) != len(lens):
            raise SystemExit(f"{corpus / split}.timings.jsonl has {len(recs)} utterances, features {len(lens)}")
        segs, seg_lens, phn = [], [], []
        for i, rec in enumerate(recs):
            f = feats[offs[i]:offs[i + 1]]
            rows = []
            for start, end in rec["timings"]:  # seconds; features are 100 frames/s
                a = min(int(round(start * 100)), len(f) - 1)
                b = max(a + 1, min(int(round(end * 100)), len(f)))
                rows.append(f[a:b].mean(0))
            segs.append(np.stack(rows))
            seg_lens.append(len(rows))
            phn.append(" ".join(rec["phones"]))
        np.save(out / f"{split}.npy", np.concatenate(segs).astype(np.float32))
        (out / f"{split}.lengths").write_text("".join(f"{n}\n" for n in seg_lens))
        (out / f"{split}.phn").write_text("".join(p + "\n" for p in phn))
        print(split, sum(seg_lens), "segments,", len(seg_lens), "utterances")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
