"""Remove non-speech from audio: rVAD (what wav2vec-U uses) or a plain energy detector.

    segs = speech_segments(wav, 16000, VadConfig())     # [(start_sample, end_sample), ...]
    out, kept = remove_silence(wav, 16000, VadConfig())  # speech only, long pauses shortened
    start, end = trim_edges(wav, 16000, threshold_db=40) # energy-based edge trim (synth uses it)

wav2vec-U (fairseq ``examples/wav2vec/unsupervised/scripts/vads.py`` + ``remove_silence.py``)
runs rVAD on each file and keeps only the frames it marks as speech. Here the same frame
labels come from the ``rVADfast`` package (spectral flatness, high-energy noise removal and
the SNR-weighted energy decision with ``vad_threshold``, Tan et al. 2020); short gaps
between speech segments are kept so that words are not glued together, and every segment
gets a small margin, because rVAD's 10 ms frames clip the weak onsets of fricatives.

rVADfast holds float64 frame matrices of the whole input (frame indices, the windowed frames,
a 512-point complex spectrum per 10 ms): about 35 times the size of the float32 audio, 2.6 GB
for a 20-minute file. Long inputs therefore go through it in blocks of ``rvad_block_s`` with
``rvad_context_s`` of audio on each side, whose labels are thrown away. Its decisions are
local (2 s noise-floor segments, +-0.18 s smoothing, runs of voiced frames), so the labels
match the whole-file ones: 0 of 120 000 frames differed on a 20-minute recording of speech
with pauses (scripts/vad_memory.py), while the peak RSS fell from 2.8 GB to 0.64 GB (traced
numpy memory 2589 -> 423 MiB) at 1.3 times the time (the context is labelled twice).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from wav2vec_u.config import in_range, non_negative, positive
from wav2vec_u.audio.silero import silero_labels

@dataclass
class VadConfig:
    method: Literal["rvad", "energy", "silero"] = "rvad"  # silero: wav2vec_u.audio.silero (16 kHz only)
    # rVAD parameters, the defaults of rVADfast / the rVAD paper (Tan et al. 2020)
    vad_threshold: float = non_negative(default=0.4)  # rVAD decision threshold on the SNR-weighted energy
    frame_shift_s: float = positive(default=0.01)  # 10 ms frames (rVAD default)
    frame_length_s: float = positive(default=0.025)  # 25 ms windows (rVAD default)
    rvad_block_s: float = non_negative(default=120.0)  # longer inputs run through rVAD in blocks (memory; 0 = never)
    rvad_context_s: float = non_negative(default=30.0)  # audio on each side of a block, seen but not labelled
    silero_threshold: float = in_range(0.0, 1.0, default=0.5)  # speech probability (silero-vad's default)
    # energy detector (method=energy) and edge trimming
    energy_threshold_db: float = non_negative(default=40.0)  # frames this far below the loudest frame are silence
    energy_floor_db: float = -70.0       # and frames below this level (dBFS RMS) always are
    # post-processing (both methods)
    margin_s: float = non_negative(default=0.05)  # speech kept on each side of a detected segment
    min_speech_s: float = non_negative(default=0.05)  # shorter detections are dropped (clicks)
    max_pause_s: float = non_negative(default=0.3)  # inner pauses up to this are kept whole
    keep_pause_s: float = non_negative(default=0.1)  # longer inner pauses are cut to this (0 = remove them)
    trim_only: bool = False              # only cut leading/trailing non-speech, keep every inner pause


def _frame_rms_db(wav: np.ndarray, sr: int, frame_s: float = 0.01) -> tuple[np.ndarray, int]:
    hop = max(1, int(round(frame_s * sr)))
    n = len(wav) // hop
    if n == 0:
        return np.zeros(0), hop
    frames = wav[: n * hop].astype(np.float64).reshape(n, hop)
    rms = np.sqrt(np.mean(frames ** 2, axis=1) + 1e-20)
    return 20 * np.log10(rms), hop


def energy_labels(wav: np.ndarray, sr: int, threshold_db: float = 40.0, frame_s: float = 0.01,
                  floor_db: float = -70.0) -> tuple[np.ndarray, int]:
    """Per frame: True where the RMS is within ``threshold_db`` of the loudest frame and above ``floor_db``."""
    db, hop = _frame_rms_db(wav, sr, frame_s)
    if db.size == 0:
        return np.zeros(0, bool), hop
    return (db > db.max() - threshold_db) & (db > floor_db), hop


def trim_edges(wav: np.ndarray, sr: int, threshold_db: float = 40.0, margin_s: float = 0.05) -> tuple[int, int]:
    """(start, end) sample indices of the audio between the first and last non-silent frame, plus margin."""
    speech, hop = energy_labels(wav, sr, threshold_db)
    idx = np.flatnonzero(speech)
    if idx.size == 0:
        return 0, len(wav)
    margin = int(round(margin_s * sr))
    return max(0, idx[0] * hop - margin), min(len(wav), (idx[-1] + 1) * hop + margin)


def rvad_labels(wav: np.ndarray, sr: int, cfg: VadConfig) -> tuple[np.ndarray, int]:
    """rVAD speech/non-speech label per frame (the ``rVADfast`` package), and the frame hop in samples.

    Inputs longer than ``rvad_block_s`` plus twice ``rvad_context_s`` are labelled block by
    block, each seen with its context (module docstring: the memory, and why the labels match).
    """
    from rVADfast import rVADfast  # imported here: only the rvad method needs it

    shift = int(np.floor(sr * cfg.frame_shift_s))
    if len(wav) < int(np.floor(sr * cfg.frame_length_s)) + shift:
        return np.zeros(0, bool), shift
    vad = rVADfast(window_duration=cfg.frame_length_s, shift_duration=cfg.frame_shift_s,
                   vad_threshold=cfg.vad_threshold)

    def labels_of(x: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():  # digital silence makes rVADfast take nanmax of all-NaN blocks
            warnings.simplefilter("ignore", RuntimeWarning)
            labels, _ = vad(x.astype(np.float64), sr)
        return np.asarray(labels).astype(bool).ravel()

    # rVADfast estimates the noise floor per 200 frames from the start of its input: blocks and
    # context are whole numbers of those segments, so each block sees the segments the whole file would
    segment = 200 * shift
    block = round(cfg.rvad_block_s * sr / segment) * segment
    context = round(cfg.rvad_context_s * sr / segment) * segment
    if block <= 0 or len(wav) <= block + 2 * context:
        return labels_of(wav), shift
    parts = []
    for start in range(0, len(wav), block):
        a, b = max(0, start - context), min(len(wav), start + block + context)
        labels = labels_of(wav[a:b])
        first = (start - a) // shift
        parts.append(labels[first:] if start + block >= len(wav) else labels[first:first + block // shift])
    return np.concatenate(parts), shift


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) frame index pairs of the True runs."""
    padded = np.concatenate([[False], labels.astype(bool), [False]])
    change = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(change[0::2].tolist(), change[1::2].tolist()))


