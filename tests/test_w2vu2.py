"""wav2vec-U 2.0: the generator's strided output and its lengths, BatchNorm over unpadded frames, the
auxiliary loss and its targets against numbers worked out by hand, and the clear error without targets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wav2vec_u.audio.features_io import align_targets
from wav2vec_u.config import ConfigError, load_config
from wav2vec_u.io import resource_path
from wav2vec_u.models.config import DiscriminatorConfig, GeneratorConfig, LossConfig
from wav2vec_u.models.gan import Gan, generator_step_loss
from wav2vec_u.models.generator import Generator
from wav2vec_u.models.losses import auxiliary_loss
from wav2vec_u.train.config import GanConfig
from wav2vec_u.train.run import train_gan
from toys import make_toy, write_toy

W2VU2 = resource_path("configs", "gan", "w2vu2.yaml")
V2 = GeneratorConfig(kernel=9, stride=3, batch_norm=True, residual=True, aux_classes=64)


def test_w2vu2_config_is_the_reference():
    cfg = load_config(GanConfig, W2VU2)
    g, d, loss, o = cfg.generator, cfg.discriminator, cfg.loss, cfg.optim
    assert (g.kernel, g.stride, g.batch_norm, g.batch_norm_weight, g.residual, g.aux_classes, g.dropout) == \
        (9, 3, True, 30.0, True, 64, 0.1)
    assert (d.kernel, d.dim, d.depth) == (8, 384, 2)
    assert (loss.smoothness, loss.gradient_penalty, loss.code_penalty, loss.aux_weight) == (1.5, 1.0, 3.0, 0.5)
    assert (o.lr_g, o.lr_d, o.weight_decay_d) == (5e-5, 3e-4, 1e-4)
    assert (cfg.data.aux_targets, cfg.data.aux_downsample, cfg.data.batch_size) == ("km", 2, 160)


def test_strided_output_lengths_worked_by_hand():
    """Kernel 9, padding 4, stride 3: a batch padded to T = 10 frames gives floor((10 + 8 - 9) / 3) + 1 = 4
    positions; an utterance of L frames has floor((L - 1) / 3) + 1 = ceil(L / 3) of them valid:
    L = 10 -> 4, 9 -> 3, 7 -> 3, 3 -> 1, 1 -> 1. The reference's mask ``mask[:, ::3]`` counts the same."""
    gen = Generator(6, 5, V2).eval()
    assert (gen.proj.kernel_size, gen.proj.stride, gen.proj.padding) == ((9,), (3,), (4,))
    lengths = torch.tensor([10, 9, 7, 3, 1])
    mask = torch.arange(10)[None] >= lengths[:, None]
    logits, out_mask, aux = gen.run(torch.randn(5, 10, 6), mask)
    assert logits.shape == (5, 4, 5) and aux.shape == (5, 10, 64)  # the auxiliary head stays at the input rate
    assert (~out_mask).sum(1).tolist() == [4, 3, 3, 1, 1]
    assert torch.equal(out_mask, mask[:, ::3])  # the reference's rule
    assert gen.output_lengths(torch.tensor([48, 49, 50, 51])).tolist() == [16, 17, 17, 17]  # 50 Hz -> ~16.7 Hz


def test_output_t_reads_frames_3t_minus_4_to_3t_plus_4():
    """Eval mode (BatchNorm uses its running statistics: a per-frame affine map), so changing frame 8
    of 12 changes exactly the outputs whose window [3t - 4, 3t + 4] holds it: t = 2 and 3."""
    torch.manual_seed(0)
    gen = Generator(4, 3, V2).eval()
    x = torch.randn(1, 12, 4)
    mask = torch.zeros(1, 12, dtype=torch.bool)
    a, _ = gen(x, mask)
    x2 = x.clone()
    x2[0, 8] += 5.0
    b, _ = gen(x2, mask)
    changed = ((a - b).abs().amax(-1) > 1e-6)[0].tolist()
    assert changed == [False, False, True, True]


def test_batch_norm_weight_30_and_statistics_over_unpadded_frames_only():
    gen = Generator(3, 4, V2)
    assert torch.all(gen.batch_norm.weight == 30.0) and torch.all(gen.batch_norm.bias == 0.0)
    x = torch.tensor([[[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [99.0, 99.0, 99.0]],
                      [[5.0, 0.0, 1.0], [7.0, 4.0, 1.0], [99.0, 99.0, 99.0]]])
    mask = torch.tensor([[False, False, True], [False, False, True]])  # the 99s are padding
    gen.train()
    gen.run(x, mask)
    # running mean after one step = 0.1 x the mean of the 4 unpadded frames: (4, 2, 1.5) -> (0.4, 0.2, 0.15)
    assert torch.allclose(gen.batch_norm.running_mean, torch.tensor([0.4, 0.2, 0.15]))


def test_padded_batch_equals_each_utterance_alone():
    torch.manual_seed(1)
    gen = Generator(5, 7, V2)
    gen.train()
    gen.run(torch.randn(4, 20, 5), torch.zeros(4, 20, dtype=torch.bool))  # some running statistics
    gen.eval()
    lengths = [20, 13, 8]
    x = torch.randn(3, 20, 5)
    mask = torch.arange(20)[None] >= torch.tensor(lengths)[:, None]
    logits, out_mask = gen(x, mask)
    for b, n in enumerate(lengths):
        alone, _ = gen(x[b:b + 1, :n], torch.zeros(1, n, dtype=torch.bool))
        m = math.ceil(n / 3)
        assert alone.shape[1] == m and torch.allclose(alone[0], logits[b, :m], atol=1e-4)


def test_aux_head_needs_the_residual_block():
    with pytest.raises(ValueError, match="residual"):
        Generator(4, 3, GeneratorConfig(aux_classes=64))


def test_auxiliary_loss_worked_by_hand():
    """Two classes, three positions: logits (0, 0) with target 0 cost ln 2; (ln 3, 0) with target 0
    costs -ln(3/4); the third is ignored (-1) and counts 0 in the mean over all 3 positions, as the
    reference reduces it: (ln 2 + ln 4/3) / 3 = ln(8/3) / 3 = 0.326943."""
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0], [5.0, -5.0]]])
    targets = torch.tensor([[0, 0, -1]])
    assert auxiliary_loss(logits, targets).item() == pytest.approx(math.log(8 / 3) / 3, abs=1e-6)
    assert math.log(8 / 3) / 3 == pytest.approx(0.326943, abs=1e-6)


