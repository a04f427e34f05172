"""A deciphered phone recogniser: change-point segments -> k-means units -> trigram decipherment HMM.

What ``w2vu decipher`` trains and every decoder reads::

    model = load_decipher_model("out/decipher/decipher.pt")
    bounds, units = model.units(frames)          # frames (T, D) of one utterance -> segments, unit ids
    phones = model.labels([frames])[0]           # max-posterior phones, runs merged, <SIL> dropped
    logp, spans = model.log_posteriors(frames)   # (S, V) per segment, (S, 2) frame spans

The checkpoint holds the segmenter settings, the feature columns it watches, the k-means
codebook, the HMM (phones, trigram transitions, emissions, self-loop), the run's config and
lineage (feature folder, text folder, input hashes): it can be used without knowing how it
was made. Tensors and plain data only, so it loads with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from wav2vec_u.audio.segmenters import ChangeSegmenterConfig, change_boundaries, pool
from wav2vec_u.audio.segments import assign_clusters
from wav2vec_u.config import from_dict, to_dict
from wav2vec_u.decipher.hmm import DecipherHMM
from wav2vec_u.io import load_tagged_state, save_state

FORMAT = "wav2vec-u-decipher/1"


@dataclass
class DecipherModel:
    columns: tuple[int, int]           # feature columns the segmenter watches
    segmenter: ChangeSegmenterConfig
    centroids: np.ndarray              # (K, D) k-means codebook over segment means
    hmm: DecipherHMM

    @property
    def phones(self) -> list[str]:
        return self.hmm.phones

    @property
    def input_dim(self) -> int:
        return int(self.centroids.shape[1])

    def _check(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[1] != self.input_dim:
            raise ValueError(f"features must be (T, {self.input_dim}), got {frames.shape}")
        if len(frames) == 0:
            raise ValueError("an utterance has no frames")
        return frames

    def units(self, frames: np.ndarray) -> tuple[list[int], np.ndarray]:
        """Segment boundaries ``[0, ..., T]`` and the unit id of every segment of one utterance."""
        frames = self._check(frames)
        bounds = change_boundaries(frames[:, self.columns[0]:self.columns[1]], self.segmenter)
        return bounds, assign_clusters(pool(frames, bounds), self.centroids)

    def labels(self, utterances: Sequence[np.ndarray]) -> list[list[str]]:
        """The pseudo-labels of every utterance: each segment's most likely phone given the whole
        utterance (forward-backward), runs merged, ``<SIL>`` dropped."""
        posts = self.hmm.posteriors([self.units(f)[1] for f in utterances])
        return [self.hmm.path_phones(p.argmax(1)) for p in posts]

    def log_posteriors(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(S, V) log P(phone | units) of every segment and its (S, 2) frame span [start, end)."""
        bounds, units = self.units(frames)
        post = self.hmm.posteriors([units])[0]
        b = np.asarray(bounds, dtype=np.int64)
        return np.log(np.maximum(post, 1e-10)).astype(np.float32), np.stack([b[:-1], b[1:]], axis=1)

    def state_dict(self) -> dict[str, Any]:
        h = self.hmm
        return {"columns": list(self.columns), "segmenter": to_dict(self.segmenter),
                "centroids": torch.from_numpy(np.ascontiguousarray(self.centroids, dtype=np.float32)),
                "phones": list(h.phones), "transitions": h.trans.clone(), "emissions": h.emissions.clone(),
                "self_loop": h.self_loop}

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> "DecipherModel":
        hmm = DecipherHMM(list(d["phones"]), torch.as_tensor(d["transitions"]).numpy(),
                          torch.as_tensor(d["emissions"]), float(d["self_loop"]))
        return cls(tuple(int(c) for c in d["columns"]), from_dict(ChangeSegmenterConfig, d["segmenter"], "segmenter."),
                   torch.as_tensor(d["centroids"]).numpy(), hmm)


def save_decipher_model(path: str | Path, model: DecipherModel, *, config: dict, lineage: dict,
                        scores: dict | None = None) -> Path:
    """An atomic, self-describing checkpoint (format, model, the run's config, lineage, label-free scores)."""
    return save_state(path, {"format": FORMAT, "model": model.state_dict(), "config": config, "lineage": lineage,
                             "scores": scores or {}})


def load_decipher_model(path: str | Path) -> DecipherModel:
    return decipher_model_from_state(load_tagged_state(path, FORMAT, "decipher checkpoint"))


def decipher_model_from_state(state: dict[str, Any]) -> DecipherModel:
    return DecipherModel.from_state_dict(state["model"])
