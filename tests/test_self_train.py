"""Self-training: a CTC model trained on noisy pseudo-labels beats its own labels."""

import numpy as np
import pytest
import torch

from wav2vec_u.metrics import error_rate
from wav2vec_u.self_train.ctc import SelfTrainConfig, ctc_feasible, self_train, train_ctc
from wav2vec_u.models.ctc import CtcModel, CtcModelConfig, ctc_decode, ctc_logits, load_ctc_model, save_ctc_model

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
    cfg = SelfTrainConfig(model=CtcModelConfig(hidden=64, layers=2), epochs=12, min_updates=0, batch_size=8,
                          lr=5e-3, iterations=1, seed=1)
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
    cfg = SelfTrainConfig(model=CtcModelConfig(hidden=64, layers=2), epochs=8, min_updates=0, batch_size=8, lr=5e-3,
                          seed=1, blank_offset=0.0)
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
    cfg = SelfTrainConfig(model=CtcModelConfig(hidden=8, layers=1), epochs=1, min_updates=0)
    with pytest.raises(ValueError, match="no utterance"):
        train_ctc(feats, [["p1", "p2", "p3"], []], PHONES, cfg)
    with pytest.raises(ValueError, match="label lines"):
        train_ctc(feats, [["p1"]], PHONES, cfg)


# ---------------------------------------------------------------------------------------------
# The commands, end to end on a toy word corpus: self-train -> decode (words) -> score


@pytest.fixture(scope="module")
def word_corpus(tmp_path_factory):
    from wav2vec_u.audio.features_io import save_features
    from toys import corrupt as corrupt_labels
    from toys import toy_lexicon, toy_utterances, write_bigram_arpa

    root = tmp_path_factory.mktemp("st_cli")
    rng = np.random.default_rng(3)
    phones = [f"p{i}" for i in range(V)]
    words = [f"w{i}" for i in range(10)]
    lexicon = toy_lexicon(words, phones, rng)
    sentences = [" ".join(rng.choice(words, size=int(rng.integers(3, 6)))) for _ in range(40)]
    means = {p: rng.standard_normal(D) for p in phones}
    feat, text = root / "feats", root / "text"
    text.mkdir()
    for split, n in (("train", 150), ("valid", 30)):
        sents = [sentences[i] for i in rng.integers(0, len(sentences), size=n)]
        phn = [[p for w in s.split() for p in lexicon[w][0]] for s in sents]
        utts = toy_utterances(phn, means, rng)
        save_features(feat, split, np.concatenate(utts), [len(u) for u in utts], meta={"frame_rate": 100.0})
        (feat / f"{split}.phn").write_text("".join(" ".join(x) + "\n" for x in phn))
        (feat / f"{split}.wrd").write_text("".join(s + "\n" for s in sents))
        if split == "train":
            pseudo = [corrupt_labels(x, phones, rng) for x in phn]
            (root / "pseudo.phn").write_text("".join(" ".join(x) + "\n" for x in pseudo))
            pseudo_per = error_rate(phn, pseudo).rate
    (text / "lexicon.lst").write_text("".join(f"{w}\t{' '.join(lexicon[w][0])}\n" for w in words))
    write_bigram_arpa(text / "lm.words.4.arpa", sentences)
    write_bigram_arpa(text / "lm.phones.4.arpa", [" ".join(p for w in s.split() for p in lexicon[w][0])
                                                  for s in sentences])
    (text / "dict.phn.txt").write_text("".join(f"{p} 1\n" for p in ["<SIL>", *phones]))
    return root, feat, text, pseudo_per


