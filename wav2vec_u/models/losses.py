"""The wav2vec-U losses as plain functions, each with documented shapes and reductions.

The reference (fairseq ``wav2vec_u.py``) sums the GAN losses over the batch and scales the
mean-reduced penalties by the batch size ``B``; the training step does that weighting
(``wav2vec_u.models.gan``), these functions return the unweighted terms::

    loss_fake, loss_real = discriminator_gan_loss(d_fake, d_real)   # D step
    loss_g = generator_gan_loss(d_fake)                              # G step
    gp = gradient_penalty(disc, real, fake)                          # D step, x 1.5
    smooth = smoothness_penalty(logits, mask)                        # G step, x B x 0.5
    code, ppl = code_penalty(logits, mask)                           # G step, x B x 4.0
    aux = auxiliary_loss(aux_logits, targets)                        # G step, x B x 0.5 (2.0 only)

Label convention (as the reference): D is trained to output 1 for *generated* and 0 for
*real* text; G is trained to make D output 0 on generated. This is the usual convention with
the sign flipped; the optimum is the same.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def discriminator_gan_loss(d_fake: torch.Tensor, d_real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """d_fake (B,), d_real (B2,) logits -> (sum BCE(d_fake, 1), sum BCE(d_real, 0))."""
    loss_fake = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake), reduction="sum")
    loss_real = F.binary_cross_entropy_with_logits(d_real, torch.zeros_like(d_real), reduction="sum")
    return loss_fake, loss_real


def generator_gan_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """d_fake (B,) logits -> sum BCE(d_fake, 0): G wants D to call its output real."""
    return F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake), reduction="sum")


def gradient_penalty(discriminator: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
                     real: torch.Tensor, fake: torch.Tensor, norm: str = "time",
                     alpha: torch.Tensor | None = None, detach: bool = True) -> torch.Tensor:
    """Gradient penalty on interpolations of real (B1, T1, V) and fake (B2, T2, V) inputs.

    Both are cut to the smaller batch and time sizes; one ``alpha`` ~ U(0, 1) per utterance
    (shape (B,)); D runs on the interpolation with no padding mask. ``norm="time"`` is the
    reference's form: the gradient's 2-norm over the *time* axis, one term (‖g‖ − 1)² per
    utterance and phone, all summed. ``norm="sample"`` is textbook WGAN-GP: the norm over the
    whole sample, one term per utterance, summed. Returns a scalar (not yet weighted).
    ``detach=False`` keeps the interpolation attached to ``fake``'s graph (the reference's form), so
    the penalty also has gradients for the generator; D's gradients are the same either way.
    """
    b = min(real.shape[0], fake.shape[0])
    t = min(real.shape[1], fake.shape[1])
    real, fake = real[:b, :t], fake[:b, :t]
    if alpha is None:
        alpha = torch.rand(b, device=real.device, dtype=real.dtype)
    alpha = alpha.view(b, 1, 1)
    interp = alpha * real + (1 - alpha) * fake
    if detach or not interp.requires_grad:
        interp = interp.detach().requires_grad_(True)
    scores = discriminator(interp, None)
    (grad,) = torch.autograd.grad(scores, interp, grad_outputs=torch.ones_like(scores), create_graph=True)
    if norm == "time":
        g = grad.norm(2, dim=1)  # (B, V)
    elif norm == "sample":
        g = grad.flatten(1).norm(2, dim=1)  # (B,)
    else:
        raise ValueError(f"gradient penalty norm must be 'time' or 'sample', got {norm!r}")
    return ((g - 1) ** 2).sum()


def smoothness_penalty(logits: torch.Tensor, padding_mask: torch.Tensor,
                       length: torch.Tensor | int | None = None) -> torch.Tensor:
    """Mean squared difference of consecutive logits. logits (B, T, V), padding_mask (B, T).

    Differences whose later position is padding are zeroed; the mean runs over all
    B x (T-1) x V entries (zeros included), as the reference computes it. ``length``: divide by
    B x (length - 1) x V instead, as if the tensor were padded (or cut) to ``length`` positions
    (the reference's joined length, :func:`~wav2vec_u.models.join.reference_runs`); then leading
    dimensions are allowed (logits (..., B, T, V), ``length`` (...): one penalty per leading index,
    the stacked sweep's members).
    """
    diff = (logits[..., 1:, :] - logits[..., :-1, :]) ** 2
    diff = diff.masked_fill(padding_mask[..., 1:, None], 0.0)
    if length is None:
        return diff.mean()
    B, _, V = logits.shape[-3:]
    return diff.sum((-3, -2, -1)) / (B * V * (torch.as_tensor(length, device=logits.device) - 1).clamp(min=1))


def code_penalty(logits: torch.Tensor, padding_mask: torch.Tensor,
                 uniform_to: torch.Tensor | int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(V − perplexity of the batch-averaged softmax) / V over unpadded positions.

    logits (B, T, V), padding_mask (B, T). Returns (penalty, perplexity): penalty is 0 when the
    batch uses all V phones equally, (V − 1) / V when it uses one. ``uniform_to``: average over
    B x ``uniform_to`` positions instead, the padded ones counted as the uniform distribution (the
    reference's form on joined logits, whose padding is zero logits); then leading dimensions are
    allowed as in :func:`smoothness_penalty` (``uniform_to`` (...), one result per leading index).
    """
    V = logits.shape[-1]
    probs = torch.softmax(logits.float(), dim=-1)
    valid = (~padding_mask).to(probs.dtype)[..., None]
    if uniform_to is None:
        avg = (probs * valid).sum((0, 1)) / valid.sum().clamp(min=1)
    else:
        B = logits.shape[-3]
        total = B * torch.as_tensor(uniform_to, device=probs.device, dtype=probs.dtype)[..., None]
        avg = ((probs * valid).sum((-3, -2)) + (total - valid.sum((-3, -2))) / V) / total.clamp(min=1)
    ppl = torch.exp(-(avg * torch.log(avg + 1e-7)).sum(-1))
    return (V - ppl) / V, ppl


def auxiliary_loss(aux_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """wav2vec-U 2.0's auxiliary loss: cross-entropy of the generator's auxiliary head against
    k-means ids of MFCC frames, at the generator's input frame rate.

    aux_logits (B, T, K); targets (B, T) int class ids, ``-1`` where there is none (padding).
    Returns the mean over all B x T positions with the ignored ones counted as 0, as the
    reference reduces it (``cross_entropy(..., ignore_index=-1, reduction="none").mean()``).
    """
    assert aux_logits.dim() == 3 and targets.shape == aux_logits.shape[:2], (aux_logits.shape, targets.shape)
    ce = F.cross_entropy(aux_logits.float().transpose(1, 2), targets.long(), ignore_index=-1, reduction="none")
    return ce.mean()
