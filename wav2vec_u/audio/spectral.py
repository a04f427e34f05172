"""MFCC and log-mel frame features, written for this project with numpy and torch's FFT.

    feats = spectral_features(wav, "mfcc", SpectralConfig())   # (T, 195): 13 MFCC + deltas, +-2 frames, CMVN
    ex = SpectralExtractor("logmel", SpectralConfig())         # the extractor interface of audio.features

MFCC: mel filterbank (HTK mel scale), log, orthonormal DCT-II, optional liftering; optional
deltas, context stacking and per-utterance CMVN. No torchaudio or librosa; vectorised over frames.

``kaldi_mfcc()`` (``filterbank: kaldi`` with Kaldi's other defaults: Povey window, 23 filters,
lifter 22) is Kaldi's ``compute-mfcc-feats`` definition, the MFCC that wav2vec-U 2.0's auxiliary
targets are clustered from; ``tests/test_features.py`` holds it against kaldi-native-fbank (a
maintained re-implementation of Kaldi's feature code).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from wav2vec_u.audio.io import SAMPLE_RATE
from wav2vec_u.config import at_least, in_range, non_negative, positive


@dataclass
class SpectralConfig:
    """MFCC / log-mel settings. Defaults give the 195-dim MFCC used in docs/method.md's CPU runs."""

    win_ms: float = positive(default=25.0)  # analysis window (standard ASR front end: 25 ms)
    hop_ms: float = positive(default=10.0)  # frame shift: 10 ms = 100 Hz; 20 ms gives wav2vec 2.0's 50 Hz
    n_fft: int | None = at_least(1, default=None)  # None: next power of two >= window length (512 at 16 kHz)
    window: Literal["hamming", "hann", "povey"] = "hamming"
    preemphasis: float = in_range(0.0, 1.0, default=0.97)  # Kaldi/HTK default; 0 disables
    n_mels: int = at_least(1, default=40)  # mel filters (40 is a common MFCC choice; log-mel often uses 80)
    fmin: float = non_negative(default=20.0)
    fmax: float | None = positive(default=None)  # None: Nyquist
    # triangle shape: "linear" = straight in Hz between mel-spaced edges (our original, as librosa's
    # htk=True, norm=None); "kaldi" = straight on the mel scale, as Kaldi and HTK compute it
    filterbank: Literal["linear", "kaldi"] = "linear"
    n_mfcc: int = at_least(1, default=13)  # cepstra kept (c0..c12, HTK/Kaldi convention, c0 included)
    lifter: float = non_negative(default=0.0)  # cepstral liftering (Kaldi uses 22); 0 disables
    deltas: int = in_range(0, 2, default=2)  # 0: none, 1: +delta, 2: +delta+delta-delta
    delta_window: int = at_least(1, default=2)  # regression half-width N of the delta formula (HTK default 2)
    context: int = non_negative(default=2)  # stack +-context neighbouring frames (edges repeated)
    cmvn: bool = True             # per-utterance mean and variance normalisation (before stacking)
    log_floor: float = positive(default=1e-10)  # floor before log, avoids -inf on digital silence


