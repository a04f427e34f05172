"""Each GAN loss against a value worked out by hand on a small input."""

import math

import pytest
import torch

from wav2vec_u.models.losses import (code_penalty, discriminator_gan_loss, generator_gan_loss,
                                     gradient_penalty, smoothness_penalty)


def test_discriminator_gan_loss_sums_bce_with_flipped_labels():
    # D is trained toward 1 on generated, 0 on real (reference convention).
    # BCE(x, 1) = log(1 + e^-x); BCE(x, 0) = log(1 + e^x).
    d_fake = torch.tensor([0.0, math.log(3.0)])
    d_real = torch.tensor([math.log(3.0)])
    fake, real = discriminator_gan_loss(d_fake, d_real)
    assert fake.item() == pytest.approx(math.log(2) + math.log(4 / 3), rel=1e-6)
    assert real.item() == pytest.approx(math.log(4), rel=1e-6)


def test_generator_gan_loss_pushes_generated_toward_zero():
    d_fake = torch.tensor([math.log(3.0), -math.log(3.0)])
    # log(1 + 3) + log(1 + 1/3)
    assert generator_gan_loss(d_fake).item() == pytest.approx(math.log(4) + math.log(4 / 3), rel=1e-6)


def test_smoothness_penalty_by_hand():
    logits = torch.tensor([[[0.0], [1.0], [3.0]]])  # (1, 3, 1)
    none = torch.zeros(1, 3, dtype=torch.bool)
    assert smoothness_penalty(logits, none).item() == pytest.approx((1 + 4) / 2)
    # last position padded: its difference is zeroed but still counts in the mean
    pad = torch.tensor([[False, False, True]])
    assert smoothness_penalty(logits, pad).item() == pytest.approx((1 + 0) / 2)


def test_code_penalty_by_hand():
    big = 30.0
    # V = 2; three positions say phone 0, one says phone 1 -> batch average (0.75, 0.25)
    logits = torch.tensor([[[big, 0], [big, 0], [big, 0], [0, big]]])
    pen, ppl = code_penalty(logits, torch.zeros(1, 4, dtype=torch.bool))
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert ppl.item() == pytest.approx(math.exp(h), rel=1e-5)
    assert pen.item() == pytest.approx((2 - math.exp(h)) / 2, rel=1e-4)
    # padding is ignored: mask the last position -> all phone 0 -> perplexity 1 -> (V-1)/V
    pen, ppl = code_penalty(logits, torch.tensor([[False, False, False, True]]))
    assert ppl.item() == pytest.approx(1.0, abs=1e-4)
    assert pen.item() == pytest.approx(0.5, abs=1e-4)
    # uniform use of all phones costs nothing
    pen, _ = code_penalty(torch.zeros(2, 5, 7), torch.zeros(2, 5, dtype=torch.bool))
    assert pen.item() == pytest.approx(0.0, abs=1e-5)


def _linear_disc(w):
    # D(x) = sum_t sum_c w_c x[t, c]: dD/dx[t, c] = w_c everywhere
    return lambda x, mask: (x * w).sum((1, 2))


def test_gradient_penalty_time_norm_by_hand():
    w = torch.tensor([0.5, 1.0])
    real = torch.rand(3, 4, 2)
    fake = torch.rand(5, 6, 2)  # cut to the smaller batch (3) and time (4)
    # norm over time of a constant w_c over T=4 positions: 2 |w_c| -> (1-1)^2 + (2-1)^2 = 1 per utterance
    gp = gradient_penalty(_linear_disc(w), real, fake, norm="time")
    assert gp.item() == pytest.approx(3 * 1.0, rel=1e-5)


def test_gradient_penalty_sample_norm_by_hand():
    w = torch.tensor([0.5, 1.0])
    real, fake = torch.rand(3, 4, 2), torch.rand(3, 4, 2)
    # norm over the whole sample: sqrt(4 * (0.25 + 1)) = sqrt(5)
    gp = gradient_penalty(_linear_disc(w), real, fake, norm="sample")
    assert gp.item() == pytest.approx(3 * (math.sqrt(5) - 1) ** 2, rel=1e-5)


def test_gradient_penalty_interpolates_per_utterance_and_is_differentiable():
    seen = {}

    def disc(x, mask):
        assert mask is None  # the reference runs D on interpolations without a padding mask
        seen["x"] = x
        return (x**2).sum((1, 2))

    real, fake = torch.ones(2, 3, 2), torch.zeros(2, 3, 2)
    alpha = torch.tensor([0.25, 0.5])
    w = torch.tensor(1.0, requires_grad=True)
    gp = gradient_penalty(lambda x, m: w * disc(x, m), real, fake, alpha=alpha)
    assert torch.allclose(seen["x"][0], torch.full((3, 2), 0.25))
    assert torch.allclose(seen["x"][1], torch.full((3, 2), 0.5))
    # grad = 2 w x; time norm = 2 w a sqrt(3) -> penalty sum over 2 phones per utterance
    expect = sum(2 * (2 * a * math.sqrt(3) - 1) ** 2 for a in (0.25, 0.5))
    assert gp.item() == pytest.approx(expect, rel=1e-5)
    gp.backward()  # create_graph: the penalty trains D
    assert w.grad is not None and w.grad.abs().item() > 0


def test_gradient_penalty_rejects_unknown_norm():
    with pytest.raises(ValueError, match="norm"):
        gradient_penalty(_linear_disc(torch.ones(2)), torch.rand(1, 2, 2), torch.rand(1, 2, 2), norm="bogus")
