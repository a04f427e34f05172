"""Frame-level audio features behind one interface: MFCC, log-mel, Hugging Face and fairseq models.

Every extractor maps a 16 kHz mono float32 waveform to a ``(T, D)`` float32 array at a fixed
frame rate. It is built from a spec string and a :class:`FeatureConfig`::

    from wav2vec_u.audio.features import FeatureConfig, build_extractor
    ex = build_extractor(FeatureConfig(extractor="mfcc"))
    feats = ex(wav)                                  # (T, 195): 13 MFCC + deltas, +-2 frames, CMVN
    ex = build_extractor(FeatureConfig(extractor="hf:facebook/wav2vec2-large-lv60", layer=14))
    ex = build_extractor(FeatureConfig(extractor="fairseq:/models/wav2vec_vox_new.pt", layer=14))

Spec strings:

- ``mfcc``: MFCC (HTK mel filterbank, log, orthonormal DCT-II), optional deltas, context
  stacking and per-utterance CMVN, all configured in ``FeatureConfig.spectral``.
- ``logmel``: the log mel filterbank energies, same options.
- ``hf:<model id or local dir>``: any Hugging Face speech encoder with ``encoder.layers``
  (Wav2Vec2, XLS-R, MMS, HuBERT, WavLM, data2vec-audio); see :mod:`wav2vec_u.audio.hf`.
- ``fairseq:<checkpoint.pt>``: a fairseq wav2vec 2.0 checkpoint read with plain torch; see
  :mod:`wav2vec_u.audio.fairseq_w2v2`.

``layer`` follows fairseq's ``extract_features(..., layer=L)`` for the self-supervised models:
the output of transformer block L (0-based), no final encoder LayerNorm. ``layer: null`` is
fairseq's ``layer=None``: all blocks plus the final LayerNorm of pre-LN models.

The spectral features are in :mod:`wav2vec_u.audio.spectral`; this module is the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from wav2vec_u.audio.spectral import SpectralConfig, SpectralExtractor


@dataclass
class FeatureConfig:
    """Which extractor, which layer, and where it runs."""

    extractor: str = "mfcc"       # mfcc | logmel | hf:<id-or-dir> | fairseq:<path.pt>
    layer: int | None = 14        # SSL models only. paper Sec. 4: block 15 of 24 = fairseq layer 14
    spectral: SpectralConfig = field(default_factory=SpectralConfig)
    device: str = "cpu"           # cpu | cuda | cuda:1 ...
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"  # compute dtype of SSL models (GPU)
    normalize: bool | None = None  # waveform layer norm; None: what the checkpoint says


class Extractor(Protocol):
    """What every extractor provides."""

    name: str            # spec string it was built from
    dim: int             # feature dimension D
    frame_rate: float    # frames per second
    batch_invariant: bool  # True when padding other utterances into a batch cannot change outputs

    def __call__(self, wav: np.ndarray) -> np.ndarray: ...  # (N,) float32 -> (T, D) float32

    def extract_batch(self, wavs: list[np.ndarray]) -> list[np.ndarray]: ...

    def describe(self) -> dict: ...  # model path, sha256, layer ... for meta.json


# ----------------------------------------------------------------------------- spectral features


# ----------------------------------------------------------------------------- registry

def build_extractor(cfg: FeatureConfig) -> Extractor:
    """The extractor a spec string names (see module docstring)."""
    spec = cfg.extractor.strip()
    if spec in ("mfcc", "logmel"):
        return SpectralExtractor(spec, cfg.spectral)  # type: ignore[arg-type]
    if spec.startswith("hf:"):
        from wav2vec_u.audio.hf import HFExtractor  # transformers is imported only here

        return HFExtractor(spec[3:], layer=cfg.layer, device=cfg.device, dtype=cfg.dtype, normalize=cfg.normalize)
    if spec.startswith("fairseq:"):
        from wav2vec_u.audio.fairseq_w2v2 import FairseqExtractor

        return FairseqExtractor(spec[len("fairseq:"):], layer=cfg.layer, device=cfg.device, dtype=cfg.dtype,
                                normalize=cfg.normalize)
    raise ValueError(f"unknown extractor '{spec}': use mfcc, logmel, hf:<model id or dir> or fairseq:<checkpoint.pt>")


