"""The wav2vec-U discriminator: a causal CNN scoring phone sequences, one logit per utterance.

Input is a phone distribution per position (B, T, V): one-hot for real text, softmax of the
joined generator output for generated. Layout of fairseq config ``w2vu``: conv kernel 6
(V -> 384), then ``depth - 1`` blocks of conv kernel 6 (384 -> 384) + GELU, then conv kernel 6
(384 -> 1); causal padding (kernel - 1 on the left) so padding at the end never leaks into
valid positions; the per-position logits are averaged over the unpadded positions::

    disc = Discriminator(num_phones=41, cfg=DiscriminatorConfig())
    scores = disc(probs, padding_mask)   # (B,)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wav2vec_u.models.config import DiscriminatorConfig


class _Conv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, causal: bool, spectral_norm: bool):
        super().__init__()
        self.kernel, self.causal = kernel, causal
        conv = nn.Conv1d(cin, cout, kernel)
        self.conv = nn.utils.parametrizations.spectral_norm(conv) if spectral_norm else conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, C', T)
        k = self.kernel
        left, right = (k - 1, 0) if self.causal else ((k - 1) // 2, k // 2)
        return self.conv(F.pad(x, (left, right)))


class Discriminator(nn.Module):
    def __init__(self, num_phones: int, cfg: DiscriminatorConfig | None = None):
        super().__init__()
        cfg = cfg or DiscriminatorConfig()
        self.cfg = cfg
        self.num_phones = num_phones
        sn = cfg.spectral_norm
        layers: list[nn.Module] = [_Conv(num_phones, cfg.dim, cfg.kernel, cfg.causal, sn), nn.Dropout(cfg.dropout)]
        for _ in range(cfg.depth - 1):
            layers += [_Conv(cfg.dim, cfg.dim, cfg.kernel, cfg.causal, sn), nn.Dropout(cfg.dropout), nn.GELU()]
        layers.append(_Conv(cfg.dim, 1, cfg.kernel, cfg.causal, sn))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, V) phone distributions; padding_mask (B, T) True at padding, or None -> (B,)."""
        assert x.dim() == 3 and x.shape[-1] == self.num_phones, (x.shape, self.num_phones)
        y = self.net(x.transpose(1, 2)).squeeze(1)  # (B, T)
        if padding_mask is None:
            return y.mean(1)
        assert padding_mask.shape == y.shape, (padding_mask.shape, y.shape)
        valid = (~padding_mask).to(y.dtype)
        return (y * valid).sum(1) / valid.sum(1).clamp(min=1)
