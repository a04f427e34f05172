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


def read_audio(path: str | Path, mono: bool = True) -> tuple[np.ndarray, int]:
    """Samples as float32 (mono: mean over channels) and the file's sample rate."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError for corrupt files
        raise AudioError(f"cannot read audio {path}: {exc}") from None
    if mono:
        data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(data, dtype=np.float32), int(sr)


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
