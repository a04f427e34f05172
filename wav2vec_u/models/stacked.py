"""N wav2vec-U GANs of the same shapes as one stacked model: grouped convolutions over a member axis.

Member ``m`` of the stack is an ordinary :class:`~wav2vec_u.models.gan.Gan`; its weights are
row ``m`` of the stacked tensors (leading axis N). Every function here computes, for each
member, what the single-model code of :mod:`wav2vec_u.models.gan` computes for it, on batches
padded to the longest member's length (positions a member does not have are padding)::

    params = StackedParams.from_gans([gan_a, gan_b])          # G: (N, V, D, k); D: (N, C', C, k) per conv
    logits, mask = stacked_generator(params, cfgs.generator, x, xmask, noise)   # (N, B, T', V), (N, B, T')
    scores = stacked_discriminator(params, cfgs.discriminator, probs, mask)  # (N, B)

Shapes: ``x (N, B, L, D)`` features, ``xmask (N, B, L)`` True at padding; phone distributions
``(N, B, T, V)``. The convolutions are one ``conv1d(groups=N)`` each, so the N members cost one
kernel launch per layer instead of N; the results equal the single model's to float rounding
(the grouped kernel sums in another order).

What the stack does not cover (the 2.0 generator's BatchNorm, residual block and auxiliary
head, Gumbel outputs, spectral norm, discriminator dropout, a non-causal discriminator) is refused by
:func:`check_stackable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from wav2vec_u.models.config import DiscriminatorConfig, GeneratorConfig
from wav2vec_u.models.gan import Gan
from wav2vec_u.models.generator import conv_output_lengths


def check_stackable(gen: GeneratorConfig, disc: DiscriminatorConfig) -> None:
    """Raise ValueError naming the first setting the stacked model does not implement."""
    unsupported = {"generator.batch_norm": gen.batch_norm, "generator.residual": gen.residual,
                   "generator.aux_classes": gen.aux_classes > 0, "generator.output=gumbel": gen.output == "gumbel",
                   "discriminator.spectral_norm": disc.spectral_norm, "discriminator.dropout": disc.dropout > 0,
                   # members are padded to the longest member's batch: a non-causal D's deeper layers would read
                   # that padding (activations past a member's length) where the run alone reads zeros
                   "discriminator.causal=false": not disc.causal}
    for key, on in unsupported.items():
        if on:
            raise ValueError(f"w2vu sweep trains members as one stacked model, which does not implement {key}; "
                             "train these runs one by one with `w2vu train-gan`")


@dataclass
class StackedParams:
    """Stacked leaf tensors (requires_grad) of N GANs, in each module's ``parameters()`` order."""

    generator: list[torch.Tensor]  # [proj.weight (N, V, D, k)] (+ [proj.bias (N, V)])
    discriminator: list[torch.Tensor]  # per conv: weight (N, C', C, k), bias (N, C')

    @classmethod
    def from_gans(cls, gans: list[Gan]) -> "StackedParams":
        def stack(mods: list[torch.nn.Module]) -> list[torch.Tensor]:
            per = [list(m.parameters()) for m in mods]
            return [torch.stack([p[i].detach() for p in per]).clone().requires_grad_(True) for i in range(len(per[0]))]

        return cls(stack([g.generator for g in gans]), stack([g.discriminator for g in gans]))

    def write_to(self, m: int, gan: Gan) -> None:
        """Copy member ``m``'s weights into ``gan`` (for validation and checkpoints)."""
        with torch.no_grad():
            for mine, theirs in ((self.generator, gan.generator), (self.discriminator, gan.discriminator)):
                for src, dst in zip(mine, theirs.parameters()):
                    dst.copy_(src[m])

    def select(self, keep: torch.Tensor) -> "StackedParams":
        """The members at indices ``keep`` (a dropped run leaves the stack)."""
        pick = lambda ps: [p.detach()[keep].clone().requires_grad_(True) for p in ps]  # noqa: E731
        return StackedParams(pick(self.generator), pick(self.discriminator))


