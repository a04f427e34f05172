"""Lexicon + word-LM beam search recovers words from noisy phone posteriors."""

import math

import numpy as np
import pytest

from wav2vec_u.decode.lexicon_decoder import DecoderConfig, LexiconDecoder, load_word_lm, lm_perplexity, tune, unsupervised_score
from wav2vec_u.text.lexicon import read_pronunciations
from wav2vec_u.metrics import error_rate
from toys import write_bigram_arpa
from wav2vec_u.decode.viterbi import spans_from_lengths, viterbi_decode

PHONES = ["<SIL>", "ð", "ə", "k", "æ", "t", "s", "ɑ", "n", "m", "d", "ɔ", "ɡ", "r", "ɪ", "p", "l", "b", "ɛ"]
LEXICON = {
    "the": [("ð", "ə")],
    "cat": [("k", "æ", "t")],
    "sat": [("s", "æ", "t")],
    "on": [("ɑ", "n")],
    "mat": [("m", "æ", "t")],
    "a": [("ə",)],
    "dog": [("d", "ɔ", "ɡ")],
    "ran": [("r", "æ", "n")],
    "in": [("ɪ", "n")],
    "park": [("p", "ɑ", "r", "k")],
    "bat": [("b", "æ", "t")],
    "pat": [("p", "æ", "t")],
    "sad": [("s", "æ", "d")],
    "bed": [("b", "ɛ", "d")],
    "red": [("r", "ɛ", "d")],
    "led": [("l", "ɛ", "d")],
}
CORPUS = [
    "the cat sat on the mat", "a dog ran in the park", "the dog sat on a mat", "the cat ran in the park",
    "a cat sat on the bed", "the red dog sat on the bed", "a sad cat ran in the park",
    "the dog ran on the mat", "the cat sat in a red bed", "a dog sat on the mat",
]
TEST_SENTENCES = ["the cat sat on the mat", "a dog ran in the park", "the red dog sat on a bed",
                  "a sad cat ran in the park", "the dog sat on the mat"]


def noisy_posteriors(sentence, rng, noise=1.6, sil_prob=0.25, peak=3.0):
    """Segment logits for a sentence: 1-3 segments per phone, <SIL> sometimes between words."""
    seq = ["<SIL>"]
    for i, w in enumerate(sentence.split()):
        pron = list(LEXICON[w][0])
        # identical phones across a boundary need a silence, as after joining generator outputs
        if i and (rng.random() < sil_prob or seq[-1] == pron[0]):
            seq.append("<SIL>")
        seq += pron
    seq.append("<SIL>")
    ids = [PHONES.index(p) for p in seq for _ in range(rng.integers(1, 4))]
    x = np.zeros((len(ids), len(PHONES)))
    x[np.arange(len(ids)), ids] = peak
    return x + noise * rng.standard_normal(x.shape)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return load_word_lm(write_bigram_arpa(tmp_path_factory.mktemp("lm") / "words.arpa", CORPUS))


@pytest.fixture(scope="module")
def noisy_set():
    rng = np.random.default_rng(0)
    return [noisy_posteriors(s, rng) for s in TEST_SENTENCES * 2]


def refs():
    return [s.split() for s in TEST_SENTENCES * 2]


def ref_phones():
    return [[p for w in s.split() for p in LEXICON[w][0]] for s in TEST_SENTENCES * 2]


def test_clean_posteriors_give_exact_words(lm):
    dec = LexiconDecoder(PHONES, LEXICON, lm, DecoderConfig(lm_weight=1.0, word_score=0.0))
    rng = np.random.default_rng(1)
    for s in TEST_SENTENCES:
        out = dec.decode(noisy_posteriors(s, rng, noise=0.0, peak=10.0))
        assert out.words == s.split()
        assert out.complete


def test_noisy_posteriors_recovered_with_lm(lm, noisy_set):
    viterbi = [viterbi_decode(x, PHONES).tokens for x in noisy_set]
    vt_per = error_rate(ref_phones(), viterbi).rate
    assert vt_per > 0.2  # the phones alone are badly wrong...

    dec = LexiconDecoder(PHONES, LEXICON, lm, DecoderConfig(lm_weight=1.5, word_score=0.0))
    out = [dec.decode(x) for x in noisy_set]
    wer = error_rate(refs(), [o.words for o in out]).rate
    per = error_rate(ref_phones(), [o.phones for o in out]).rate
    assert wer < 0.1, wer  # ...but the lexicon and word LM recover the words
    assert per < vt_per / 3

    no_lm = LexiconDecoder(PHONES, LEXICON, None, DecoderConfig(lm_weight=0.0, word_score=0.0))
    wer_no_lm = error_rate(refs(), [no_lm.decode(x).words for x in noisy_set]).rate
    assert wer < wer_no_lm  # and the LM is part of why


