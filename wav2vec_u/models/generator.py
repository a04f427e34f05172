"""The wav2vec-U generator: segment or frame features (B, T, D) -> phone logits (B, T', V).

wav2vec-U 1.0 (fairseq config ``w2vu``): dropout 0.1 on the input, then a single Conv1d from
the feature dimension to the phone set, kernel 4, stride 1, padding kernel // 2, no bias::

    gen = Generator(input_dim=512, num_phones=41, cfg=GeneratorConfig())
    logits, padding_mask = gen(feats, padding_mask)   # (B, T+1, 41), (B, T+1)

wav2vec-U 2.0 (config ``w2vu2``) reads frames, not segments: BatchNorm over the unpadded input
frames (weight initialised to 30), a residual linear block ``x + Linear(dropout(x))``, dropout,
then the Conv1d with kernel 9, stride 3 (50 Hz frames -> ~16.7 Hz phone positions). An
auxiliary linear head reads the residual branch's output, at the input frame rate::

    gen = Generator(1024, 41, GeneratorConfig(kernel=9, stride=3, batch_norm=True, residual=True, aux_classes=64))
    logits, mask, aux = gen.run(feats, padding_mask)  # (B, ceil(T/3), 41), (B, ceil(T/3)), (B, T, 64)

Output lengths are the convolution's arithmetic, ``floor((L + 2 * (kernel // 2) - kernel) / stride) + 1``:
``L + 1`` for kernel 4 / stride 1, ``ceil(L / 3)`` for kernel 9 / stride 3 (the reference's mask
``mask[:, ::3]`` gives the same count). Padded positions are zeroed before the convolution, so
an utterance's logits do not depend on what it is batched with.
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
        if cfg.aux_classes > 0 and not cfg.residual:
            raise ValueError("generator.aux_classes > 0 needs generator.residual=true: the auxiliary head reads "
                             "the residual branch's output (as wav2vec-U 2.0)")
        self.aux_head = nn.Linear(input_dim, cfg.aux_classes) if cfg.aux_classes > 0 else None
        self.proj = nn.Conv1d(input_dim, num_phones, kernel_size=cfg.kernel, stride=cfg.stride,
                              padding=self.padding, bias=cfg.bias)
        if cfg.init_std > 0:
            nn.init.normal_(self.proj.weight, std=cfg.init_std)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return conv_output_lengths(lengths, self.cfg.kernel, self.cfg.stride, self.padding)

    def forward(self, feats: torch.Tensor, padding_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, D); padding_mask (B, T) True at padding -> logits (B, T', V), mask (B, T')."""
        logits, out_mask, _ = self.run(feats, padding_mask)
        return logits, out_mask

    def run(self, feats: torch.Tensor, padding_mask: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`forward` plus the auxiliary head's logits (B, T, aux_classes) at the input rate (None without one)."""
        assert feats.dim() == 3 and feats.shape[-1] == self.input_dim, (feats.shape, self.input_dim)
        assert padding_mask.shape == feats.shape[:2], (padding_mask.shape, feats.shape)
        pad = padding_mask[:, :, None]
        x = feats.masked_fill(pad, 0.0)
        if self.batch_norm is not None:
            # statistics over the unpadded frames only (the reference normalises feature[~padding_mask])
            valid = ~padding_mask
            normed = torch.zeros_like(x)
            normed[valid] = self.batch_norm(x[valid])
            x = normed
        aux = None
        if self.residual is not None:
            inter = self.residual(self.dropout(x))  # reference: inter_x = in_proj(dropout(x)); x = x + inter_x
            x = x + inter
            if self.aux_head is not None:
                aux = self.aux_head(inter)
        x = self.dropout(x).masked_fill(pad, 0.0)
        logits = self.proj(x.transpose(1, 2)).transpose(1, 2)  # (B, T', V)
        lengths = self.output_lengths((~padding_mask).sum(1))
        out_mask = torch.arange(logits.shape[1], device=logits.device)[None, :] >= lengths[:, None]
        return logits, out_mask, aux
