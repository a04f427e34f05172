"""Reading and writing audio: 16 kHz mono float32 in, PCM-16 WAV out, errors that name the file.

    wav, sr = read_audio("clip.flac")                 # original rate, mono float32 in [-1, 1]
    wav = load_16k("clip.flac")                       # resampled to 16 kHz, mixed to mono
    write_wav("out/clip.wav", wav, 16000)             # atomic
"""

from __future__ import annotations

import logging
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

from wav2vec_u.io import atomic_path

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # wav2vec 2.0 and every model here expect 16 kHz


class AudioError(ValueError):
    """Audio that cannot be used, with the file named in the message."""


def read_audio(path: str | Path, mono: bool = True, problems: list[str] | None = None) -> tuple[np.ndarray, int]:
    """Samples as float32 (mono: mean over channels) and the file's sample rate.

    A file that reads but looks damaged (truncated, clipped: see :func:`audio_problems`) is a
    logged warning naming it, or a message appended to ``problems`` when given (worker
    processes hand them to the parent, which has the log handlers); one that does not read is an
    :class:`AudioError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        info = sf.info(str(path))
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError for corrupt files
        raise AudioError(f"cannot read audio {path}: {exc}") from None
    for problem in audio_problems(path, data, info):
        if problems is None:
            log.warning("%s: %s", path, problem)
        else:
            problems.append(f"{path}: {problem}")
    if mono:
        data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(data, dtype=np.float32), int(sr)


# A recording whose peaks were cut at full scale has runs of samples at +-1; a loud but clean one
# touches it a handful of times. 0.1% of the samples (and at least 10) tells them apart.
CLIPPED_FRACTION = 0.001
FULL_SCALE = 32767 / 32768  # the largest positive PCM-16 sample, as float


def audio_problems(path: str | Path, data: np.ndarray, info) -> list[str]:
    """What looks wrong with audio that did decode: (N, C) float32 ``data`` and its ``sf.info``.

    - truncated: a WAV header declares more frames than the file holds (libsndfile quietly reads
      what is there), or the decoder returned fewer frames than the file declares;
    - beyond full scale: a float file with samples outside [-1, 1] (PCM-16 copies clip them);
    - clipped: more than 0.1% of the samples at full scale.
    """
    problems = []
    declared = wav_header_frames(path) if str(info.format) == "WAV" else None
    if declared is not None and declared > info.frames:
        problems.append(f"truncated: its header declares {declared} frames but the file holds {info.frames} "
                        f"({info.frames / info.samplerate:.3f} of {declared / info.samplerate:.3f} s); "
                        "a copy or download cut short?")
    elif info.frames > 0 and len(data) < info.frames:
        problems.append(f"truncated: {len(data)} of the {info.frames} frames it declares could be decoded")
    if data.size:
        hi, lo = float(data.max()), float(data.min())
        if max(hi, -lo) > 1.0:
            problems.append(f"samples beyond full scale (peak {max(hi, -lo):.3f} > 1.0, {info.subtype}): "
                            "they are clipped wherever the audio is written as PCM-16")
        else:
            at_full = int(np.count_nonzero(data >= FULL_SCALE)) + int(np.count_nonzero(data <= -FULL_SCALE))
            if at_full >= max(10, CLIPPED_FRACTION * data.size):
                problems.append(f"clipped: {at_full} samples ({100 * at_full / data.size:.2f}%) at full scale")
    return problems


def wav_header_frames(path: str | Path) -> int | None:
    """Frames the ``data`` chunk of a RIFF/WAVE header declares; None if not stated (streamed
    WAVs write 0 or 0xFFFFFFFF, RF64 keeps the size elsewhere) or the header is unusual."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = 0
            for _ in range(64):  # chunks before data: fmt, LIST, fact, ... a few at most
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = f.read(size + (size & 1))
                    if len(fmt) < 14:
                        return None
                    block_align = struct.unpack("<H", fmt[12:14])[0]
                elif cid == b"data":
                    if block_align == 0 or size in (0, 0xFFFFFFFF):
                        return None
                    return size // block_align
                else:
                    f.seek(size + (size & 1), 1)  # chunks are padded to an even size
    except OSError:
        return None
    return None


def resample(wav: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling (scipy), exact for integer ratios such as 44.1k -> 16k (160/441)."""
    if sr_in == sr_out:
        return wav.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(sr_in, sr_out)
    return resample_poly(wav, sr_out // g, sr_in // g, axis=0).astype(np.float32)


def load_16k(path: str | Path) -> np.ndarray:
    """Mono float32 at 16 kHz, whatever the file's rate and channel count."""
    wav, sr = read_audio(path)
    return resample(wav, sr, SAMPLE_RATE)


def write_wav(path: str | Path, wav: np.ndarray, sr: int = SAMPLE_RATE) -> Path:
    """PCM-16 WAV, written atomically; samples are clipped to [-1, 1]."""
    wav = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), wav, sr, subtype="PCM_16", format="WAV")
    return Path(path)
