"""Generator and discriminator: the reference layout, shapes, masks, causality, padding."""

import torch

from wav2vec_u.models.discriminator import Discriminator
from wav2vec_u.models.gan import Gan, discriminator_step_loss, generator_step_loss
from wav2vec_u.models.generator import Generator
from wav2vec_u.models.config import DiscriminatorConfig, GeneratorConfig, LossConfig


def test_generator_reference_layout_and_lengths():
    gen = Generator(16, 5, GeneratorConfig())
    conv = gen.proj
    assert conv.kernel_size == (4,) and conv.stride == (1,) and conv.padding == (2,) and conv.bias is None
    assert gen.dropout.p == 0.1
    gen.eval()
    x = torch.randn(3, 7, 16)
    lengths = torch.tensor([7, 5, 1])
    mask = torch.arange(7)[None] >= lengths[:, None]
    logits, out_mask = gen(x, mask)
    assert logits.shape == (3, 8, 5)
    assert ((~out_mask).sum(1) == lengths + 1).all()  # kernel 4, padding 2: L + 1 outputs
    # padding never leaks into valid outputs: each utterance alone gives the same logits
    for b in range(3):
        n = int(lengths[b])
        alone, _ = gen(x[b:b + 1, :n], torch.zeros(1, n, dtype=torch.bool))
        assert torch.allclose(alone[0], logits[b, : n + 1], atol=1e-5)


def test_generator_2_0_options_build():
    cfg = GeneratorConfig(kernel=9, stride=3, batch_norm=True, residual=True)
    gen = Generator(8, 4, cfg)
    assert torch.all(gen.batch_norm.weight == 30.0)
    logits, mask = gen(torch.randn(2, 30, 8), torch.zeros(2, 30, dtype=torch.bool))
    assert logits.shape == (2, 10, 4) and not mask.any()


def test_discriminator_layout_is_causal_and_masks_padding():
    disc = Discriminator(5, DiscriminatorConfig())
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [c.kernel_size[0] for c in convs] == [6, 6, 6]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(5, 384), (384, 384), (384, 1)]
    assert sum(isinstance(m, torch.nn.GELU) for m in disc.modules()) == 1
    x = torch.softmax(torch.randn(2, 9, 5), -1)
    # causal: changing position 6 does not change the per-position outputs before it
    y1 = disc.net(x.transpose(1, 2))[0, 0]
    x2 = x.clone()
    x2[:, 6] = torch.rand(5)
    y2 = disc.net(x2.transpose(1, 2))[0, 0]
    assert torch.allclose(y1[:6], y2[:6]) and not torch.allclose(y1[6:], y2[6:])
    # masked mean: a padded batch scores each utterance as if alone
    mask = torch.tensor([[False] * 9, [False] * 4 + [True] * 5])
    scores = disc(x, mask)
    alone = disc(x[1:, :4], torch.zeros(1, 4, dtype=torch.bool))
    assert scores.shape == (2,) and torch.allclose(scores[1], alone[0], atol=1e-6)


def test_step_losses_train_only_their_model():
    torch.manual_seed(0)
    gan = Gan(8, 6, GeneratorConfig(), DiscriminatorConfig(dim=16))
    feats = torch.randn(4, 10, 8)
    fmask = torch.arange(10)[None] >= torch.tensor([10, 8, 6, 3])[:, None]
    tokens = torch.randint(0, 6, (5, 7))
    tmask = torch.arange(7)[None] >= torch.tensor([7, 7, 5, 4, 2])[:, None]
    loss, stats = discriminator_step_loss(gan, feats, fmask, tokens, tmask, LossConfig())
    loss.backward()
    assert all(p.grad is None for p in gan.generator.parameters())
    assert all(p.grad is not None for p in gan.discriminator.parameters())
    assert {"loss_dense_d", "loss_token_d", "grad_pen"} <= set(stats)
    gan.zero_grad(set_to_none=True)
    loss, stats = generator_step_loss(gan, feats, fmask, LossConfig())
    loss.backward()
    assert all(p.grad is not None for p in gan.generator.parameters())
    # weights as the reference: GAN sum + B * 0.5 * smoothness + B * 4.0 * code penalty
    expect = stats["loss_dense_g"] + 4 * 0.5 * stats["smoothness"] + 4 * 4.0 * stats["code_pen"]
    assert torch.allclose(stats["loss_g"], expect)
