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
from wav2vec_u.config import ConfigError
from wav2vec_u.tokens import PAD_INDEX


def check_padding(gen_cfg: GeneratorConfig, disc_cfg: DiscriminatorConfig) -> int | None:
    """The output where padded real text is one-hot (None: zeros there); refuses a config without that output."""
    if disc_cfg.padding != "reference":
        return None
    if gen_cfg.special_outputs <= PAD_INDEX:
        raise ConfigError(f"discriminator.padding=reference puts padded text at fairseq's pad output (index "
                          f"{PAD_INDEX}), which needs generator.special_outputs >= {PAD_INDEX + 1} (the reference: "
                          f"4); it is {gen_cfg.special_outputs}", key="discriminator.padding")
    return PAD_INDEX


class Gan(nn.Module):
    """``num_outputs``: the generator's outputs, ``len(tokens.output_symbols(phones, gen_cfg.special_outputs))``;
    real text ids (dict.phn.txt order) are shifted past the specials (``first_phone``)."""

    def __init__(self, input_dim: int, num_outputs: int, gen_cfg: GeneratorConfig, disc_cfg: DiscriminatorConfig):
        super().__init__()
        if num_outputs <= gen_cfg.special_outputs:
            raise ValueError(f"{num_outputs} outputs leave no phone after generator.special_outputs = "
                             f"{gen_cfg.special_outputs}")
        self.num_outputs = num_outputs
        self.first_phone = gen_cfg.special_outputs
        self.pad_index = check_padding(gen_cfg, disc_cfg)
        self.generator = Generator(input_dim, num_outputs, gen_cfg)
        self.discriminator = Discriminator(num_outputs, disc_cfg)


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


def fake_distributions(joined: torch.Tensor, joined_mask: torch.Tensor, cfg: GeneratorConfig,
                       padding: str = "zeros") -> torch.Tensor:
    """What D sees of the generator: joined logits (..., R, V) -> distributions (..., R, V).

    ``softmax`` is the reference. ``straight_through`` shows D the one-hot argmax (so D cannot
    tell generated from real by softness alone) while G gets the softmax's gradient;
    ``gumbel`` does the same on Gumbel-perturbed logits. Padded positions: zeros, or with
    ``padding="reference"`` the uniform 1/V (the softmax of the reference's zero logits there), whatever the output.
    """
    logits = joined.float() / cfg.temperature
    if cfg.output == "gumbel":
        x = F.gumbel_softmax(logits, tau=1.0, hard=True)
    else:
        x = torch.softmax(logits, -1)
        if cfg.output == "straight_through":
            hard = F.one_hot(x.argmax(-1), x.shape[-1]).to(x.dtype)
            x = hard + x - x.detach()
    return x.masked_fill(joined_mask[..., None], 1.0 / x.shape[-1] if padding == "reference" else 0.0)


def real_distributions(tokens: torch.Tensor, padding_mask: torch.Tensor, num_outputs: int,
                       smoothing: float | torch.Tensor = 0.0, first_phone: int = 0,
                       pad_index: int | None = None) -> torch.Tensor:
    """tokens (..., T) phone ids in dict.phn.txt order, padding_mask (..., T) -> one-hot (..., T, V) at output
    ``first_phone + id`` (past the special outputs). Padded positions: zeros, or one-hot at ``pad_index`` (the
    reference's padded text). ``smoothing`` (a number, or per-row values broadcastable to (..., 1, 1)) mixes the
    unpadded rows with the uniform over all V outputs."""
    ids = (tokens.clamp(min=0) + first_phone).masked_fill(padding_mask, 0)
    x = F.one_hot(ids, num_outputs).float()
    if isinstance(smoothing, torch.Tensor) or smoothing > 0:
        x = (1 - smoothing) * x + smoothing / num_outputs
    x = x.masked_fill(padding_mask[..., None], 0.0)
    if pad_index is not None:
        x = x + padding_mask[..., None].to(x.dtype) * F.one_hot(torch.tensor(pad_index), num_outputs).to(x)
    return x


def reference_length(fake: torch.Tensor, fake_mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Generated distributions (..., R, V) and their mask (..., R) extended with uniform, padded positions to
    ``length`` (the reference's joined length, :func:`~wav2vec_u.models.join.reference_runs`, at most R + 1)."""
    extra = length - fake.shape[-2]
    if extra <= 0:
        return fake, fake_mask
    V = fake.shape[-1]
    fake = torch.cat([fake, fake.new_full((*fake.shape[:-2], extra, V), 1.0 / V)], -2)
    fake_mask = torch.cat([fake_mask, fake_mask.new_ones((*fake_mask.shape[:-1], extra))], -1)
    return fake, fake_mask


def discriminator_input(gan: Gan, gen: Generated, static_shape: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """What D reads of a generated batch: (distributions (B, R', V), padding mask (B, R')).

    discriminator.padding=reference: uniform at padding, and (without static shapes, one host synchronisation)
    one more padded position where the reference's joined length is one longer than ours."""
    padding = gan.discriminator.cfg.padding
    fake = fake_distributions(gen.joined, gen.joined_mask, gan.generator.cfg, padding)
    mask = gen.joined_mask
    if padding == "reference" and not static_shape:
        fake, mask = reference_length(fake, mask, int(reference_runs(gen.joined_mask, gen.padding_mask)))
    return fake, mask


def discriminator_step_loss(gan: Gan, feats: torch.Tensor, feat_mask: torch.Tensor, tokens: torch.Tensor,
                            token_mask: torch.Tensor, cfg: LossConfig, static_shape: bool = False,
                            fake_grad: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """D step. ``fake_grad``: keep the generator in the graph (the reference does), so the loss also
    has gradients for G's weights (never stepped here; ``optim.clip_scope=both`` counts them in the
    clip norm). D's gradients are the same either way."""
    with torch.set_grad_enabled(fake_grad and torch.is_grad_enabled()):
        gen = generate(gan.generator, feats, feat_mask, static_shape)
    fake, fake_mask = discriminator_input(gan, gen, static_shape)
    real = real_distributions(tokens, token_mask, gan.num_outputs, cfg.real_label_smoothing, gan.first_phone,
                              gan.pad_index)
    d_fake = gan.discriminator(fake, fake_mask)
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
    fake, fake_mask = discriminator_input(gan, gen, static_shape)
    d_fake = gan.discriminator(fake, fake_mask)
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
