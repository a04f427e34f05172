"""Assembly of the wav2vec-U GAN: generator + join + discriminator, and the two step losses.

The modules compute tensors; :func:`discriminator_step_loss` and :func:`generator_step_loss`
weight the terms of :mod:`wav2vec_u.models.losses` exactly as the reference does (B = batch
size of generated utterances); the trainer decides which optimiser steps::

    gan = Gan(input_dim=512, num_phones=41, gen_cfg=cfg.generator, disc_cfg=cfg.discriminator)
    loss, stats = discriminator_step_loss(gan, feats, feat_mask, tokens, token_mask, cfg.loss)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wav2vec_u.models.discriminator import Discriminator
from wav2vec_u.models.generator import Generator
from wav2vec_u.models.join import join_segments, reference_runs
from wav2vec_u.models.losses import (auxiliary_loss, code_penalty, discriminator_gan_loss, generator_gan_loss,
                                     gradient_penalty, smoothness_penalty)
from wav2vec_u.models.config import DiscriminatorConfig, GeneratorConfig, LossConfig


class Gan(nn.Module):
    def __init__(self, input_dim: int, num_phones: int, gen_cfg: GeneratorConfig, disc_cfg: DiscriminatorConfig):
        super().__init__()
        self.num_phones = num_phones
        self.generator = Generator(input_dim, num_phones, gen_cfg)
        self.discriminator = Discriminator(num_phones, disc_cfg)


@dataclass
class Generated:
    logits: torch.Tensor  # (B, T', V) before join
    padding_mask: torch.Tensor  # (B, T')
    joined: torch.Tensor  # (B, R, V)
    joined_mask: torch.Tensor  # (B, R)
    aux_logits: torch.Tensor | None = None  # (B, T, K) at the input rate: 2.0's auxiliary head


def generate(generator: Generator, feats: torch.Tensor, padding_mask: torch.Tensor,
             static_shape: bool = False) -> Generated:
    """Generator + join; join mode follows ``generator.training`` (random pick / mean)."""
    logits, mask, aux = generator.run(feats, padding_mask)
    joined, joined_mask = join_segments(logits, mask, training=generator.training, static_shape=static_shape)
    return Generated(logits, mask, joined, joined_mask, aux)


def fake_distributions(joined: torch.Tensor, joined_mask: torch.Tensor, cfg: GeneratorConfig) -> torch.Tensor:
    """What D sees of the generator: joined logits (B, R, V) -> distributions (B, R, V), zeros at padding.

    ``softmax`` is the reference. ``straight_through`` shows D the one-hot argmax (so D cannot
    tell generated from real by softness alone) while G gets the softmax's gradient;
    ``gumbel`` does the same on Gumbel-perturbed logits.
    """
    logits = joined.float() / cfg.temperature
    if cfg.output == "gumbel":
        x = F.gumbel_softmax(logits, tau=1.0, hard=True)
    else:
        x = torch.softmax(logits, -1)
        if cfg.output == "straight_through":
            hard = F.one_hot(x.argmax(-1), x.shape[-1]).to(x.dtype)
            x = hard + x - x.detach()
    return x.masked_fill(joined_mask[:, :, None], 0.0)


def real_distributions(tokens: torch.Tensor, padding_mask: torch.Tensor, num_phones: int,
                       smoothing: float = 0.0) -> torch.Tensor:
    """tokens (B, T) int phone ids, padding_mask (B, T) -> one-hot (B, T, V), zeros at padding."""
    x = F.one_hot(tokens.clamp(min=0), num_phones).float()
    if smoothing > 0:
        x = (1 - smoothing) * x + smoothing / num_phones
    return x.masked_fill(padding_mask[:, :, None], 0.0)


def discriminator_step_loss(gan: Gan, feats: torch.Tensor, feat_mask: torch.Tensor, tokens: torch.Tensor,
                            token_mask: torch.Tensor, cfg: LossConfig, static_shape: bool = False,
                            fake_grad: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """D step. ``fake_grad``: keep the generator in the graph (the reference does), so the loss also
    has gradients for G's weights (never stepped here; ``optim.clip_scope=both`` counts them in the
    clip norm). D's gradients are the same either way."""
    with torch.set_grad_enabled(fake_grad and torch.is_grad_enabled()):
        gen = generate(gan.generator, feats, feat_mask, static_shape)
    fake = fake_distributions(gen.joined, gen.joined_mask, gan.generator.cfg)
    real = real_distributions(tokens, token_mask, gan.num_phones, cfg.real_label_smoothing)
    d_fake = gan.discriminator(fake, gen.joined_mask)
    d_real = gan.discriminator(real, token_mask)
    loss_fake, loss_real = discriminator_gan_loss(d_fake, d_real)
    loss = loss_fake + loss_real
    stats = {"loss_dense_d": loss_fake.detach(), "loss_token_d": loss_real.detach()}
    if cfg.gradient_penalty > 0:
        gp = gradient_penalty(gan.discriminator, real, fake, norm=cfg.gp_norm, detach=not fake_grad)
        loss = loss + cfg.gradient_penalty * gp
        stats["grad_pen"] = gp.detach()
    stats["loss_d"] = loss.detach()
    return loss, stats


def generator_step_loss(gan: Gan, feats: torch.Tensor, feat_mask: torch.Tensor, cfg: LossConfig,
                        code_weight: float | None = None, static_shape: bool = False,
                        aux_targets: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """G step. ``aux_targets`` (B, T) k-means ids aligned with ``feats`` (-1: none) add 2.0's
    auxiliary loss, ``B * loss.aux_weight * auxiliary_loss`` (reference: mmi loss x B x mmi_weight)."""
    gen = generate(gan.generator, feats, feat_mask, static_shape)
    B = feats.shape[0]
    fake = fake_distributions(gen.joined, gen.joined_mask, gan.generator.cfg)
    d_fake = gan.discriminator(fake, gen.joined_mask)
    loss_g = generator_gan_loss(d_fake)
    if cfg.penalty_input == "joined":  # the reference: on the joined logits, its padding counted
        R = reference_runs(gen.joined_mask, gen.padding_mask)
        smooth = smoothness_penalty(gen.joined.float(), gen.joined_mask, length=R)
        code, ppl = code_penalty(gen.joined, gen.joined_mask, uniform_to=R)
    else:
        smooth = smoothness_penalty(gen.logits.float(), gen.padding_mask)
        code, ppl = code_penalty(gen.logits, gen.padding_mask)
    cw = cfg.code_penalty if code_weight is None else code_weight
    # reference: mean-reduced penalties are scaled by the batch size (the GAN loss is a sum)
    loss = loss_g + B * cfg.smoothness * smooth + B * cw * code
    stats = {"loss_dense_g": loss_g.detach(), "smoothness": smooth.detach(), "code_pen": code.detach(),
             "code_ppl": ppl.detach(), "loss_g": loss.detach()}
    if cfg.aux_weight > 0 and aux_targets is not None:
        if gen.aux_logits is None:
            raise ValueError("loss.aux_weight > 0 needs an auxiliary head: set generator.aux_classes (2.0: 64) "
                             "and generator.residual=true")
        aux = auxiliary_loss(gen.aux_logits, aux_targets.masked_fill(feat_mask, -1))
        loss = loss + B * cfg.aux_weight * aux
        stats.update(aux_loss=aux.detach(), loss_g=loss.detach())
    return loss, stats
