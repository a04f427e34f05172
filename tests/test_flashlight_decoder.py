"""flashlight-text's lexicon search beside ours: same LM, same words on a small case; the backend
choice; decoding across processes gives the same words as in one."""

import dataclasses

import numpy as np
import pytest

from test_lexicon_decoder import CORPUS, LEXICON, PHONES
from toys import write_bigram_arpa
from wav2vec_u.decode import flashlight_decoder
from wav2vec_u.decode.flashlight_decoder import lexicon_decoder
from wav2vec_u.decode.lexicon_decoder import DecoderConfig, LexiconDecoder, decode_all, load_word_lm

pytest.importorskip("flashlight.lib.text.decoder")

WIDE = DecoderConfig(beam=200, token_beam=len(PHONES), beam_threshold=100.0, lm_weight=1.0, word_score=0.0)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return load_word_lm(write_bigram_arpa(tmp_path_factory.mktemp("lm") / "words.arpa", CORPUS))


def segment_posteriors(sentence, rng, noise):
    """One position per phone (GAN segment outputs after joining), <SIL> sometimes between words."""
    seq = ["<SIL>"]
    for i, w in enumerate(sentence.split()):
        pron = list(LEXICON[w][0])
        if i and (rng.random() < 0.3 or seq[-1] == pron[0]):
            seq.append("<SIL>")
        seq += pron
    seq.append("<SIL>")
    x = np.zeros((len(seq), len(PHONES)))
    x[np.arange(len(seq)), [PHONES.index(p) for p in seq]] = 3.0
    return x + noise * rng.standard_normal(x.shape)


def test_both_searches_agree_on_the_words_scored_by_the_same_lm(lm):
    rng = np.random.default_rng(0)
    xs = [segment_posteriors(s, rng, noise=1.5) for s in CORPUS * 2]
    ours = lexicon_decoder(PHONES, LEXICON, lm, dataclasses.replace(WIDE, backend="python"))
    theirs = lexicon_decoder(PHONES, LEXICON, lm, dataclasses.replace(WIDE, backend="flashlight"))
    assert type(ours) is LexiconDecoder and theirs.backend == "flashlight"
    same_words = same_score = 0
    for x in xs:
        a, b = ours.decode(x), theirs.decode(x)
        # scored by the same LM: equal for the same path; never better than ours, whose search
        # space holds flashlight's (flashlight cannot let a word's last phone run on after the
        # word closed: the module doc); so where the words differ, ours scored higher
        assert b.score <= a.score + 1e-3
        same_words += a.words == b.words and a.phones == b.phones
        same_score += abs(a.score - b.score) < 1e-3
        assert [s.token for s in b.word_segments] == b.words
    assert same_words >= 0.8 * len(xs) and same_score >= 0.7 * len(xs), (same_words, same_score, len(xs))
    # and they did not agree by outputting the references blindly: the noise changed some words
    assert sum(ours.decode(x).words != s.split() for x, s in zip(xs, CORPUS * 2)) > 0


def test_weights_change_the_flashlight_search(lm):
    rng = np.random.default_rng(1)
    x = segment_posteriors("the cat sat on the mat", rng, noise=0.5)
    dec = lexicon_decoder(PHONES, LEXICON, lm, dataclasses.replace(WIDE, backend="flashlight"))
    assert dec.decode(x).words == "the cat sat on the mat".split()
    dec.set_weights(0.0, -50.0)  # a huge per-word penalty: as few words as possible
    assert len(dec.decode(x).words) < 6
    assert dec.decode(np.zeros((0, len(PHONES)))).words == []


def test_auto_backend_and_the_fallback(lm, monkeypatch):
    assert lexicon_decoder(PHONES, LEXICON, lm, DecoderConfig()).backend == "flashlight"
    assert lexicon_decoder(PHONES, LEXICON, None, DecoderConfig()).backend == "python"  # no LM: ours
    monkeypatch.setattr(flashlight_decoder, "flashlight_available", lambda: False)
    assert lexicon_decoder(PHONES, LEXICON, lm, DecoderConfig()).backend == "python"
    with pytest.raises(ValueError, match="pip install flashlight-text"):
        lexicon_decoder(PHONES, LEXICON, lm, DecoderConfig(backend="flashlight"))


@pytest.mark.parametrize("backend", ["python", "flashlight"])
def test_decoding_in_two_processes_equals_one(lm, backend):
    rng = np.random.default_rng(2)
    xs = [segment_posteriors(s, rng, noise=1.2) for s in CORPUS]
    dec = lexicon_decoder(PHONES, LEXICON, lm, dataclasses.replace(WIDE, beam=30, backend=backend))
    one = decode_all(dec, xs, workers=1)
    two = decode_all(dec, xs, workers=2)
    assert [d.words for d in one] == [d.words for d in two] and len(one) == len(CORPUS)
    assert [d.score for d in one] == pytest.approx([d.score for d in two])
