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
