"""Join consecutive generator outputs that predict the same phone, without a loop over the batch.

wav2vec-U (paper Sec. 4.2) merges consecutive segments whose argmax phone is the same into
one output: in training one random position of each run is kept (so gradients reach every
segment over time), in evaluation the run's logits are averaged. Padding stays masked::

    joined, joined_mask = join_segments(logits, padding_mask, training=True)
    # logits (B, T, V), padding_mask (B, T) True at padding -> joined (B, R, V), mask (B, R)

``R`` is the largest number of runs in the batch (one host synchronisation), or ``T`` with
``static_shape=True`` (no synchronisation, for CUDA graphs / torch.compile).
"""

from __future__ import annotations

import torch


def reference_runs(joined_mask: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
    """The joined length R the reference pads its joined logits to: joined_mask (..., B, R), the
    generator's padding_mask (..., B, T) -> (...) integer tensor (a scalar for one batch).

    The reference counts the runs of each utterance with its padded tail marked as one more run
    (then dropped), so R = max over b of (runs_b + 1 if utterance b is shorter than the batch's
    longest else runs_b): one more than our R when the utterance with the most runs is padded.
    Computed on the device (no host synchronisation), valid with static shapes too.
    """
    runs = (~joined_mask).sum(-1)
    lengths = (~padding_mask).sum(-1)
    padded = lengths < lengths.max(-1, keepdim=True).values
    return (runs + padded.long()).max(-1).values


def join_segments(logits: torch.Tensor, padding_mask: torch.Tensor, training: bool,
                  static_shape: bool = False, generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge runs of equal argmax. logits (B, T, V); padding_mask (B, T), True at padded positions.

    Returns ``(joined (B, R, V), joined_padding_mask (B, R))``; run ``r`` of utterance ``b`` is
    ``joined[b, r]`` (runs keep their order), positions ``r >= runs_b`` are padding (zeros).
    """
    assert logits.dim() == 3 and padding_mask.shape == logits.shape[:2], (logits.shape, padding_mask.shape)
    B, T, V = logits.shape
    device = logits.device
    valid = ~padding_mask
    preds = logits.detach().argmax(-1)
    same_as_prev = torch.zeros_like(valid)
    same_as_prev[:, 1:] = (preds[:, 1:] == preds[:, :-1]) & valid[:, :-1]
    start = valid & ~same_as_prev  # first position of each run
    run_idx = torch.cumsum(start.long(), dim=1) - 1  # (B, T) run of each position
    n_runs = start.sum(1)  # (B,)
    R = int(n_runs.max().item()) if not static_shape else T
    R = max(R, 1)
    dummy = B * R  # invalid positions are sent to one extra row, dropped at the end
    flat = torch.where(valid, torch.arange(B, device=device)[:, None] * R + run_idx.clamp(min=0),
                       torch.full_like(run_idx, dummy)).reshape(-1)
    counts = torch.zeros(B * R + 1, device=device, dtype=logits.dtype).index_add_(
        0, flat, torch.ones(B * T, device=device, dtype=logits.dtype))
    if training:
        # Start and length of every run; keep start + floor(u * length), u ~ U[0, 1).
        pos = torch.arange(T, device=device).expand(B, T).reshape(-1)
        starts = torch.zeros(B * R + 1, device=device, dtype=torch.long).scatter_(
            0, torch.where(start.reshape(-1), flat, torch.full_like(flat, dummy)), pos)
        u = torch.rand(B * R + 1, device=device, generator=generator)
        offset = (u * counts).long().clamp(max=(counts.long() - 1).clamp(min=0))
        chosen = (starts + offset)[:-1].view(B, R).clamp(max=T - 1)
        joined = torch.gather(logits, 1, chosen[:, :, None].expand(B, R, V))
    else:
        sums = torch.zeros(B * R + 1, V, device=device, dtype=logits.dtype).index_add_(
            0, flat, logits.reshape(B * T, V))
        joined = (sums[:-1] / counts[:-1, None].clamp(min=1)).view(B, R, V)
    joined_mask = torch.arange(R, device=device)[None, :] >= n_runs[:, None]
    joined = joined.masked_fill(joined_mask[:, :, None], 0.0)
    return joined, joined_mask
