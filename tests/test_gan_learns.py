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
from collections import Counter
from pathlib import Path

import pytest
import torch

from wav2vec_u.config import load_config
from wav2vec_u.metrics import error_rate
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


W2VU2_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "gan" / "w2vu2.yaml"
# the toy settings of configs/gan/toy.yaml (docs/gan.md, "Making the GAN decipher") on top of w2vu2.yaml,
# with batch 32 instead of 64: half the test's time (batch 64 reaches 5.5% at 600 updates, docs/gan.md)
TOY2 = ["loss.gp_norm=sample", "optim.lr_g=0.001", "optim.lr_d=0.002", "discriminator.dim=128", "data.batch_size=32"]


def run_frame_toy(tmp_path, overrides: list[str], updates: int) -> list[dict]:
    torch.set_num_threads(1)
    toy = make_toy(num_phones=20, dim=32, noise=0.5, num_train=1000, num_valid=200, num_text=4000,
                   frames_per_phone=4.0, seed=0)
    write_toy(toy, tmp_path / "feats", tmp_path / "text")
    cfg = load_config(GanConfig, W2VU2_CONFIG, [
        f"data.features={tmp_path / 'feats'}", f"data.text={tmp_path / 'text'}", *TOY2, *overrides,
        f"trainer.max_updates={updates}", "trainer.validate_every=100", f"trainer.save_every={updates}",
        "trainer.log_every=100", "trainer.seed=1", "trainer.progress=false"])
    train_gan(cfg, tmp_path / "run")
    return [r for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
            if "valid_per" in r]


def test_gan2_deciphers_frame_toy(tmp_path):
    """wav2vec-U 2.0 on frames: the toy's 20 phones last 2-10 frames each (log-normal around 4, as
    50-150 ms phones at 50 Hz), neighbours blend over a boundary frame, and the auxiliary targets are
    64-cluster k-means ids of a second 13-dim view at twice the frame rate (``toys.make_toy``). The
    generator strides 3 over the frames, so it must learn to emit each phone once per run.

    Baselines: the untrained generator, 112.9% PER, and the most frequent phone repeated to the
    reference length, 91.0%. Required: at most 25% after 600 updates, and 50 points under the better
    baseline. Measured (seed 1, toy seed 0, batch 32, one thread): 16.3% at 600 updates, 35 s of CPU.
    At batch 64: 5.5% (4.8% at 1,000); there ``generator.batch_norm=false`` reaches only 66.9% at 600
    (54.0% at 1,000) and ``loss.aux_weight=0`` 5.8% (docs/gan.md, "wav2vec-U 2.0")."""
    vals = run_frame_toy(tmp_path, [], 600)
    start, end = vals[0], vals[-1]
    refs = [line.split() for line in (tmp_path / "feats" / "valid.phn").read_text().splitlines()]
    counts = Counter(p for line in (tmp_path / "text" / "phones.txt").read_text().splitlines() for p in line.split())
    top = counts.most_common(1)[0][0]
    most_frequent = error_rate(refs, [[top] * len(r) for r in refs]).rate
    baseline = min(start["valid_per"], most_frequent)
    assert start["step"] == 0 and baseline > 0.75, (start["valid_per"], most_frequent)
    assert end["valid_per"] <= min(0.25, baseline - 0.5), [(v["step"], round(v["valid_per"], 3)) for v in vals]
    assert end["valid_weighted_lm_ppl"] < start["valid_weighted_lm_ppl"]


@pytest.mark.slow
def test_gan2_without_batch_norm_lags_on_the_frame_toy(tmp_path):
    """The paper's ablation (no BatchNorm: > 100% PER on LibriSpeech) on the frame toy: the same run as
    ``test_gan2_deciphers_frame_toy`` with ``generator.batch_norm=false``. Measured: 84.7% PER at 600
    updates against 16.3% with BatchNorm (docs/gan.md)."""
    vals = run_frame_toy(tmp_path, ["generator.batch_norm=false"], 600)
    print("no BatchNorm:", [(v["step"], round(v["valid_per"], 3)) for v in vals])
    assert vals[-1]["valid_per"] > 0.4
