"""A deciphered phone recogniser: change-point segments -> k-means units -> decipherment HMMs, ensembled.

What ``w2vu decipher`` trains and every decoder reads::

    model = load_decipher_model("out/decipher/decipher.pt")
    phones = model.labels([frames])[0]           # frames (T, D) of one utterance -> phones (<SIL> dropped)
    logp, spans = model.log_posteriors(frames)   # (S, V) per segment, (S, 2) frame spans

A model has one segmentation (spectral change, :mod:`wav2vec_u.audio.segmenters`) and one or
more *members*, each a k-means codebook over segment means with the trigram decipherment HMM
trained on its units (one member per refined seed). A segment's phone posterior is the
normalised geometric mean of the members' posteriors: seeds differ mostly by their codebooks,
and on the English demo three members together (44.0% PER) beat each alone (46.3-52.2%).

The checkpoint holds the segmenter settings, the feature columns it watches, every member
(codebook; HMM phones, trigram transitions, emissions, self-loop), the run's config and lineage
(feature folder, text folder, input hashes): it can be used without knowing how it was made.
Tensors and plain data only, so it loads with ``weights_only=True``.
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

FORMAT = "wav2vec-u-decipher/2"


@dataclass
class Member:
    centroids: np.ndarray              # (K, D) k-means codebook over segment means
    hmm: DecipherHMM


def combine_posteriors(posteriors: Sequence[np.ndarray]) -> np.ndarray:
    """(S, V) log of the normalised geometric mean of the members' (S, V) posteriors."""
    lg = np.mean([np.log(np.maximum(p, 1e-10)) for p in posteriors], axis=0)
    lg -= lg.max(1, keepdims=True)
    return (lg - np.log(np.exp(lg).sum(1, keepdims=True))).astype(np.float32)


def posterior_phones(log_post: np.ndarray, hmm: DecipherHMM) -> list[str]:
    """The most likely phone of every segment, runs merged, ``<SIL>`` dropped."""
    return hmm.path_phones(np.asarray(log_post).argmax(1))


@dataclass
class DecipherModel:
    columns: tuple[int, int]           # feature columns the segmenter watches
    segmenter: ChangeSegmenterConfig
    members: list[Member]

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("a decipher model needs at least one member")
        phones = self.members[0].hmm.phones
        if any(m.hmm.phones != phones for m in self.members):
            raise ValueError("the members of a decipher model must share one phone inventory")

    @property
    def phones(self) -> list[str]:
        return self.members[0].hmm.phones

    @property
    def input_dim(self) -> int:
        return int(self.members[0].centroids.shape[1])

    def segments(self, frames: np.ndarray) -> tuple[list[int], list[np.ndarray]]:
        """Segment boundaries ``[0, ..., T]`` of one utterance and each member's unit id per segment."""
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[1] != self.input_dim:
            raise ValueError(f"features must be (T, {self.input_dim}), got {frames.shape}")
        if len(frames) == 0:
            raise ValueError("an utterance has no frames")
        bounds = change_boundaries(frames[:, self.columns[0]:self.columns[1]], self.segmenter)
        means = pool(frames, bounds)
        return bounds, [assign_clusters(means, m.centroids) for m in self.members]

    def segment_log_posteriors(self, member_units: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
        """Combined (S_i, V) log posteriors of utterances given each member's unit sequences
        (``member_units[j][i]``: member j's units of utterance i)."""
        per_member = [m.hmm.posteriors(list(u)) for m, u in zip(self.members, member_units)]
        return [combine_posteriors([p[i] for p in per_member]) for i in range(len(per_member[0]))]

    def labels(self, utterances: Sequence[np.ndarray]) -> list[list[str]]:
        """The pseudo-labels of every utterance: each segment's most likely phone, runs merged,
        ``<SIL>`` dropped."""
        units = [self.segments(f)[1] for f in utterances]
        member_units = [[u[j] for u in units] for j in range(len(self.members))]
        return [posterior_phones(lp, self.members[0].hmm) for lp in self.segment_log_posteriors(member_units)]

    def log_posteriors(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(S, V) log P(phone | units) of every segment and its (S, 2) frame span [start, end)."""
        bounds, units = self.segments(frames)
        lp = self.segment_log_posteriors([[u] for u in units])[0]
        b = np.asarray(bounds, dtype=np.int64)
        return lp, np.stack([b[:-1], b[1:]], axis=1)

    def state_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "segmenter": to_dict(self.segmenter),
                "members": [{"centroids": torch.from_numpy(np.ascontiguousarray(m.centroids, dtype=np.float32)),
                             "phones": list(m.hmm.phones), "transitions": m.hmm.trans.clone(),
                             "emissions": m.hmm.emissions.clone(), "self_loop": m.hmm.self_loop}
                            for m in self.members]}

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> "DecipherModel":
        members = [Member(torch.as_tensor(m["centroids"]).numpy(),
                          DecipherHMM(list(m["phones"]), torch.as_tensor(m["transitions"]).numpy(),
                                      torch.as_tensor(m["emissions"]), float(m["self_loop"])))
                   for m in d["members"]]
        return cls(tuple(int(c) for c in d["columns"]), from_dict(ChangeSegmenterConfig, d["segmenter"], "segmenter."),
                   members)


def save_decipher_model(path: str | Path, model: DecipherModel, *, config: dict, lineage: dict,
                        scores: dict | None = None) -> Path:
    """An atomic, self-describing checkpoint (format, model, the run's config, lineage, label-free scores)."""
    return save_state(path, {"format": FORMAT, "model": model.state_dict(), "config": config, "lineage": lineage,
                             "scores": scores or {}})


def load_decipher_model(path: str | Path) -> DecipherModel:
    return decipher_model_from_state(load_tagged_state(path, FORMAT, "decipher checkpoint"))


def decipher_model_from_state(state: dict[str, Any]) -> DecipherModel:
    return DecipherModel.from_state_dict(state["model"])