def test_self_train_and_decode_commands(word_corpus, capsys):
    import json

    from wav2vec_u.cli import main

    root, feat, text, pseudo_per = word_corpus
    out = root / "st"
    rc = main(["self-train", str(feat), str(out), "self_train.epochs=10", "self_train.min_updates=0",
               "self_train.model.hidden=64", "self_train.batch_size=8", "self_train.lr=0.005", "final_decode.tune.lm_weights=[0.0,2.0]",
               "final_decode.tune.word_scores=[0.0]",
               "--labels", str(root / "pseudo.phn"), "--text-dir", str(text), "--no-wandb"])
    assert rc == 0
    summary = json.loads((out / "history.json").read_text())
    row = summary["history"][0]
    assert row["pseudo_label_per"] == pytest.approx(pseudo_per)
    assert row["valid_per"] < pseudo_per - 0.05, row
    assert row["weighted_lm_ppl"] > 0
    words = summary["words"]["words"]
    assert words["wer"]["rate"] < 0.5 and words["per"]["rate"] <= row["valid_per"] + 0.05, words
    for name in ("ctc.pt", "ctc_iter1.pt", "train.st.phn", "valid.st.phn", "meta.json", "self-train.log",
                 "decode/valid.words.wrd", "decode/valid.timestamps.jsonl", "decode/valid.words.wer.align"):
        assert (out / name).is_file(), name

    # decode again with fixed weights, then score the word output from the files
    dec = root / "dec"
    assert main(["decode", str(out / "ctc.pt"), str(feat), str(dec), "split=valid", "tune.criterion=none",
                 "decoder.lm_weight=2.0", "decoder.word_score=0.0", "--text-dir", str(text)]) == 0
    scores = json.loads((dec / "valid.scores.json").read_text())
    stamps = [json.loads(x) for x in (dec / "valid.timestamps.jsonl").read_text().splitlines()]
    assert len(stamps) == 30 and stamps[0]["unit"] == "seconds"
    assert [w[0] for w in stamps[0]["words"]] == (dec / "valid.words.wrd").read_text().splitlines()[0].split()
    capsys.readouterr()
    assert main(["score", str(dec / "valid.words.wrd"), str(feat / "valid.wrd"), "--words",
                 "--align", str(dec / "wer.txt")]) == 0
    printed = capsys.readouterr().out
    assert f"WER {100 * scores['words']['wer']['rate']:.2f}%" in printed
    assert (dec / "wer.txt").read_text().startswith("# WER")

    # tuning by WER on a labelled dev split (here: train), scoring another
    assert main(["decode", str(out / "ctc.pt"), str(feat), str(root / "dec2"), "tune.criterion=wer",
                 "tune.split=train", "tune.max_utts=20", "tune.lm_weights=[0.0,2.0]", "tune.word_scores=[0.0]",
                 "--text-dir", str(text)]) == 0
    tuned = json.loads((root / "dec2" / "valid.scores.json").read_text())["words"]
    assert tuned["tune"]["split"] == "train" and tuned["tune"]["utterances"] == 20
    assert {r["lm_weight"] for r in tuned["tune"]["table"]} == {0.0, 2.0} and all("wer" in r for r in tuned["tune"]["table"])


