"""The CTC model that self-training trains: a small conv (or BiLSTM) head over frozen features.

    model = CtcModel(input_dim, [BLANK, *phones], CtcModelConfig())
    logits = ctc_logits(model, feats)                 # (T', V), blank at index 0
    save_ctc_model("st/ctc.pt", model); model = load_ctc_model("st/ctc.pt")

The output vocabulary is ``["<SIL>", *phones]``: index 0 is the CTC blank, stored under the
silence symbol so that the Viterbi and lexicon decoders read CTC outputs unchanged (both drop
it and let it separate two equal phones, which is exactly the CTC blank rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wav2vec_u.config import at_least, from_dict, in_range, non_negative, to_dict
from wav2vec_u.io import load_tagged_state, save_state
from wav2vec_u.decode.viterbi import viterbi_decode
from wav2vec_u.tokens import SIL


BLANK = SIL  # the CTC blank is the silence token (its outputs are dropped)


FORMAT = "wav2vec-u-ctc/1"


@dataclass
class CtcModelConfig:
    kind: Literal["conv", "bilstm"] = "conv"
    hidden: int = at_least(1, default=128)  # channels of every layer
    layers: int = non_negative(default=2)  # conv blocks (or BiLSTM layers) after the input projection
    kernel: int = at_least(1, default=5)  # conv kernel (odd; "same" padding)
    subsample: int = at_least(1, default=1)  # stride of the input projection (2 halves a 100 Hz frame rate)
    # high: against memorising the noisy labels (docs/decode.md: 30.1 -> 22.1% PER)
    dropout: float = in_range(0.0, 1.0, hi_open=True, default=0.3)
    input_dropout: float = in_range(0.0, 1.0, hi_open=True, default=0.2)


class CtcModel(nn.Module):
    """Frozen features (B, T, D) -> CTC logits (B, T', V); ``V = len(vocab)``, blank at 0."""

    def __init__(self, input_dim: int, vocab: Sequence[str], cfg: CtcModelConfig):
        super().__init__()
        if cfg.kernel % 2 != 1:
            raise ValueError(f"model.kernel must be odd, got {cfg.kernel}")
        if vocab[0] != BLANK:
            raise ValueError(f"vocab[0] must be the blank {BLANK!r}")
        self.input_dim, self.vocab, self.cfg = input_dim, list(vocab), cfg
        self.blank_offset = 0.0  # set by self_train (see SelfTrainConfig.blank_offset); saved
        # feature normalisation fitted on the training set (set_normalization)
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))
        h, k = cfg.hidden, cfg.kernel
        self.input_dropout = nn.Dropout(cfg.input_dropout)
        self.proj = nn.Conv1d(input_dim, h, k, stride=cfg.subsample, padding=k // 2)
        if cfg.kind == "conv":
            self.blocks = nn.ModuleList(
                nn.Sequential(nn.Conv1d(h, h, k, padding=k // 2), nn.GELU(), nn.Dropout(cfg.dropout))
                for _ in range(cfg.layers))
            self.lstm = None
        else:
            self.blocks = nn.ModuleList()
            self.lstm = nn.LSTM(h, h // 2, num_layers=cfg.layers, bidirectional=True, batch_first=True,
                                dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.norm = nn.LayerNorm(h)
        self.out = nn.Linear(h, len(self.vocab))

    def set_normalization(self, utts: Sequence[np.ndarray]) -> None:
        """Per-dimension mean and standard deviation over all frames (streamed, no big copy)."""
        n, total, sq = 0, np.zeros(self.input_dim), np.zeros(self.input_dim)
        for u in utts:
            u = np.asarray(u, dtype=np.float64)
            n += len(u)
            total += u.sum(0)
            sq += (u * u).sum(0)
        mean = total / max(n, 1)
        std = np.sqrt(np.maximum(sq / max(n, 1) - mean * mean, 0.0))
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-5))

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (lengths - 1) // self.cfg.subsample + 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert x.ndim == 3 and x.shape[2] == self.input_dim, f"expected (B, T, {self.input_dim}), got {tuple(x.shape)}"
        pad = torch.arange(x.shape[1], device=x.device)[None] >= lengths[:, None]  # True at padding
        x = ((x - self.mean) / self.std).masked_fill(pad[..., None], 0.0)
        x = self.proj(self.input_dropout(x).transpose(1, 2))  # (B, H, T')
        out_len = self.output_lengths(lengths)
        pad = torch.arange(x.shape[2], device=x.device)[None] >= out_len[:, None]
        x = F.gelu(x)
        for block in self.blocks:
            x = x + block(x.masked_fill(pad[:, None], 0.0))
        x = x.transpose(1, 2)  # (B, T', H)
        if self.lstm is not None:
            packed = nn.utils.rnn.pack_padded_sequence(x, out_len.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.lstm(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return self.out(self.norm(x)), out_len


@torch.no_grad()
def ctc_logits(model: CtcModel, feats: np.ndarray, with_blank_offset: bool = False) -> np.ndarray:
    """Eval-mode logits (T', V) of one utterance (T, D); ``model.vocab`` indexes V.

    ``with_blank_offset``: subtract the model's tuned ``blank_offset`` from the blank column,
    ready for :func:`viterbi_decode` or the lexicon decoder.
    """
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[1] != model.input_dim:
        raise ValueError(f"features must be (T, {model.input_dim}), got {feats.shape}")
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    logits, _ = model(torch.from_numpy(feats).to(device)[None], torch.tensor([len(feats)], device=device))
    model.train(was)
    out = logits[0].float().cpu().numpy()
    return offset_blank(out, model.blank_offset) if with_blank_offset else out


def offset_blank(logits: np.ndarray, blank_offset: float) -> np.ndarray:
    """``logits`` with ``blank_offset`` taken off the blank column (index 0); a copy when it changes them."""
    if not blank_offset:
        return logits
    logits = logits.copy()
    logits[:, 0] -= blank_offset
    return logits


def ctc_decode(model: CtcModel, utts: Sequence[np.ndarray], blank_offset: float = 0.0) -> list[list[str]]:
    """Greedy CTC decoding (argmax, join repeats, drop blank) of each utterance."""
    return [greedy_ctc(ctc_logits(model, u), model.vocab, blank_offset) if len(u) else [] for u in utts]


def greedy_ctc(logits: np.ndarray, vocab: Sequence[str], blank_offset: float) -> list[str]:
    return viterbi_decode(offset_blank(logits, blank_offset), vocab).tokens


def save_ctc_model(path: str | Path, model: CtcModel, extra: dict | None = None) -> Path:
    state = {"format": FORMAT, "input_dim": model.input_dim, "vocab": model.vocab,
             "model_config": to_dict(model.cfg), "state_dict": model.state_dict(),
             "blank_offset": float(model.blank_offset), **(extra or {})}
    return save_state(path, state)


def load_ctc_model(path: str | Path, device: str = "cpu") -> CtcModel:
    return ctc_model_from_state(load_tagged_state(path, FORMAT, "CTC model", device), device)


def ctc_model_from_state(state: dict, device: str = "cpu") -> CtcModel:
    """:func:`load_ctc_model` from an already loaded checkpoint."""
    model = CtcModel(int(state["input_dim"]), state["vocab"], from_dict(CtcModelConfig, state["model_config"]))
    model.load_state_dict(state["state_dict"])
    model.blank_offset = float(state.get("blank_offset", 0.0))
    return model.to(device).eval()


def is_ctc_checkpoint(path: str | Path) -> bool:
    try:
        load_tagged_state(path, FORMAT, "CTC model")
    except (FileNotFoundError, ValueError):
        return False
    return True