def kaldi_mfcc(deltas: int = 2) -> SpectralConfig:
    """Kaldi's MFCC definition (``compute-mfcc-feats`` defaults, as torchaudio's ``kaldi.mfcc`` and
    kaldi-native-fbank implement it): 25 ms Povey window every 10 ms, pre-emphasis 0.97, 23 mel
    filters straight on the mel scale from 20 Hz to Nyquist, 13 cepstra (c0 kept, no energy),
    lifter 22; no CMVN, no stacking. ``deltas=2`` adds deltas and delta-deltas (window 2, edges
    repeated), the 39 dims HuBERT's ``dump_mfcc_feature.py`` clusters for wav2vec-U 2.0's targets."""
    return SpectralConfig(win_ms=25.0, hop_ms=10.0, window="povey", preemphasis=0.97, n_mels=23, fmin=20.0,
                          fmax=None, filterbank="kaldi", n_mfcc=13, lifter=22.0, deltas=deltas, delta_window=2,
                          context=0, cmvn=False, log_floor=float(np.finfo(np.float32).eps))


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)  # HTK mel scale


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=16)
def mel_filterbank(n_mels: int, n_fft: int, sr: int, fmin: float, fmax: float, shape: str = "linear") -> np.ndarray:
    """(n_fft//2+1, n_mels) triangular filters, equally spaced on the HTK mel scale, peak 1.

    ``shape="linear"``: each triangle is straight in Hz between its mel-spaced edges;
    ``shape="kaldi"``: straight on the mel scale (Kaldi's ``MelBanks``, HTK's filterbank)."""
    if not 0 <= fmin < fmax <= sr / 2:
        raise ValueError(f"mel filterbank needs 0 <= fmin < fmax <= sr/2, got fmin={fmin}, fmax={fmax}, sr={sr}")
    if shape not in ("linear", "kaldi"):
        raise ValueError(f"unknown filterbank shape {shape!r} (use linear or kaldi)")
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    if shape == "kaldi":  # interpolate on the mel scale: the same formula with mel in place of Hz
        freqs = hz_to_mel(freqs)
        edges = np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)
    else:
        edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lo) / (mid - lo)
    down = (hi - freqs[None, :]) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(up, down))
    return np.ascontiguousarray(fb.T, dtype=np.float32)


@lru_cache(maxsize=16)
def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out) orthonormal DCT-II basis (the same as scipy.fft.dct(norm='ortho'))."""
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    basis = np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)
    basis[:, 0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


@lru_cache(maxsize=16)
def _window(kind: str, n: int) -> np.ndarray:
    if kind == "hamming":
        w = np.hamming(n)
    elif kind == "hann":
        w = np.hanning(n)
    elif kind == "povey":  # Kaldi's default: hann ** 0.85
        w = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n - 1))) ** 0.85
    else:
        raise ValueError(f"unknown window '{kind}' (use hamming, hann or povey)")
    return w.astype(np.float32)


def num_frames(num_samples: int, win: int, hop: int) -> int:
    """Frames of a centre-less framing: the last frame ends inside the signal (Kaldi snip_edges)."""
    return 0 if num_samples < win else 1 + (num_samples - win) // hop


def frame_signal(wav: np.ndarray, win: int, hop: int) -> np.ndarray:
    """(T, win) view of overlapping frames (no copy)."""
    t = num_frames(len(wav), win, hop)
    if t == 0:
        return np.zeros((0, win), dtype=wav.dtype)
    return np.lib.stride_tricks.as_strided(wav, shape=(t, win), strides=(wav.strides[0] * hop, wav.strides[0]),
                                           writeable=False)


def log_mel(wav: np.ndarray, cfg: SpectralConfig, sr: int = SAMPLE_RATE) -> np.ndarray:
    """(T, n_mels) log mel energies of a mono waveform."""
    win = int(round(cfg.win_ms * sr / 1000))
    hop = int(round(cfg.hop_ms * sr / 1000))
    if hop <= 0 or win <= 0:
        raise ValueError(f"spectral.win_ms and spectral.hop_ms must be positive, got {cfg.win_ms}, {cfg.hop_ms}")
    n_fft = cfg.n_fft or 1 << (win - 1).bit_length()
    if n_fft < win:
        raise ValueError(f"spectral.n_fft={n_fft} is shorter than the window ({win} samples)")
    import torch  # torch's FFT is ~3x faster than numpy's here; the maths is the same

    wav = np.ascontiguousarray(wav, dtype=np.float32)
    if len(wav) < win:
        return np.zeros((0, cfg.n_mels), dtype=np.float32)
    # These ops are too small to gain from threads; on a busy machine torch's thread pool made
    # them 50x slower (measured: 9 vs 570 audio-s/s). One thread, restored afterwards.
    threads = torch.get_num_threads()
    if threads != 1:
        torch.set_num_threads(1)
    try:
        return _log_mel_torch(torch, wav, win, hop, n_fft, cfg, sr)
    finally:
        if threads != 1:
            torch.set_num_threads(threads)


def _log_mel_torch(torch, wav: np.ndarray, win: int, hop: int, n_fft: int, cfg: SpectralConfig, sr: int) -> np.ndarray:
    frames = torch.from_numpy(wav).unfold(0, win, hop)          # (T, win) view
    frames = frames - frames.mean(dim=1, keepdim=True)          # remove DC per frame (as Kaldi)
    if cfg.preemphasis:
        p = cfg.preemphasis
        frames = torch.cat([frames[:, :1] * (1 - p), frames[:, 1:] - p * frames[:, :-1]], dim=1)
    spec = torch.fft.rfft(frames * torch.from_numpy(_window(cfg.window, win)), n=n_fft)
    power = spec.real ** 2 + spec.imag ** 2
    fb = torch.from_numpy(mel_filterbank(cfg.n_mels, n_fft, sr, float(cfg.fmin), float(cfg.fmax or sr / 2),
                                         cfg.filterbank))
    return torch.log(torch.clamp(power @ fb, min=cfg.log_floor)).numpy()


def deltas(x: np.ndarray, n: int = 2) -> np.ndarray:
    """HTK regression deltas over time of a (T, D) array, edges repeated."""
    if len(x) == 0:
        return x.copy()
    padded = np.pad(x, ((n, n), (0, 0)), mode="edge")
    t = len(x)
    num = sum(k * (padded[n + k:n + k + t] - padded[n - k:n - k + t]) for k in range(1, n + 1))
    return (num / (2 * sum(k * k for k in range(1, n + 1)))).astype(x.dtype)


def stack_context(x: np.ndarray, k: int) -> np.ndarray:
    """(T, D) -> (T, (2k+1) D): frames t-k .. t+k side by side (edges repeated)."""
    if k == 0 or len(x) == 0:
        return x if k == 0 else np.zeros((0, x.shape[1] * (2 * k + 1)), x.dtype)
    padded = np.pad(x, ((k, k), (0, 0)), mode="edge")
    t = len(x)
    return np.concatenate([padded[i:i + t] for i in range(2 * k + 1)], axis=1)


def cmvn(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Per-utterance mean and variance normalisation over time."""
    if len(x) == 0:
        return x
    return ((x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)).astype(np.float32)


