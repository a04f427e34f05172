"""The GAN deciphers a toy cipher it has never seen paired (seeded learning test).

Toy (``toys``): 20 phones, each emitting 32-dim segment features from its own
Gaussian (unit-variance random mean, noise σ 0.5), 1-2 segments per phone, sentences from a
sparse bigram model. The GAN sees features of 1,000 sentences and the phone text of 4,000
*other* sentences. Chance: the untrained generator is above 80% PER. We require ≤ 40% PER
after training and a lower unsupervised metric (weighted_lm_ppl) than at the start.

Settings (``configs/gan/toy.yaml``, each a config option, see docs/gan.md for the search): the textbook WGAN-GP norm
(``loss.gp_norm=sample``, weight 1.0) instead of the reference's per-phone time norm, a
faster discriminator (``optim.lr_d=0.002``) and generator (``optim.lr_g=0.001``), D 128 wide,
batch 64. With the reference's exact settings the same toy stays at ~80% PER at this budget.
Measured with these settings (seed 1, toy seed 0): PER 109% -> 13.5% at 500 updates.
"""

import json
from pathlib import Path

import torch

from wav2vec_u.config import load_config
from wav2vec_u.train.checkpoint import load_checkpoint
from wav2vec_u.train.run import train_gan
from wav2vec_u.train.config import GanConfig
from toys import make_toy, write_toy

TOY_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "gan" / "toy.yaml"


def test_gan_deciphers_toy(tmp_path):
    torch.set_num_threads(1)  # the run is chaotic: fix the thread count so the seed fixes the result
    toy = make_toy(num_phones=20, dim=32, noise=0.5, num_train=1000, num_valid=200, num_text=4000, seed=0)
    write_toy(toy, tmp_path / "feats", tmp_path / "text")
    cfg = load_config(GanConfig, TOY_CONFIG, [
        f"data.features={tmp_path / 'feats'}", f"data.text={tmp_path / 'text'}",
        "trainer.max_updates=500", "trainer.validate_every=100", "trainer.save_every=500", "trainer.log_every=100",
        "trainer.seed=1", "trainer.progress=false"])
    train_gan(cfg, tmp_path / "run")
    vals = [r for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
            if "valid_per" in r]
    start, end = vals[0], vals[-1]
    assert start["step"] == 0 and start["valid_per"] > 0.8  # chance, the baseline
    assert end["valid_per"] <= 0.40, [(v["step"], round(v["valid_per"], 3)) for v in vals]
    assert end["valid_weighted_lm_ppl"] < start["valid_weighted_lm_ppl"]
    # best.pt is chosen by the unsupervised metric alone, and it is a deciphering model too
    best = min((v for v in vals if v["step"] > 0), key=lambda v: v["valid_weighted_lm_ppl"])  # update 0 is only a baseline
    assert load_checkpoint(tmp_path / "run" / "best.pt")["best_metric"] == best["valid_weighted_lm_ppl"]
    assert best["valid_per"] <= 0.40
