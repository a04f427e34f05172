"""Cut long recordings into voice-activity chunks as 16 kHz utterances with manifests (training data).

    cut_recordings(["field/"], "out/chunks", CutConfig())   # out/chunks/{train,valid}.tsv, audio/, chunks.csv

The training commands (``extract``, ``segments``, ``train-gan``, ``self-train``) expect
utterances of seconds listed in a fairseq manifest; a field archive holds hours-long files. This
cuts them with the very chunker ``w2vu transcribe`` uses (:mod:`.chunks`), so a model is trained
on the kind of chunks it will later transcribe. ``chunks.csv`` (not .tsv: ``extract`` reads every
.tsv of a folder as a candidate manifest) maps every chunk file back to its
recording and its start/end seconds there. Reruns rewrite everything (the chunks are cheap to
find again; the audio files are written atomically).
"""

from __future__ import annotations

import csv
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from wav2vec_u.audio.io import SAMPLE_RATE, AudioError, write_wav
from wav2vec_u.config import in_range
from wav2vec_u.io import atomic_write_text
from wav2vec_u.transcribe.chunks import ChunkConfig, find_chunks
from wav2vec_u.transcribe.stream import Recording
from wav2vec_u.audio.manifest import write_manifest
from wav2vec_u.transcribe.transcribe import find_audio


@dataclass
class CutConfig:
    chunks: ChunkConfig = field(default_factory=ChunkConfig)
    # fraction of the recordings (whole recordings, so no speaker-session leaks) held out as valid
    valid_percent: float = in_range(0.0, 1.0, hi_open=True, default=0.05)


def _is_valid(stem: Path, fraction: float) -> bool:
    """A stable, seed-free choice per recording: the same recording always lands in the same split."""
    return (zlib.crc32(str(stem).encode()) % 10_000) < fraction * 10_000


def cut_recordings(inputs: list[str | Path], outdir: str | Path, cfg: CutConfig | None = None) -> dict:
    """Chunk WAVs under ``outdir/audio/<recording>/``, manifests ``train.tsv``/``valid.tsv``, ``chunks.csv``
    and ``skipped.tsv``; returns counts."""

    cfg = cfg or CutConfig()
    outdir = Path(outdir)
    audio = outdir / "audio"
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "valid": []}
    rows, skipped, seconds = [], [], 0.0
    files = find_audio(inputs)
    held_out = {stem for _, stem in files if _is_valid(stem, cfg.valid_percent)}
    if not held_out and cfg.valid_percent > 0 and len(files) > 1:
        # train-gan validates (and picks best.pt) on valid: a small archive still holds one out
        held_out = {min((stem for _, stem in files), key=lambda st: zlib.crc32(str(st).encode()))}
    for path, stem in files:
        try:
            rec = Recording(path)
            chunks = find_chunks(rec, cfg.chunks)
            split = "valid" if stem in held_out else "train"
            for k, (s, e) in enumerate(chunks):
                rel = (stem / f"{stem.name}_{k:05d}.wav").as_posix()
                write_wav(audio / rel, rec.read(s, e), SAMPLE_RATE)
                splits[split].append((rel, e - s))
                rows.append([rel, str(path), f"{s / SAMPLE_RATE:.3f}", f"{e / SAMPLE_RATE:.3f}", split])
                seconds += (e - s) / SAMPLE_RATE
        except (AudioError, OSError, ValueError) as exc:
            skipped.append(f"{path}\t{str(exc).replace(chr(9), ' ').replace(chr(10), ' ')}\n")
    for split, entries in splits.items():
        if entries or split == "train":
            write_manifest(outdir / f"{split}.tsv", audio.resolve(), entries)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([["chunk", "recording", "start", "end", "split"], *rows])
    atomic_write_text(outdir / "chunks.csv", buf.getvalue())
    atomic_write_text(outdir / "skipped.tsv", "path\treason\n" + "".join(skipped))
    return {"chunks": len(rows), "speech_hours": seconds / 3600, "skipped": len(skipped),
            "train": len(splits["train"]), "valid": len(splits["valid"])}