def speech_segments(wav: np.ndarray, sr: int, cfg: VadConfig | None = None) -> list[tuple[int, int]]:
    """Speech regions as (start, end) sample indices: detected, cleaned of clicks, widened by the margin."""
    cfg = cfg or VadConfig()
    if cfg.method == "rvad":
        labels, hop = rvad_labels(wav, sr, cfg)
    elif cfg.method == "silero":

        labels, hop = silero_labels(wav, sr, cfg.silero_threshold)
    else:
        labels, hop = energy_labels(wav, sr, cfg.energy_threshold_db, cfg.frame_shift_s, cfg.energy_floor_db)
    min_frames = cfg.min_speech_s * sr / hop
    margin = int(round(cfg.margin_s * sr))
    segs = []
    for a, b in _runs(labels):
        if b - a < min_frames:
            continue
        start, end = max(0, a * hop - margin), min(len(wav), b * hop + margin)
        if segs and start <= segs[-1][1]:
            segs[-1] = (segs[-1][0], max(end, segs[-1][1]))  # margins overlap: one segment
        else:
            segs.append((start, end))
    return segs


def remove_silence(wav: np.ndarray, sr: int, cfg: VadConfig | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The audio with non-speech removed, and the (start, end) regions of the input that were kept.

    Leading and trailing non-speech always goes. An inner pause up to ``max_pause_s`` is kept
    whole; a longer one is shortened to ``keep_pause_s`` (half from each end). With
    ``trim_only`` every inner pause is kept. No speech detected: empty output.
    """
    cfg = cfg or VadConfig()
    segs = speech_segments(wav, sr, cfg)
    if not segs:
        return wav[:0], []
    if cfg.trim_only:
        segs = [(segs[0][0], segs[-1][1])]
    kept: list[tuple[int, int]] = [segs[0]]
    max_pause, keep_half = int(cfg.max_pause_s * sr), int(cfg.keep_pause_s * sr) // 2
    for start, end in segs[1:]:
        gap_start = kept[-1][1]
        if start - gap_start <= max_pause:
            kept[-1] = (kept[-1][0], end)
        else:
            if keep_half > 0:
                kept[-1] = (kept[-1][0], gap_start + keep_half)
                kept.append((start - keep_half, end))
            else:
                kept.append((start, end))
    out = np.concatenate([wav[a:b] for a, b in kept])
    return out, kept
