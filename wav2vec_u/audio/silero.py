"""Silero VAD speech probabilities, from the TorchScript model that ships inside the silero-vad wheel.

    labels, hop = silero_labels(wav, 16000, threshold=0.5)   # one bool per 512-sample window (32 ms)

The package's own helpers are not used: its audio I/O wants torchaudio, which is not installed
here (its wheels are CUDA-only). The model itself is plain TorchScript: load
``silero_vad/data/silero_vad.jit`` with ``torch.jit.load`` and feed it consecutive 512-sample
windows of 16 kHz audio, as its documented streaming interface expects; it carries its state
(and the 64-sample context it prepends) from one call to the next, so ``reset_states()`` starts
each input afresh. No download: the file is in the wheel.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

WINDOW = 512  # samples per call at 16 kHz (silero-vad README: 512 for 16 kHz, 256 for 8 kHz)
SILERO_RATE = 16_000


@lru_cache(maxsize=1)
def load_silero():
    """The TorchScript model (one per process)."""
    import importlib.resources

    import torch

    try:
        path = importlib.resources.files("silero_vad.data").joinpath("silero_vad.jit")
    except ModuleNotFoundError:
        raise FileNotFoundError("vad.method=silero needs the silero-vad package: "
                                "pip install --no-deps silero-vad (scripts/setup.sh does)") from None
    with importlib.resources.as_file(path) as p, warnings.catch_warnings():
        # torch 2.13 deprecates TorchScript loading; the model ships only as TorchScript or ONNX
        warnings.simplefilter("ignore", DeprecationWarning)
        model = torch.jit.load(str(p), map_location="cpu")
    model.eval()
    return model


def silero_probabilities(wav: np.ndarray, sr: int = SILERO_RATE, row_s: float = 8.0, warm_s: float = 0.5) -> np.ndarray:
    """Speech probability of every whole 512-sample window of 16 kHz ``wav``.

    The model runs on a batch of rows: the input cut into ``row_s`` pieces, each preceded by
    ``warm_s`` of the audio before it (outputs dropped) so that its state has settled, as it has in
    one long stream. One call on 10 rows costs ~3 times one call on one row (measured: 3.7 vs
    1.2 ms on one CPU thread), so this is ~2.6 times faster than window by window; 0.17% of the
    windows' labels (at 0.5) differ from one stream's on a minute of espeak speech with pauses."""
    import torch

    if sr != SILERO_RATE:
        raise ValueError(f"silero VAD reads 16 kHz audio here, got {sr} Hz: resample first")
    n = len(wav) // WINDOW
    if n == 0:
        return np.zeros(0, np.float32)
    row = max(1, min(n, int(row_s * sr / WINDOW)))
    warm = int(warm_s * sr / WINDOW)
    rows = -(-n // row)
    windows = np.ascontiguousarray(wav[: n * WINDOW], np.float32).reshape(n, WINDOW)
    windows = np.concatenate([np.zeros((1, WINDOW), np.float32), windows])  # index 0: silence (padding)
    idx = np.arange(rows)[:, None] * row - warm + np.arange(row + warm)[None, :]  # (rows, warm + row)
    idx = np.where((idx >= 0) & (idx < n), idx + 1, 0)
    x = torch.from_numpy(windows[idx])  # (rows, warm + row, 512)
    model = load_silero()
    model.reset_states()
    out = np.empty((rows, row + warm), np.float32)
    with torch.inference_mode():
        for j in range(row + warm):
            out[:, j] = model(x[:, j], SILERO_RATE).numpy()[:, 0]
    return out[:, warm:].reshape(-1)[:n]


def silero_labels(wav: np.ndarray, sr: int, threshold: float = 0.5) -> tuple[np.ndarray, int]:
    """Speech/non-speech per 512-sample window and the hop (512)."""
    return silero_probabilities(wav, sr) >= threshold, WINDOW
