"""The wav2vec-U generator: segment features (B, T, D) -> phone logits (B, T', V).

wav2vec-U 1.0 (fairseq config ``w2vu``): dropout 0.1 on the input, then a single Conv1d from
the feature dimension to the phone set, kernel 4, stride 1, padding kernel // 2, no bias.
Options the 2.0 variant uses (input BatchNorm with a constant weight init, residual linear,
stride, kernel 9) are configurable but off by default::

    gen = Generator(input_dim=512, num_phones=41, cfg=GeneratorConfig())
    logits, padding_mask = gen(feats, padding_mask)   # (B, T+1, 41), (B, T+1)

With kernel 4 and padding 2 an utterance of ``L`` segments gives ``L + 1`` outputs (the
convolution's own arithmetic, as in the reference); the returned mask marks the rest.
"""

from __future__ import annotations

import torch
from torch import nn

from wav2vec_u.models.config import GeneratorConfig


def conv_output_lengths(lengths: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    return torch.div(lengths + 2 * padding - kernel, stride, rounding_mode="floor") + 1


class Generator(nn.Module):
    def __init__(self, input_dim: int, num_phones: int, cfg: GeneratorConfig | None = None):
        super().__init__()
        cfg = cfg or GeneratorConfig()
        self.cfg = cfg
        self.input_dim = input_dim
        self.num_phones = num_phones
        self.padding = cfg.kernel // 2
        self.dropout = nn.Dropout(cfg.dropout)
        self.batch_norm = None
        if cfg.batch_norm:
            self.batch_norm = nn.BatchNorm1d(input_dim)
            nn.init.constant_(self.batch_norm.weight, cfg.batch_norm_weight)  # 2.0: weight init 30
        self.residual = nn.Linear(input_dim, input_dim) if cfg.residual else None
        self.proj = nn.Conv1d(input_dim, num_phones, kernel_size=cfg.kernel, stride=cfg.stride,
                              padding=self.padding, bias=cfg.bias)
        if cfg.init_std > 0:
            nn.init.normal_(self.proj.weight, std=cfg.init_std)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return conv_output_lengths(lengths, self.cfg.kernel, self.cfg.stride, self.padding)

    def forward(self, feats: torch.Tensor, padding_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, D); padding_mask (B, T) True at padding -> logits (B, T', V), mask (B, T')."""
        assert feats.dim() == 3 and feats.shape[-1] == self.input_dim, (feats.shape, self.input_dim)
        assert padding_mask.shape == feats.shape[:2], (padding_mask.shape, feats.shape)
        x = feats.masked_fill(padding_mask[:, :, None], 0.0)
        if self.batch_norm is not None:
            x = self.batch_norm(x.transpose(1, 2)).transpose(1, 2)
        x = self.dropout(x)
        if self.residual is not None:
            x = x + self.residual(x)
        x = x.masked_fill(padding_mask[:, :, None], 0.0)
        logits = self.proj(x.transpose(1, 2)).transpose(1, 2)  # (B, T', V)
        lengths = self.output_lengths((~padding_mask).sum(1))
        out_mask = torch.arange(logits.shape[1], device=logits.device)[None, :] >= lengths[:, None]
        return logits, out_mask