def spectral_features(wav: np.ndarray, kind: Literal["mfcc", "logmel"], cfg: SpectralConfig,
                      sr: int = SAMPLE_RATE) -> np.ndarray:
    """MFCC or log-mel with deltas, CMVN and context stacking, as configured; (T, D) float32."""
    x = log_mel(wav, cfg, sr)
    if kind == "mfcc":
        if cfg.n_mfcc > cfg.n_mels:
            raise ValueError(f"spectral.n_mfcc={cfg.n_mfcc} exceeds spectral.n_mels={cfg.n_mels}")
        x = x @ dct_matrix(cfg.n_mels, cfg.n_mfcc)
        if cfg.lifter:
            x = x * (1 + cfg.lifter / 2 * np.sin(np.pi * np.arange(cfg.n_mfcc) / cfg.lifter)).astype(np.float32)
    parts = [x]
    for _ in range(cfg.deltas):
        parts.append(deltas(parts[-1], cfg.delta_window))
    x = np.concatenate(parts, axis=1) if len(parts) > 1 else x
    if cfg.cmvn:
        x = cmvn(x)
    return np.ascontiguousarray(stack_context(x, cfg.context), dtype=np.float32)


class SpectralExtractor:
    """``mfcc`` or ``logmel``: numpy, CPU, one utterance at a time (batching gains nothing)."""

    batch_invariant = True

    def __init__(self, kind: Literal["mfcc", "logmel"], cfg: SpectralConfig):
        if cfg.deltas < 0 or cfg.context < 0:
            raise ValueError("spectral.deltas and spectral.context must be >= 0")
        self.kind, self.cfg, self.name = kind, cfg, kind
        base = cfg.n_mfcc if kind == "mfcc" else cfg.n_mels
        self.dim = base * (1 + cfg.deltas) * (2 * cfg.context + 1)
        self.frame_rate = 1000.0 / cfg.hop_ms

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        return spectral_features(wav, self.kind, self.cfg)

    def extract_batch(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        return [self(w) for w in wavs]

    def describe(self) -> dict:
        return {"extractor": self.kind, "dim": self.dim, "frame_rate": self.frame_rate,
                "spectral": dataclasses.asdict(self.cfg)}