def _grouped_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1,
                  padding: int = 0) -> torch.Tensor:
    """x (N, B, C, T), weight (N, C', C, k), bias (N, C') -> (N, B, C', T'): member m's conv on its rows."""
    N, B, C, T = x.shape
    w = weight.reshape(-1, *weight.shape[2:])
    y = F.conv1d(x.transpose(0, 1).reshape(B, N * C, T), w, None if bias is None else bias.reshape(-1),
                 stride=stride, padding=padding, groups=N)
    return y.view(B, N, weight.shape[1], -1).transpose(0, 1)


def stacked_generator(params: StackedParams, cfg: GeneratorConfig, feats: torch.Tensor, padding_mask: torch.Tensor,
                      noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """feats (N, B, L, D), padding_mask (N, B, L); ``noise`` (N, B, L, D) the dropout multipliers (None: eval)
    -> logits (N, B, T', V), mask (N, B, T'): :meth:`Generator.forward` of every member."""
    assert feats.dim() == 4 and padding_mask.shape == feats.shape[:3], (feats.shape, padding_mask.shape)
    pad = padding_mask[..., None]
    x = feats.masked_fill(pad, 0.0)
    if noise is not None:
        x = x * noise
    x = x.masked_fill(pad, 0.0)
    weight = params.generator[0]
    bias = params.generator[1] if cfg.bias else None
    logits = _grouped_conv(x.transpose(2, 3), weight, bias, cfg.stride, cfg.kernel // 2).transpose(2, 3)
    lengths = conv_output_lengths((~padding_mask).sum(2), cfg.kernel, cfg.stride, cfg.kernel // 2)
    out_mask = torch.arange(logits.shape[2], device=logits.device) >= lengths[..., None]
    return logits, out_mask


def stacked_discriminator(params: StackedParams, cfg: DiscriminatorConfig, x: torch.Tensor,
                          padding_mask: torch.Tensor) -> torch.Tensor:
    """x (N, B, T, V) phone distributions, padding_mask (N, B, T) -> (N, B): :meth:`Discriminator.forward`
    of every member (mean of the per-position logits over each utterance's unpadded positions)."""
    assert x.dim() == 4 and padding_mask.shape == x.shape[:3], (x.shape, padding_mask.shape)
    k = cfg.kernel
    left, right = (k - 1, 0) if cfg.causal else ((k - 1) // 2, k // 2)
    N, B, T, V = x.shape
    # the members side by side on the channel axis, (B, N * C, T), from the first layer to the last:
    # each layer is one grouped convolution, with no copies between layers
    y = x.permute(1, 0, 3, 2).reshape(B, N * V, T)
    convs = params.discriminator
    n_layers = len(convs) // 2
    for i in range(n_layers):
        w, b = convs[2 * i], convs[2 * i + 1]
        y = F.conv1d(F.pad(y, (left, right)), w.reshape(-1, *w.shape[2:]), b.reshape(-1), groups=N)
        if 0 < i < n_layers - 1:
            y = F.gelu(y)
    y = y.view(B, N, T).transpose(0, 1)  # (N, B, T)
    valid = (~padding_mask).to(y.dtype)
    return (y * valid).sum(2) / valid.sum(2).clamp(min=1)


def stacked_join(logits: torch.Tensor, padding_mask: torch.Tensor, draw: Callable[[list[int]], list[torch.Tensor]] | None,
                 static_shape: bool = False) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """:func:`~wav2vec_u.models.join.join_segments` of every member: logits (N, B, T, V), padding_mask (N, B, T).

    ``draw(runs)``: given each member's R (its largest number of runs, at least 1), member m's
    ``B * R_m + 1`` draws of U[0, 1), as its own join's ``torch.rand`` in training; None averages
    the runs (evaluation). Returns joined (N, B, R, V) with R = max R_m, mask (N, B, R), and the R_m.
    ``static_shape``: every R_m is T, as the single join's (no host synchronisation).
    """
    N, B, T, V = logits.shape
    device = logits.device
    valid = ~padding_mask
    preds = logits.detach().argmax(-1)
    same_as_prev = torch.zeros_like(valid)
    same_as_prev[..., 1:] = (preds[..., 1:] == preds[..., :-1]) & valid[..., :-1]
    start = valid & ~same_as_prev
    run_idx = torch.cumsum(start.long(), dim=2) - 1
    n_runs = start.sum(2)  # (N, B)
    if static_shape:
        runs = [max(T, 1)] * N
    else:  # one host synchronisation, as the single join
        runs = [max(r, 1) for r in n_runs.max(1).values.tolist()]
    R = max(runs)
    rows = N * B
    dummy = rows * R
    flat = torch.where(valid, torch.arange(rows, device=device).view(N, B, 1) * R + run_idx.clamp(min=0),
                       torch.full_like(run_idx, dummy)).reshape(-1)
    counts = torch.zeros(rows * R + 1, device=device, dtype=logits.dtype).index_add_(
        0, flat, torch.ones(rows * T, device=device, dtype=logits.dtype))
    if draw is not None:
        pos = torch.arange(T, device=device).expand(rows, T).reshape(-1)
        starts = torch.zeros(rows * R + 1, device=device, dtype=torch.long).scatter_(
            0, torch.where(start.reshape(-1), flat, torch.full_like(flat, dummy)), pos)
        # member m's draw for its run r of utterance b is its u[b * R_m + r], as in its own join
        u = torch.zeros(N, B, R, device=device)
        for m, draws in enumerate(draw(runs)):
            u[m, :, :runs[m]] = draws[:B * runs[m]].view(B, runs[m])
        u = torch.cat([u.reshape(-1), u.new_zeros(1)])
        offset = (u * counts).long().clamp(max=(counts.long() - 1).clamp(min=0))
        chosen = (starts + offset)[:-1].view(N, B, R).clamp(max=T - 1)
        joined = torch.gather(logits, 2, chosen[..., None].expand(N, B, R, V))
    else:
        sums = torch.zeros(rows * R + 1, V, device=device, dtype=logits.dtype).index_add_(
            0, flat, logits.reshape(rows * T, V))
        joined = (sums[:-1] / counts[:-1, None].clamp(min=1)).view(N, B, R, V)
    joined_mask = torch.arange(R, device=device) >= n_runs[..., None]
    joined = joined.masked_fill(joined_mask[..., None], 0.0)
    return joined, joined_mask, runs


def stacked_gradient_penalty(params: StackedParams, cfg: DiscriminatorConfig, real: torch.Tensor, fake: torch.Tensor,
                             lengths: list[int], alpha: torch.Tensor, norm: str = "time",
                             detach: bool = True) -> torch.Tensor:
    """:func:`~wav2vec_u.models.losses.gradient_penalty` of every member -> (N,).

    real (N, B1, T1, V), fake (N, B2, T2, V); ``lengths``: each member's
    ``min(T1_m, T2_m)`` (the single penalty cuts both to the shorter one, so a member's
    interpolation has its own length; positions past it are padding here); alpha (N, b).
    """
    b = min(real.shape[1], fake.shape[1])
    t = max(lengths)
    real, fake = real[:, :b, :t], fake[:, :b, :t]
    beyond = torch.arange(t, device=real.device) >= torch.tensor(lengths, device=real.device)[:, None]  # (N, t)
    a = alpha.view(-1, b, 1, 1)
    interp = (a * real + (1 - a) * fake).masked_fill(beyond[:, None, :, None], 0.0)
    if detach or not interp.requires_grad:  # detach=False: G's gradients too (optim.clip_scope=both)
        interp = interp.detach().requires_grad_(True)
    mask = beyond[:, None, :].expand(-1, b, -1)
    scores = stacked_discriminator(params, cfg, interp, mask)
    (grad,) = torch.autograd.grad(scores, interp, grad_outputs=torch.ones_like(scores), create_graph=True)
    grad = grad.masked_fill(beyond[:, None, :, None], 0.0)
    if norm == "time":
        g = grad.norm(2, dim=2)  # (N, b, V)
    elif norm == "sample":
        g = grad.flatten(2).norm(2, dim=2)[..., None]  # (N, b, 1)
    else:
        raise ValueError(f"gradient penalty norm must be 'time' or 'sample', got {norm!r}")
    return ((g - 1) ** 2).sum((1, 2))
