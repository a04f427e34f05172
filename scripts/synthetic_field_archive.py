"""A synthetic field archive for checking recipes/own-language end to end, and its references.

    python scripts/synthetic_field_archive.py build CORPUS OUT --recordings 4
        CORPUS: a `w2vu synth` folder (train.tsv + train.phn). OUT/audio/: the utterances joined
        in order into RECORDINGS long recordings (pauses of 1.5-4 s, white noise at -60 dBFS,
        stereo 44.1 kHz, the first as FLAC, the others WAV); OUT/refs/spans.tsv: recording, start
        and end seconds and phones of every utterance; OUT/refs/recordings.phn: one line per
        recording (sorted by name), its utterances' phones joined; OUT/refs/recordings.wrd: their words.
    python scripts/synthetic_field_archive.py chunk-refs OUT/refs/spans.tsv CHUNKS REFDIR
        CHUNKS: a `w2vu cut` folder. REFDIR/{split}.phn: per chunk of CHUNKS/{split}.tsv, the
        phones of the utterances whose middle lies in it (for `w2vu score` and --ref-dir).

Only for checks: the recipe itself never reads a reference.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from wav2vec_u.audio.io import SAMPLE_RATE, load_16k, resample
from wav2vec_u.audio.manifest import read_manifest

SR_OUT = 44_100


def build(corpus: Path, out: Path, recordings: int, seed: int) -> None:
    root, entries = read_manifest(corpus / "train.tsv")
    phones = (corpus / "train.phn").read_text().splitlines()
    words = (corpus / "train.wrd").read_text().splitlines()
    assert len(phones) == len(entries), "train.tsv and train.phn disagree"
    rng = np.random.default_rng(seed)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "refs").mkdir(parents=True, exist_ok=True)
    spans, per_rec = [], []
    for r, idx in enumerate(np.array_split(np.arange(len(entries)), recordings)):
        name = f"rec_{r}.flac" if r == 0 else f"rec_{r}.wav"
        parts, t = [np.zeros(int(rng.uniform(1.5, 3.0) * SAMPLE_RATE), np.float32)], 0
        t = len(parts[0])
        for i in idx:
            wav = load_16k(root / entries[i][0])
            spans.append((Path(name).stem, t / SAMPLE_RATE, (t + len(wav)) / SAMPLE_RATE, phones[i]))
            gap = np.zeros(int(rng.uniform(1.5, 4.0) * SAMPLE_RATE), np.float32)
            parts += [wav, gap]
            t += len(wav) + len(gap)
        x = np.concatenate(parts)
        x = x + 0.001 * rng.standard_normal(len(x)).astype(np.float32)
        y = resample(x, SAMPLE_RATE, SR_OUT)
        sf.write(str(out / "audio" / name), np.stack([y, 0.8 * y], axis=1), SR_OUT, subtype="PCM_16")
        per_rec.append((Path(name).stem, " ".join(phones[i] for i in idx), " ".join(words[i] for i in idx)))
        print(f"{name}: {len(idx)} utterances, {len(x) / SAMPLE_RATE / 60:.1f} min")
    with open(out / "refs" / "spans.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["recording", "start", "end", "phones"])
        w.writerows([(n, f"{a:.3f}", f"{b:.3f}", p) for n, a, b, p in spans])
    (out / "refs" / "recordings.phn").write_text("".join(p + "\n" for _, p, _ in sorted(per_rec)))
    (out / "refs" / "recordings.wrd").write_text("".join(w + "\n" for _, _, w in sorted(per_rec)))


def chunk_refs(spans_tsv: Path, chunks: Path, refdir: Path) -> None:
    with open(spans_tsv, newline="") as f:
        spans = [(r["recording"], float(r["start"]), float(r["end"]), r["phones"])
                 for r in csv.DictReader(f, delimiter="\t")]
    with open(chunks / "chunks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    refdir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid"):
        if not (chunks / f"{split}.tsv").is_file():
            continue
        order = [rel for rel, _ in read_manifest(chunks / f"{split}.tsv")[1]]
        by_chunk = {r["chunk"]: r for r in rows}
        lines = []
        for rel in order:
            c = by_chunk[rel]
            rec, a, b = Path(c["recording"]).stem, float(c["start"]), float(c["end"])
            lines.append(" ".join(p for n, s, e, p in spans if n == rec and a <= (s + e) / 2 < b))
        (refdir / f"{split}.phn").write_text("".join(line + "\n" for line in lines))
        print(f"{split}: {len(lines)} chunks, {sum(1 for x in lines if not x)} without speech")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("corpus", type=Path)
    b.add_argument("out", type=Path)
    b.add_argument("--recordings", type=int, default=4)
    b.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("chunk-refs")
    c.add_argument("spans", type=Path)
    c.add_argument("chunks", type=Path)
    c.add_argument("refdir", type=Path)
    args = ap.parse_args()
    if args.cmd == "build":
        build(args.corpus, args.out, args.recordings, args.seed)
    else:
        chunk_refs(args.spans, args.chunks, args.refdir)


if __name__ == "__main__":
    main()
