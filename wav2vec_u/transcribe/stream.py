"""Read any window of a long recording as 16 kHz mono float32, never the whole file.

    rec = Recording("field/2019-07-03.flac")
    rec.num_samples                     # length at 16 kHz
    wav = rec.read(16000 * 60, 16000 * 90)   # seconds 60-90, downmixed and resampled

Windows start and end on multiples of ``rec.step`` 16 kHz samples (10 ms for 44.1 kHz, one
sample for 48 kHz): there the 16 kHz grid and the file's own grid meet exactly
(160 samples at 16 kHz = 441 at 44.1 kHz), so a window is the same samples, whichever
window it was read in. Each window is read with ``PAD_S`` of audio on both sides and
resampled with it, then the padding is cut: the polyphase filter's edges fall in the padding,
and a chunk decoded alone equals the same stretch of the whole file resampled at once
(measured: identical samples at 22.05, 44.1 and 48 kHz, tests/test_transcribe.py).
"""

from __future__ import annotations

from math import ceil, gcd
from pathlib import Path

import numpy as np
import soundfile as sf

from wav2vec_u.audio.io import SAMPLE_RATE, AudioError, resample

PAD_S = 0.05  # resampling context on each side of a window (scipy's filter spans ~10 input periods)


class Recording:
    """One audio file, opened lazily for each read (workers and many files: no handles kept)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_file() and self.path.stat().st_size == 0:
            raise AudioError(f"{self.path} is empty (0 bytes): a copy that failed?")
        try:
            info = sf.info(str(self.path))
        except Exception as exc:  # libsndfile's errors say "Format not recognised" etc.
            raise AudioError(f"cannot read audio {self.path}: {exc}") from None
        if info.frames <= 0 or info.samplerate <= 0:
            raise AudioError(f"{self.path} holds no audio ({info.frames} frames)")
        self.sr = int(info.samplerate)
        self.channels = int(info.channels)
        self.frames = int(info.frames)
        g = gcd(self.sr, SAMPLE_RATE)
        self.up, self.down = SAMPLE_RATE // g, self.sr // g
        self.step = self.up  # 16 kHz samples per period where both grids meet
        self.num_samples = (self.frames * self.up) // self.down
        self.duration = self.frames / self.sr
        periods = ceil(PAD_S * SAMPLE_RATE / self.up)
        self.pad = periods * self.up  # padding in 16 kHz samples, a whole number of periods

    def align(self, sample: int, up: bool = False) -> int:
        """``sample`` moved onto the grid of :attr:`step` (down, or up)."""
        q = -(-sample // self.step) if up else sample // self.step
        return min(q * self.step, self.num_samples)

    def read(self, start: int, end: int) -> np.ndarray:
        """16 kHz samples ``[start, end)`` (both on the grid: see :meth:`align`), mono float32."""
        if start % self.step or (end % self.step and end != self.num_samples):
            raise ValueError(f"window {start}-{end} is not on the {self.step}-sample grid of {self.path}")
        start, end = max(0, start), min(end, self.num_samples)
        if end <= start:
            return np.zeros(0, np.float32)
        a = max(0, start - self.pad)
        b = min(self.num_samples, end + self.pad)
        a_in = a // self.up * self.down
        b_in = min(self.frames, -(-b // self.up) * self.down)
        try:
            with sf.SoundFile(str(self.path)) as f:
                f.seek(a_in)
                data = f.read(b_in - a_in, dtype="float32", always_2d=True)
        except Exception as exc:
            raise AudioError(f"cannot read audio {self.path} at {a_in / self.sr:.2f} s: {exc}") from None
        mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        out = resample(np.ascontiguousarray(mono, np.float32), self.sr, SAMPLE_RATE)
        out = out[start - a: end - a]
        if len(out) < end - start:  # a file that ends early (truncated): pad what is missing with silence
            out = np.concatenate([out, np.zeros(end - start - len(out), np.float32)])
        return out

    def blocks(self, block: int):
        """``(start, end)`` windows of ``block`` samples (a multiple of :attr:`step`) covering the file."""
        block = max(self.step, block // self.step * self.step)
        for start in range(0, self.num_samples, block):
            yield start, min(start + block, self.num_samples)
