"""The GAN generator's warm start: rows copied by symbol name, <SIL> from the CTC blank, others fresh."""

from __future__ import annotations

import pytest
import torch

from wav2vec_u.models.config import GeneratorConfig
from wav2vec_u.models.generator import Generator
from wav2vec_u.train.warm_start import BLANK, apply_generator_init, write_generator_init


def test_rows_are_copied_by_name_and_sil_takes_the_blank(tmp_path):
    torch.manual_seed(0)
    cfg = GeneratorConfig()
    ctc = Generator(5, 3, cfg)                       # CTC outputs: blank, a, b
    write_generator_init(tmp_path / "init.pt", ctc, [BLANK, "a", "b"])
    gan = Generator(5, 4, cfg)                       # GAN outputs: <SIL>, b, c, a
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    counts = apply_generator_init(gan, tmp_path / "init.pt", ["<SIL>", "b", "c", "a"])
    assert counts == {"by_name": 2, "from_blank": 1, "fresh": 1}
    (name, w_ctc), = [(k, v) for k, v in ctc.state_dict().items() if v.shape[0] == 3]
    w_gan = gan.state_dict()[name]
    assert torch.equal(w_gan[0], w_ctc[0]) and torch.equal(w_gan[1], w_ctc[2]) and torch.equal(w_gan[3], w_ctc[1])
    assert torch.equal(w_gan[2], before[name][2])    # "c" was never labelled: its fresh row stays


def test_an_init_for_other_features_is_refused(tmp_path):
    write_generator_init(tmp_path / "init.pt", Generator(5, 3, GeneratorConfig()), [BLANK, "a", "b"])
    with pytest.raises(ValueError, match="other features"):
        apply_generator_init(Generator(7, 3, GeneratorConfig()), tmp_path / "init.pt", ["<SIL>", "a", "b"])


def test_the_trainer_starts_its_generator_from_an_init_and_records_it(tmp_path):
    from wav2vec_u.config import apply_overrides, from_dict
    from wav2vec_u.train.config import GanConfig
    from wav2vec_u.train.data import FeatureSet, TextSet
    from wav2vec_u.train.trainer import GanTrainer
    from toys import make_toy, write_toy

    toy = make_toy(num_phones=4, dim=8, noise=0.3, num_train=10, num_valid=5, num_text=50, seed=3)
    write_toy(toy, tmp_path / "feats", tmp_path / "text")
    train = FeatureSet.from_dir(tmp_path / "feats", "train")
    text = TextSet.from_file(tmp_path / "text" / "phones.txt", toy.phones)
    torch.manual_seed(5)
    ctc = Generator(train.dim, len(toy.phones) + 1, GeneratorConfig())
    init = write_generator_init(tmp_path / "init.pt", ctc, [BLANK, *toy.phones])

    def trainer(name, *overrides):
        cfg = from_dict(GanConfig, apply_overrides({}, ["discriminator.dim=8", *overrides]))
        return GanTrainer(cfg, tmp_path / name, train, text, toy.phones)

    warm, cold = trainer("warm", f"trainer.init_generator={init}"), trainer("cold")
    src = {k: v for k, v in ctc.state_dict().items()}
    for name, value in warm.gan.generator.state_dict().items():
        if value.shape == src[name].shape:                       # every weight but the output rows
            assert torch.equal(value, src[name]), name
        else:                                                    # output rows: phone i is the CTC's row i + 1
            assert torch.equal(value, src[name][1:]), name
            assert not torch.equal(cold.gan.generator.state_dict()[name], value)
    assert warm.lineage["init_generator"]["by_name"] == len(toy.phones)
    assert len(warm.lineage["init_generator"]["sha256"]) == 64 and "init_generator" not in cold.lineage
