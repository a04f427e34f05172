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

from functools import lru_cache

import numpy as np

WINDOW = 512  # samples per call at 16 kHz (silero-vad README: 512 for 16 kHz, 256 for 8 kHz)
SILERO_RATE = 16_000
BATCH_WINDOWS = 2048  # windows per tensor handed to the model's loop (65 s), bounds the copy


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
    with importlib.resources.as_file(path) as p:
        model = torch.jit.load(str(p), map_location="cpu")
    model.eval()
    return model


def silero_probabilities(wav: np.ndarray, sr: int = SILERO_RATE) -> np.ndarray:
    """Speech probability of every whole 512-sample window of 16 kHz ``wav``."""
    import torch

    if sr != SILERO_RATE:
        raise ValueError(f"silero VAD reads 16 kHz audio here, got {sr} Hz: resample first")
    n = len(wav) // WINDOW
    if n == 0:
        return np.zeros(0, np.float32)
    model = load_silero()
    model.reset_states()
    x = torch.from_numpy(np.ascontiguousarray(wav[: n * WINDOW], np.float32)).view(n, WINDOW)
    out = np.empty(n, np.float32)
    with torch.inference_mode():
        for i in range(n):
            out[i] = float(model(x[i: i + 1], SILERO_RATE))
    return out


def silero_labels(wav: np.ndarray, sr: int, threshold: float = 0.5) -> tuple[np.ndarray, int]:
    """Speech/non-speech per 512-sample window and the hop (512)."""
    return silero_probabilities(wav, sr) >= threshold, WINDOW
