"""Zero-padded batches of variable-length arrays: waveforms (N,) or feature frames (T, D).

Every model that takes a batch of utterances pads it the same way::

    x, lengths = pad_batch([np.zeros((5, 3)), np.ones((2, 3))])   # x: (2, 5, 3), lengths: [5, 2]
    mask = padding_mask(lengths, x.shape[1])                     # True at padded positions
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch


def pad_batch(arrays: Sequence[np.ndarray], device: str | torch.device = "cpu",
              normalize: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T_max, ...) float32 batch and the (B,) lengths; ``normalize`` is applied to each array alone
    (as fairseq's and Hugging Face's collaters normalise each waveform)."""
    lengths = torch.tensor([len(a) for a in arrays], dtype=torch.long)
    first = np.asarray(arrays[0])
    x = torch.zeros((len(arrays), int(lengths.max()), *first.shape[1:]))
    for i, a in enumerate(arrays):
        t = torch.from_numpy(np.asarray(a, dtype=np.float32))
        x[i, : len(a)] = normalize(t) if normalize is not None else t
    return x.to(device), lengths.to(device)


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) bool, True at padded positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
