"""Self-training: a CTC model trained on noisy pseudo-labels beats its own labels."""

import numpy as np
import pytest
import torch

from wav2vec_u.decode.metrics import error_rate
from wav2vec_u.decode.self_train import (CtcModel, CtcModelConfig, SelfTrainConfig, ctc_decode, ctc_feasible,
                                         ctc_logits, load_ctc_model, save_ctc_model, self_train, train_ctc)

V, D = 8, 16
PHONES = ["<SIL>"] + [f"p{i}" for i in range(V)]


def toy_corpus(n, rng, means):
    """Phone sequences; each phone 2-4 frames of its Gaussian mean plus 0.3 x the previous one's."""
    utts, labels = [], []
    for _ in range(n):
        seq = [int(rng.integers(V))]
        while len(seq) < rng.integers(8, 15):
            q = int(rng.integers(V))
            if q != seq[-1]:
                seq.append(q)
        frames = []
        for i, p in enumerate(seq):
            context = 0.3 * means[seq[i - 1]] if i else 0.0
            frames += [means[p] + context + 0.8 * rng.standard_normal(D) for _ in range(rng.integers(2, 5))]
        utts.append(np.asarray(frames, dtype=np.float32))
        labels.append([f"p{q}" for q in seq])
    return utts, labels


def corrupt(labels, rng, sub=0.25, dele=0.1, ins=0.05):
    """Random substitutions, deletions and insertions: noisy, but better than chance."""
    out = []
    for t in labels:
        r = rng.random()
        if r < dele:
            continue
        out.append(f"p{rng.integers(V)}" if r < dele + sub else t)
        if rng.random() < ins:
            out.append(f"p{rng.integers(V)}")
    return out


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    means = rng.standard_normal((V, D))
    train, train_refs = toy_corpus(160, rng, means)
    valid, valid_refs = toy_corpus(50, rng, means)
    pseudo = [corrupt(r, rng) for r in train_refs]
    return train, train_refs, valid, valid_refs, pseudo


def test_self_training_beats_its_noisy_pseudo_labels(toy):
    train, train_refs, valid, valid_refs, pseudo = toy
    pseudo_per = error_rate(train_refs, pseudo).rate
    assert 0.3 < pseudo_per < 0.4  # the labels are badly noisy (chance would be ~90%)
    cfg = SelfTrainConfig(model=CtcModelConfig(hidden=64, layers=2), epochs=12, batch_size=8, lr=5e-3,
                          iterations=1, seed=1)
    result = self_train(train, pseudo, PHONES, cfg, train_refs=train_refs, valid_utts=valid, valid_refs=valid_refs)
    row = result.history[0]
    assert row["pseudo_label_per"] == pytest.approx(pseudo_per)
    # the CTC model learns the majority label of each sound: fewer errors than its teacher,
    # on the training audio and on held-out audio it never saw labels for
    assert row["train_per"] < pseudo_per - 0.05, row
    assert row["valid_per"] < pseudo_per - 0.05, row
    assert row["blank_offset"] > 0  # length matching had to counter CTC's deletions
    assert error_rate(valid_refs, result.valid_hyps).rate == pytest.approx(row["valid_per"])


def test_clean_labels_are_learned_exactly(toy):
    train, train_refs, valid, valid_refs, _ = toy
    cfg = SelfTrainConfig(model=CtcModelConfig(hidden=64, layers=2), epochs=8, batch_size=8, lr=5e-3, seed=1,
                          blank_offset=0.0)
    model = train_ctc(train[:80], train_refs[:80], PHONES, cfg)
    assert error_rate(valid_refs, ctc_decode(model, valid)).rate < 0.05


def test_model_shapes_save_load(tmp_path):
    for kind, sub in (("conv", 1), ("conv", 2), ("bilstm", 1)):
        m = CtcModel(D, PHONES, CtcModelConfig(kind=kind, hidden=16, layers=1, subsample=sub))
        x = torch.randn(3, 11, D)
        lengths = torch.tensor([11, 7, 1])
        logits, out_len = m(x, lengths)
        assert logits.shape == (3, (11 - 1) // sub + 1, len(PHONES))
        assert out_len.tolist() == [(n - 1) // sub + 1 for n in (11, 7, 1)]
    m.blank_offset = 1.5
    p = save_ctc_model(tmp_path / "ctc.pt", m)
    m2 = load_ctc_model(p)
    feats = np.random.default_rng(0).standard_normal((9, D)).astype(np.float32)
    np.testing.assert_allclose(ctc_logits(m, feats), ctc_logits(m2, feats), atol=1e-6)
    assert m2.blank_offset == 1.5
    np.testing.assert_allclose(ctc_logits(m2, feats, with_blank_offset=True)[:, 0], ctc_logits(m2, feats)[:, 0] - 1.5,
                               atol=1e-6)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        load_ctc_model(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        load_ctc_model(tmp_path / "missing.pt")


def test_ctc_feasibility_and_bad_labels():
    assert ctc_feasible(3, [1, 2, 3]) and not ctc_feasible(3, [1, 1, 2])
    feats = [np.zeros((2, D), np.float32), np.zeros((6, D), np.float32)]
    cfg = SelfTrainConfig(model=CtcModelConfig(hidden=8, layers=1), epochs=1)
    with pytest.raises(ValueError, match="no utterance"):
        train_ctc(feats, [["p1", "p2", "p3"], []], PHONES, cfg)
    with pytest.raises(ValueError, match="label lines"):
        train_ctc(feats, [["p1"]], PHONES, cfg)