def test_segments_are_ordered_and_cover_words(lm):
    rng = np.random.default_rng(2)
    x = noisy_posteriors("the cat sat on the mat", rng, noise=0.0)
    lengths = rng.integers(1, 5, size=len(x))
    spans = spans_from_lengths(lengths)
    dec = LexiconDecoder(PHONES, LEXICON, lm, DecoderConfig(lm_weight=1.0, word_score=0.0))
    out = dec.decode(x, spans=spans, frame_rate=50.0)
    assert [s.token for s in out.word_segments] == out.words
    assert len(out.phone_segments) == len(out.phones) == 15
    ends = [s.end for s in out.word_segments]
    starts = [s.start for s in out.word_segments]
    assert all(a < b for a, b in zip(starts, ends))
    assert all(e <= s for e, s in zip(ends, starts[1:]))
    assert ends[-1] <= lengths.sum() / 50.0
    # each word's span contains its phones' spans
    first = out.phone_segments[0]
    assert first.token == "ð" and first.start == pytest.approx(starts[0])


def test_tune_by_labels_and_without(lm, noisy_set):
    viterbi = [viterbi_decode(x, PHONES).tokens for x in noisy_set]
    dec = LexiconDecoder(PHONES, LEXICON, lm)
    sup = tune(dec, noisy_set, viterbi, [0.0, 1.5], [0.0], ref_words=refs(), criterion="wer")
    assert sup.lm_weight == 1.5
    assert {r["lm_weight"] for r in sup.table} == {0.0, 1.5} and all("wer" in r for r in sup.table)
    uns = tune(dec, noisy_set, viterbi, [0.0, 1.5], [0.0], criterion="unsupervised")
    assert uns.lm_weight == 1.5  # the label-free score prefers the same setting here
    assert dec.cfg.lm_weight == 1.5
    with pytest.raises(ValueError, match="labelled"):
        tune(dec, noisy_set, viterbi, [1.0], [0.0], criterion="wer")


def test_unsupervised_score_parts(lm):
    class D:  # minimal stand-in for WordDecoded
        def __init__(self, words):
            self.words = words
            self.phones = [p for w in words for p in LEXICON[w][0]]
    good = [D("the cat sat on the mat".split())]
    s = unsupervised_score(good, [good[0].phones[:-1]], lm)
    assert s["viterbi_per"] == pytest.approx(1 / 14)
    assert s["score"] == pytest.approx(math.log(s["lm_ppl"]) / 14)
    assert lm_perplexity(lm, [["the", "cat"]]) == pytest.approx(10 ** (-lm.score(["the", "cat"]) / 3))


def test_lexicon_file_and_bad_inputs(tmp_path, lm):
    p = tmp_path / "lexicon.lst"
    p.write_text("the\tð ə\nthe\tð i\ncat\tk æ t\nzzz\tq q\n\n")
    lex = read_pronunciations(p)
    assert lex["the"] == [("ð", "ə"), ("ð", "i")]
    dec = LexiconDecoder(PHONES, lex, lm)  # "ð i" and "zzz" use unknown phones: skipped
    assert sorted(set(dec.words)) == ["cat", "the"]
    bad = tmp_path / "bad.lst"
    bad.write_text("justaword\n")
    with pytest.raises(ValueError, match="bad.lst:1"):
        read_pronunciations(bad)
    with pytest.raises(FileNotFoundError, match="lexicon"):
        read_pronunciations(tmp_path / "missing.lst")
    with pytest.raises(FileNotFoundError, match="word LM"):
        load_word_lm(tmp_path / "missing.arpa")
    with pytest.raises(ValueError, match="silence"):
        LexiconDecoder(PHONES[1:], LEXICON, lm)
    with pytest.raises(ValueError, match="V=19"):
        LexiconDecoder(PHONES, LEXICON, lm).decode(np.zeros((3, 4)))


def test_empty_input(lm):
    out = LexiconDecoder(PHONES, LEXICON, lm).decode(np.zeros((0, len(PHONES))))
    assert out.words == [] and out.phones == []


def test_reference_oov_rate_and_the_tuning_sample():
    from wav2vec_u.decode.decode import oov_rate, summary_lines, tuning_sample

    o = oov_rate([["the", "cat", "zebra"], ["a", "gnu"]], LEXICON)
    assert o == {"tokens": 5, "oov": 2, "rate": 0.4}
    res = {"split": "valid", "num_utts": 2, "model": "gan", "viterbi": {},
           "words": {"lm_weight": 1.0, "word_score": 0.0, "backend": "python", "ref_oov": o}}
    assert "references outside the lexicon: 40.0% of words (2/5)" in summary_lines(res)
    assert tuning_sample(10, 0) == list(range(10)) and tuning_sample(3, 5) == [0, 1, 2]
    pick = tuning_sample(1000, 4)
    assert pick == [0, 333, 666, 999]  # spread over the split, not its first utterances
