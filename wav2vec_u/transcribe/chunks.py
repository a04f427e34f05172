"""Voice-activity chunks of a long recording, read block by block, at most ``max_chunk_s`` long.

    chunks = find_chunks(Recording("field/a.wav"), ChunkConfig())   # [(start, end), ...] 16 kHz samples

1. The recording is read in blocks of ``block_s`` with ``context_s`` of audio on each side; the
   VAD (``vad.method``: rvad, energy or silero, :mod:`wav2vec_u.audio.vad`) labels each block
   seen with its context, and only the speech inside the block is kept. Memory is that of one
   block (rVAD holds ~35 times its input: 80 s of context and block is ~180 MB), whatever the
   file's length. Block and context are whole multiples of rVAD's 2 s noise-floor segments.
2. Speech regions closer than ``vad.max_pause_s`` are one chunk (a short pause inside a
   sentence is not a chunk boundary).
3. Each chunk edge is moved to where the 10 ms energy crosses ``refine_db`` above the local noise
   floor, within ``refine_s`` of where the VAD put it, plus ``refine_margin_s``: rVAD's labels are
   smoothed over +-0.18 s and its edges wander by up to ~0.1 s on clean speech (0.12 s measured on
   espeak speech in tests/test_transcribe.py); the energy crossing is within 10-20 ms of it.
4. A chunk longer than ``max_chunk_s`` is cut at its quietest 10 ms frame in its middle 60%,
   again until every piece is short enough: the models were trained on utterances of seconds,
   and a cut in the quietest place is least likely to split a phone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wav2vec_u.audio.io import SAMPLE_RATE
from wav2vec_u.audio.vad import VadConfig, speech_segments
from wav2vec_u.config import non_negative, positive
from wav2vec_u.transcribe.stream import Recording

RVAD_SEGMENT_S = 2.0  # rVADfast estimates its noise floor per 200 frames of 10 ms


@dataclass
class ChunkConfig:
    vad: VadConfig = field(default_factory=lambda: VadConfig(rvad_block_s=0.0))  # blocks are made here
    max_chunk_s: float = positive(default=20.0)  # longer speech is cut (models saw utterances of 2-20 s)
    min_chunk_s: float = non_negative(default=0.2)  # shorter chunks (clicks, coughs) are dropped
    block_s: float = positive(default=60.0)  # audio labelled per VAD call (memory)
    context_s: float = non_negative(default=10.0)  # audio seen on each side of a block, not labelled
    refine_db: float = non_negative(default=12.0)  # edge = energy this far above the local floor (0: VAD's edges)
    refine_s: float = non_negative(default=0.25)  # how far an edge may move (silero: 0.11 s late at 0.15 once in 10 min)
    refine_margin_s: float = non_negative(default=0.02)  # kept outside the refined edge (weak onsets)


def _on_segments(seconds: float) -> int:
    """``seconds`` as 16 kHz samples, rounded to whole rVAD noise-floor segments (at least one)."""
    seg = int(RVAD_SEGMENT_S * SAMPLE_RATE)
    return max(seg, int(round(seconds / RVAD_SEGMENT_S)) * seg)


def speech_regions(rec: Recording, cfg: ChunkConfig) -> list[tuple[int, int]]:
    """Speech ``(start, end)`` in 16 kHz samples of the whole recording, found block by block."""
    block = _on_segments(cfg.block_s)
    context = _on_segments(cfg.context_s) if cfg.context_s > 0 else 0
    block = block // rec.step * rec.step  # also on the recording's read grid
    context = context // rec.step * rec.step
    regions: list[tuple[int, int]] = []
    for start, end in rec.blocks(block):
        a, b = max(0, start - context), min(rec.num_samples, end + context)
        wav = rec.read(a, b)
        for s, e in speech_segments(wav, SAMPLE_RATE, cfg.vad):
            s, e = max(s + a, start), min(e + a, end)
            if e <= s:
                continue
            if regions and s <= regions[-1][1]:  # runs on across a block boundary
                regions[-1] = (regions[-1][0], max(e, regions[-1][1]))
            else:
                regions.append((s, e))
    return regions


def join_regions(regions: list[tuple[int, int]], max_gap: int) -> list[tuple[int, int]]:
    """Regions separated by at most ``max_gap`` samples merged into one."""
    out: list[tuple[int, int]] = []
    for s, e in regions:
        if out and s - out[-1][1] <= max_gap:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _frame_db(wav: np.ndarray, frame: int) -> np.ndarray:
    n = len(wav) // frame
    x = wav[: n * frame].astype(np.float64).reshape(n, frame)
    return 10 * np.log10((x ** 2).mean(axis=1) + 1e-12)


def refine_edges(rec: Recording, chunk: tuple[int, int], cfg: ChunkConfig) -> tuple[int, int]:
    """Chunk edges moved onto the energy onset/offset near them (module docstring, step 3)."""
    if cfg.refine_db <= 0:
        return chunk
    frame = SAMPLE_RATE // 100
    reach, floor_reach = int(cfg.refine_s * SAMPLE_RATE), int(0.5 * SAMPLE_RATE)
    margin = int(cfg.refine_margin_s * SAMPLE_RATE)
    s, e = chunk
    # start: the first loud frame in [s - reach, s + reach], floor from the half second before it
    a = rec.align(max(0, s - reach - floor_reach))
    db = _frame_db(rec.read(a, rec.align(min(rec.num_samples, s + reach), up=True)), frame)
    lo = (s - reach - a) // frame
    floor = np.percentile(db[: max(1, lo + 1)], 10) if len(db) else 0.0
    loud = np.flatnonzero(db[max(0, lo):] > floor + cfg.refine_db)
    new_s = a + (max(0, lo) + int(loud[0])) * frame - margin if len(loud) else s
    # end: the last loud frame in [e - reach, e + reach], floor from the half second after it
    b = rec.align(min(rec.num_samples, e + reach + floor_reach), up=True)
    a2 = rec.align(max(0, e - reach))
    db = _frame_db(rec.read(a2, b), frame)
    hi = (e + reach - a2) // frame
    floor = np.percentile(db[min(len(db) - 1, hi):], 10) if len(db) else 0.0
    loud = np.flatnonzero(db[:hi] > floor + cfg.refine_db)
    new_e = a2 + (int(loud[-1]) + 1) * frame + margin if len(loud) else e
    new_s, new_e = rec.align(max(0, new_s)), rec.align(min(rec.num_samples, new_e), up=True)
    return (new_s, new_e) if new_e - new_s > frame else chunk


def quietest_cut(wav: np.ndarray, frame: int = SAMPLE_RATE // 100) -> int:
    """Sample offset of the middle of the lowest-energy ``frame`` in the middle 60% of ``wav``."""
    n = len(wav) // frame
    energy = (wav[: n * frame].astype(np.float64).reshape(n, frame) ** 2).sum(axis=1)
    lo, hi = int(0.2 * n), max(int(0.2 * n) + 1, int(0.8 * n))
    return (lo + int(np.argmin(energy[lo:hi]))) * frame + frame // 2


def split_long(rec: Recording, chunk: tuple[int, int], max_len: int) -> list[tuple[int, int]]:
    """``chunk`` cut at its quietest points until no piece is longer than ``max_len`` samples."""
    start, end = chunk
    if end - start <= max_len:
        return [chunk]
    cut = rec.align(start + quietest_cut(rec.read(start, end)))
    if cut <= start or cut >= end:  # too short for the grid to leave room: cut in the middle
        cut = rec.align((start + end) // 2)
    return split_long(rec, (start, cut), max_len) + split_long(rec, (cut, end), max_len)


def find_chunks(rec: Recording, cfg: ChunkConfig) -> list[tuple[int, int]]:
    """Chunks to decode, ``(start, end)`` 16 kHz samples on the recording's grid (module docstring)."""
    max_gap = int(cfg.vad.max_pause_s * SAMPLE_RATE)
    chunks = []
    for s, e in join_regions(speech_regions(rec, cfg), max_gap):
        s, e = refine_edges(rec, (rec.align(s), rec.align(e, up=True)), cfg)
        if chunks and s < chunks[-1][1]:  # refined edges never overlap the chunk before
            s = chunks[-1][1]
        if e - s < cfg.min_chunk_s * SAMPLE_RATE:
            continue
        chunks += split_long(rec, (s, e), int(cfg.max_chunk_s * SAMPLE_RATE))
    return chunks
