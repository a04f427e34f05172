"""GAN checkpoints: atomic writes, self-describing (config, phones, input size, lineage).

A checkpoint holds everything to resume training (both models, both optimisers, the update
count, RNG states and the data order) and everything to use the generator without knowing
how it was made::

    gen, phones, cfg = load_generator("run/best.pt", device="cpu")
    logits = generator_logits(gen, feats)        # feats (T, D) ndarray -> (T', V) ndarray
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from wav2vec_u.config import from_dict
from wav2vec_u.io import load_tagged_state, save_state
from wav2vec_u.models.generator import Generator
from wav2vec_u.train.config import GanConfig

FORMAT = "wav2vec-u-gan/1"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` with torch.save to a temporary file, then rename: never half-written."""
    return save_state(path, {"format": FORMAT, **state})


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    return load_tagged_state(path, FORMAT, "GAN checkpoint", map_location)


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[Generator, list[str], GanConfig]:
    """The generator of a checkpoint in eval mode, its phone list (output order) and config."""
    return generator_from_state(load_checkpoint(path, map_location=device), device)


def generator_from_state(state: dict[str, Any], device: str | torch.device = "cpu") -> tuple[Generator, list[str], GanConfig]:
    """:func:`load_generator` from an already loaded checkpoint (one file read per checkpoint)."""
    cfg = from_dict(GanConfig, state["config"])
    phones = list(state["phones"])
    gen = Generator(int(state["input_dim"]), len(phones), cfg.generator)
    gen.load_state_dict(state["generator"])
    gen.to(device).eval()
    return gen, phones, cfg


@torch.no_grad()
def generator_logits(generator: Generator, feats: np.ndarray) -> np.ndarray:
    """Eval-mode logits (T', V) of one utterance's features (T, D), before the join."""
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[1] != generator.input_dim:
        raise ValueError(f"features must be (T, {generator.input_dim}), got {feats.shape}")
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    x = torch.from_numpy(feats).to(device)[None]
    mask = torch.zeros(1, x.shape[1], dtype=torch.bool, device=device)
    logits, out_mask = generator(x, mask)
    generator.train(was_training)
    return logits[0][~out_mask[0]].float().cpu().numpy()
