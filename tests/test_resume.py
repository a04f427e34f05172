"""Checkpoints: an interrupted and resumed run equals an uninterrupted one; signals; NaN guard."""

import signal

import pytest
import torch

from wav2vec_u.config import apply_overrides, from_dict
from wav2vec_u.train.checkpoint import generator_logits, load_checkpoint, load_generator
from wav2vec_u.train.run import train_gan
from wav2vec_u.train.config import GanConfig
from toys import signal_after_step
from wav2vec_u.train.trainer import GanTrainer, TrainingDiverged


def small_cfg(feats, text, *extra):
    over = [f"data.features={feats}", f"data.text={text}", "data.batch_size=8", "discriminator.dim=16",
            "trainer.validate_every=50", "trainer.save_every=50", "trainer.log_every=25",
            "trainer.progress=false", *extra]
    return from_dict(GanConfig, apply_overrides({}, over))


def params(path):
    state = load_checkpoint(path)
    return {**{f"g.{k}": v for k, v in state["generator"].items()},
            **{f"d.{k}": v for k, v in state["discriminator"].items()}}, state


def test_interrupted_and_resumed_run_equals_uninterrupted(toy_dirs, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    feats, text = toy_dirs
    full = train_gan(small_cfg(feats, text, "trainer.max_updates=200"), tmp_path / "a")
    assert full["status"] == "done" and full["step"] == 200

    # pre-empted by SIGUSR1 right after update 100, then the same command again
    original = GanTrainer.train_step
    signal_after_step(monkeypatch, 100, signal.SIGUSR1)
    first = train_gan(small_cfg(feats, text, "trainer.max_updates=200"), tmp_path / "b")
    assert first["status"] == "preempted" and first["step"] == 100
    assert load_checkpoint(tmp_path / "b" / "last.pt")["step"] == 100
    monkeypatch.setattr(GanTrainer, "train_step", original)
    second = train_gan(small_cfg(feats, text, "trainer.max_updates=200"), tmp_path / "b")
    assert second["step"] == 200

    pa, sa = params(tmp_path / "a" / "last.pt")
    pb, sb = params(tmp_path / "b" / "last.pt")
    assert pa.keys() == pb.keys()
    for k in pa:
        assert torch.equal(pa[k], pb[k]), k
    assert sa["data"] == sb["data"]
    # the optimiser moments too
    for ka, kb in zip(sa["opt_g"]["state"].values(), sb["opt_g"]["state"].values()):
        assert torch.equal(ka["exp_avg"], kb["exp_avg"])
    # the parameters did move: the test would catch a resume that silently restarts
    init = GanTrainer.__init__  # noqa: F841
    assert not torch.equal(pa["g.proj.weight"], torch.zeros_like(pa["g.proj.weight"]))


def test_checkpoint_is_self_describing(toy_dirs, tmp_path):
    torch.set_num_threads(1)
    feats, text = toy_dirs
    train_gan(small_cfg(feats, text, "trainer.max_updates=50"), tmp_path)
    for name in ("last.pt", "best.pt", "config.yaml", "metrics.jsonl", "train-gan.run.json"):
        assert (tmp_path / name).is_file(), name
    gen, phones, cfg = load_generator(tmp_path / "best.pt")
    assert phones == [f"p{i:02d}" for i in range(6)] and cfg.discriminator.dim == 16
    import numpy as np

    x = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    out = generator_logits(gen, x)
    assert out.shape == (6, 6)  # kernel 4, padding 2: T + 1 outputs
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["lineage"]["features"] == str(feats) and state["lineage"]["inputs"]
    with pytest.raises(ValueError, match="features must be"):
        generator_logits(gen, x[:, :3])


def test_nan_loss_stops_and_keeps_last_good_checkpoint(toy_dirs, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    feats, text = toy_dirs
    train_gan(small_cfg(feats, text, "trainer.max_updates=50"), tmp_path)
    good = load_checkpoint(tmp_path / "last.pt")
    from wav2vec_u.train import data

    original = data.FeatureSet.batch

    def poisoned(self, *a, **k):
        x, m = original(self, *a, **k)
        return x * float("nan"), m

    monkeypatch.setattr(data.FeatureSet, "batch", poisoned)
    with pytest.raises(TrainingDiverged, match="NaN or inf"):
        train_gan(small_cfg(feats, text, "trainer.max_updates=100"), tmp_path)
    after = load_checkpoint(tmp_path / "last.pt")
    assert after["step"] == 50
    assert torch.equal(after["generator"]["proj.weight"], good["generator"]["proj.weight"])


def test_static_shapes_pad_to_the_longest_utterance(toy_dirs, tmp_path):
    """The GPU mode (no host synchronisation): fixed batch shapes, same training loop."""
    torch.set_num_threads(1)
    feats, text = toy_dirs
    from wav2vec_u.train.data import FeatureSet

    fs = FeatureSet.from_dir(feats, "train")
    x, m = fs.batch(torch.tensor([0, 1]), static=True)
    assert x.shape[1] == fs.max_length and ((~m).sum(1) == fs.lengths[:2]).all()
    out = train_gan(small_cfg(feats, text, "trainer.max_updates=20", "trainer.static_shapes=true"), tmp_path)
    assert out["step"] == 20 and load_checkpoint(tmp_path / "last.pt")["step"] == 20