def test_generator_step_adds_b_times_weight_times_aux_loss():
    torch.manual_seed(0)
    gan = Gan(6, 5, V2, DiscriminatorConfig(dim=8, kernel=8))
    feats = torch.randn(2, 9, 6)
    mask = torch.arange(9)[None] >= torch.tensor([9, 6])[:, None]
    targets = torch.randint(0, 64, (2, 9))
    cfg = LossConfig(aux_weight=0.5)
    loss, stats = generator_step_loss(gan, feats, mask, cfg, aux_targets=targets)
    base = stats["loss_dense_g"] + 2 * cfg.smoothness * stats["smoothness"] + 2 * cfg.code_penalty * stats["code_pen"]
    assert torch.allclose(stats["loss_g"], base + 2 * 0.5 * stats["aux_loss"])
    loss.backward()
    assert gan.generator.aux_head.weight.grad is not None and gan.generator.aux_head.weight.grad.abs().sum() > 0


def test_targets_are_decimated_to_the_feature_rate():
    """ids at 100 Hz, features at 50 Hz: every 2nd id, cut or padded with -1 to the utterance."""
    ids = [np.array([5, 5, 6, 6, 7, 7, 8]), np.array([1, 2, 3, 4])]
    out = align_targets(ids, [4, 3], downsample=2)
    assert out.tolist() == [5, 6, 7, 8, 1, 3, -1]
    with pytest.raises(ValueError, match="line 1: 7 ids.*gives 4 frames.*has 9 feature frames"):
        align_targets(ids[:1], [9], downsample=2, source="train.km")
    with pytest.raises(ValueError, match="1 lines for 2 utterances"):
        align_targets(ids[:1], [4, 3], downsample=2)


@pytest.fixture(scope="module")
def frame_toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("frame_toy")
    toy = make_toy(num_phones=8, dim=8, num_train=60, num_valid=20, num_text=200, frames_per_phone=4.0,
                   target_classes=16, seed=3)
    write_toy(toy, root / "feats", root / "text")
    return root


TINY = ["data.batch_size=8", "discriminator.dim=8", "generator.aux_classes=16", "trainer.max_updates=4",
        "trainer.validate_every=2", "trainer.save_every=2", "trainer.progress=false"]


def test_without_targets_2_0_data_fails_naming_the_file_and_the_command(frame_toy, tmp_path):
    (frame_toy / "feats" / "train.km").rename(tmp_path / "train.km")
    try:
        cfg = load_config(GanConfig, W2VU2, [f"data.features={frame_toy / 'feats'}",
                                             f"data.text={frame_toy / 'text'}", *TINY])
        with pytest.raises(FileNotFoundError) as err:
            train_gan(cfg, tmp_path / "run")
        msg = str(err.value)
        assert str(frame_toy / "feats" / "train.km") in msg
        assert "w2vu prepare-audio" in msg and "prepare_w2vu2.yaml" in msg and "loss.aux_weight=0" in msg
        assert not (tmp_path / "run" / "last.pt").exists()
    finally:
        (tmp_path / "train.km").rename(frame_toy / "feats" / "train.km")


def test_mismatched_settings_fail_before_training(frame_toy, tmp_path):
    base = [f"data.features={frame_toy / 'feats'}", f"data.text={frame_toy / 'text'}", *TINY]
    with pytest.raises(ConfigError, match="data.aux_targets"):
        train_gan(load_config(GanConfig, W2VU2, [*base, "data.aux_targets="]), tmp_path / "a")
    with pytest.raises(ConfigError, match="up to 1[0-5], but generator.aux_classes is 4"):
        train_gan(load_config(GanConfig, W2VU2, [*base, "generator.aux_classes=4"]), tmp_path / "b")


def test_2_0_trains_from_the_reference_layout_and_round_trips_its_config(frame_toy, tmp_path):
    """fairseq's 2.0 layout: {split}.npy/.lengths frame features with train.km beside them, no
    segment folder; the resolved config goes into the checkpoint and loads back unchanged."""
    from wav2vec_u.train.checkpoint import load_checkpoint, load_generator

    cfg = load_config(GanConfig, W2VU2, [f"data.features={frame_toy / 'feats'}", f"data.text={frame_toy / 'text'}",
                                         *TINY])
    summary = train_gan(cfg, tmp_path / "run")
    assert summary["step"] == 4
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert "features/train.km" in state["lineage"]["inputs"]
    gen, phones, loaded = load_generator(tmp_path / "run" / "last.pt")
    assert loaded == cfg and gen.cfg.stride == 3 and gen.batch_norm is not None and not gen.training
    rows = [json for json in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if "aux_loss" in json]
    assert rows, "the auxiliary loss is logged"
