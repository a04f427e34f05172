"""Chance baselines and the supervised upper bound on toy segment features with known answers."""

from collections import Counter

import numpy as np
import pytest

from wav2vec_u.demo.baselines import (SupervisedConfig, decode_supervised, kmeans_rank_hyps, merge_repeats,
                                 most_frequent_phone_hyps, rank_mapping, split_by_lengths, train_supervised)
from wav2vec_u.metrics import error_rate

PHONES = ["a", "b", "c", "d"]


def toy_corpus(num_utts, seed, probs=(0.4, 0.3, 0.2, 0.1), dim=8, noise=0.05, with_sil=False):
    """Utterances of random phones, one segment per phone, each phone a separated Gaussian."""
    rng = np.random.default_rng(seed)
    means = np.eye(len(PHONES) + 1, dim, dtype=np.float32) * 3.0  # last row: <SIL>
    feats, lengths, refs = [], [], []
    for _ in range(num_utts):
        n = int(rng.integers(4, 9))
        ids = rng.choice(len(PHONES), size=n, p=probs)
        ref = [PHONES[i] for i in ids]
        rows = list(ids)
        if with_sil:
            rows = [len(PHONES)] + rows + [len(PHONES)]
        x = means[rows] + noise * rng.standard_normal((len(rows), dim)).astype(np.float32)
        feats.append(x)
        lengths.append(len(rows))
        refs.append(ref)
    return np.concatenate(feats), lengths, refs


def test_merge_repeats_and_split():
    assert merge_repeats(["a", "a", "<SIL>", "b", "b", "a"]) == ["a", "b", "a"]
    x = np.arange(10)[:, None]
    parts = split_by_lengths(x, [3, 0, 7])
    assert [len(p) for p in parts] == [3, 0, 7]
    with pytest.raises(ValueError, match="lengths sum"):
        split_by_lengths(x, [3, 3])


def test_most_frequent_phone_matches_hand_count():
    refs = [["a", "b", "a"], ["c"]]
    hyps = most_frequent_phone_hyps(refs, Counter({"<SIL>": 99, "a": 5, "b": 2}))
    assert hyps == [["a", "a", "a"], ["a"]]
    assert error_rate(refs, hyps).rate == pytest.approx(2 / 4)  # b->a and c->a are substitutions


def test_rank_mapping_pairs_ranks():
    ids = np.array([2, 2, 2, 0, 0, 1])
    mapping = rank_mapping(ids, 3, Counter({"x": 10, "y": 5, "z": 1}))
    assert mapping == {2: "x", 0: "y", 1: "z"}


def test_kmeans_rank_is_perfect_when_frequencies_identify_phones():
    # Phone frequencies are distinct and clusters are clean, so rank i -> rank i is the truth.
    probs = (0.45, 0.3, 0.17, 0.08)
    tx, tl, trefs = toy_corpus(400, seed=0, probs=probs)
    vx, vl, vrefs = toy_corpus(50, seed=1, probs=probs)
    text_counts = Counter({p: int(1000 * q) for p, q in zip(PHONES, probs)})
    hyps = kmeans_rank_hyps(tx, tl, vx, vl, text_counts, seed=1)
    # merging runs collapses true repeats of a phone: the only possible errors (deletions)
    assert hyps == [merge_repeats(r) for r in vrefs]


def test_supervised_bound_learns_and_beats_chance():
    tx, tl, trefs = toy_corpus(300, seed=0, with_sil=True)
    vx, vl, vrefs = toy_corpus(40, seed=1, with_sil=True)
    # CTC needs T' >= len(ref) + repeats; with one segment per phone that fails on repeats, so
    # give each phone two segments (as the demo's segmentation gives ~1.6 per phone).
    tx2, tl2 = np.repeat(tx, 2, axis=0), [2 * n for n in tl]
    vx2, vl2 = np.repeat(vx, 2, axis=0), [2 * n for n in vl]
    model, phones, history = train_supervised(tx2, tl2, trefs, SupervisedConfig(epochs=40, lr=1e-2, seed=1),
                                              phones=PHONES)
    assert history[-1]["loss"] < history[0]["loss"]
    per = error_rate(vrefs, decode_supervised(model, phones, vx2, vl2)).rate
    chance = error_rate(vrefs, most_frequent_phone_hyps(vrefs, Counter({"a": 2, "b": 1}))).rate
    assert chance > 0.5
    assert per < 0.1, per


def test_baselines_and_results_commands_on_any_split(tmp_path, capsys):
    """`w2vu baselines` for a named split (not only the demo's valid), then `w2vu results` puts
    them and a decoded system in the demo's table; the supervised bound beats both chance rows."""
    from toys import make_toy, write_toy
    from wav2vec_u.cli import main
    from wav2vec_u.io import read_json

    toy = make_toy(num_phones=8, dim=8, noise=0.3, num_train=120, num_valid=30, seed=3)
    feats, text = tmp_path / "seg", tmp_path / "text"
    write_toy(toy, feats, text)
    for suffix in (".npy", ".lengths", ".phn"):  # the toy's valid split under another name
        (feats / f"test{suffix}").write_bytes((feats / f"valid{suffix}").read_bytes())
    out = tmp_path / "baselines"
    assert main(["baselines", str(feats), str(feats), str(text), str(out), "--split", "test", "--supervised",
                 "supervised_epochs=15"]) == 0
    per = read_json(out / "test.baselines.json")["per"]
    assert set(per) == {"most_frequent", "kmeans_rank", "supervised"}
    assert per["supervised"]["rate"] < min(per["most_frequent"]["rate"], per["kmeans_rank"]["rate"]) - 0.2, per
    decoded = tmp_path / "decode"
    decoded.mkdir()
    (decoded / "test.viterbi.phn").write_bytes((feats / "test.phn").read_bytes())  # a perfect system
    capsys.readouterr()
    assert main(["results", str(tmp_path / "results"), "--corpus", str(feats), "--split", "test",
                 "--baselines", str(out), "--system", f"oracle={decoded}"]) == 0
    printed = capsys.readouterr().out
    assert "Phone error rate (test)" in printed and "Time and memory" not in printed
    rows = {r["system"]: r["rate"] for r in read_json(tmp_path / "results" / "results.json")["per"]}
    assert rows["oracle (Viterbi)"] == 0.0 and rows["chance: most frequent phone"] == per["most_frequent"]["rate"]
    assert main(["results", str(tmp_path / "r2"), "--corpus", str(feats), "--system", "bad"]) == 2