def test_decode_command_with_gan_checkpoint(tmp_path):
    """An oracle generator (identity conv) on one-hot segments: Viterbi is exact, timestamps from clusters."""
    import json

    from wav2vec_u.audio.features_io import save_features
    from wav2vec_u.cli import main
    from wav2vec_u.config import to_dict
    from wav2vec_u.models.generator import Generator
    from wav2vec_u.train.checkpoint import save_checkpoint
    from wav2vec_u.train.config import GanConfig

    phones = ["<SIL>", "a", "b", "c"]
    cfg = GanConfig()
    gen = Generator(len(phones), len(phones), cfg.generator)
    with torch.no_grad():
        for p in gen.parameters():
            p.zero_()
        conv = [m for m in gen.modules() if isinstance(m, torch.nn.Conv1d)][0]
        conv.weight[:, :, conv.weight.shape[2] // 2] = 10 * torch.eye(len(phones))
    ckpt = save_checkpoint(tmp_path / "gan.pt", {"config": to_dict(cfg), "phones": phones, "input_dim": len(phones),
                                                 "generator": gen.state_dict()})
    seqs = [[0, 1, 1, 2, 0, 3], [2, 2, 3, 1]]
    feats = np.concatenate([np.eye(len(phones), dtype=np.float32)[s] for s in seqs])
    clusters = [np.repeat(np.arange(len(s)), 3) for s in seqs]  # each segment = 3 frames of one cluster
    save_features(tmp_path / "seg", "valid", feats, [len(s) for s in seqs], clusters=clusters,
                  meta={"frame_meta": {"frame_rate": 100.0}})
    (tmp_path / "seg" / "valid.phn").write_text("a b c\nb c a\n")
    assert main(["decode", str(ckpt), str(tmp_path / "seg"), str(tmp_path / "out"), "words=false"]) == 0
    assert (tmp_path / "out" / "valid.viterbi.phn").read_text() == "a b c\nb c a\n"
    scores = json.loads((tmp_path / "out" / "valid.scores.json").read_text())
    assert scores["viterbi"]["per"]["rate"] == 0.0
    first = json.loads((tmp_path / "out" / "valid.timestamps.jsonl").read_text().splitlines()[0])
    assert first["unit"] == "seconds"
    assert first["phones"][0] == ["a", 0.03, 0.09]  # segments 1-2 = frames 3..9 at 100 Hz
    assert main(["decode", str(tmp_path / "missing.pt"), str(tmp_path / "seg"), str(tmp_path / "o2")]) == 2


def test_shipped_configs_match_the_defaults():
    from pathlib import Path

    from wav2vec_u.config import load_config
    from wav2vec_u.decode.decode import DecodeConfig
    from wav2vec_u.self_train.run import SelfTrainRunConfig

    root = Path(__file__).resolve().parent.parent / "configs" / "decode"
    assert load_config(DecodeConfig, root / "decode.yaml") == DecodeConfig()
    assert load_config(SelfTrainRunConfig, root / "self_train.yaml") == SelfTrainRunConfig()


def test_iterations_stop_when_the_label_free_metric_gets_worse():
    """Iteration 2 decodes with fewer distinct phones (a worse weighted_lm_ppl): the loop stops there
    and keeps iteration 1's model and decodes; without the option it keeps the last."""
    from types import SimpleNamespace

    from wav2vec_u.models.ctc import BLANK
    from wav2vec_u.self_train.loop import run_iterations

    vocab = [BLANK, "a", "b"]
    one_hot = {p: np.eye(3)[vocab.index(p)] * 10 for p in vocab}
    decodes = {1: ["a", BLANK, "b"], 2: ["a", BLANK, "a"], 3: ["b", BLANK, "b"]}
    lm = SimpleNamespace(score=lambda toks, bos=True, eos=True: -0.5 * (len(toks) + 1))  # same for every phone

    def fit(labels, it):
        return SimpleNamespace(vocab=vocab, blank_offset=0.0, it=it), {}

    def logits_of(model, _x):
        return np.stack([one_hot[p] for p in decodes[model.it]])

    inputs = [np.zeros((3, 2))] * 4
    res = run_iterations([["a", "b"]] * 4, ["a", "b"], 3, fit, logits_of, inputs, blank_offset=0.0,
                         valid_inputs=inputs, phone_lm=lm, stop_when_worse=True)
    assert [r["iteration"] for r in res.history] == [1, 2] and [r["kept"] for r in res.history] == [True, False]
    assert res.history[1]["weighted_lm_ppl"] > res.history[0]["weighted_lm_ppl"]
    assert res.model.it == 1 and res.valid_hyps == [["a", "b"]] * 4
    res = run_iterations([["a", "b"]] * 4, ["a", "b"], 3, fit, logits_of, inputs, blank_offset=0.0,
                         valid_inputs=inputs, phone_lm=lm)
    assert len(res.history) == 3 and res.model.it == 3
