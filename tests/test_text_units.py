"""Text side building blocks: normalisation rules, silence insertion, dictionary, lexicon files."""

import numpy as np
import pytest

from wav2vec_u.text.dictionary import PhoneDictionary
from wav2vec_u.text.lexicon import read_lexicon, write_lexicon
from wav2vec_u.text.normalize import normalize_line
from wav2vec_u.text.silence import SIL, gap_silences, insert_silence


def test_normalize_rules():
    assert normalize_line("Hello, World!  It's 1990.") == "hello world it's 1990"
    assert normalize_line("Hello, World!  It's 1990.", digits="remove") == "hello world it's"
    assert normalize_line("ＦＵＬＬ width") == "full width"  # NFKC
    assert normalize_line("Él dijo: «¡Sí!»", lowercase=False) == "Él dijo Sí"
    with pytest.raises(ValueError, match="digits"):
        normalize_line("x", digits="spell")


@pytest.mark.parametrize("prob", [0.25, 0.5])
def test_silence_rate_over_10k_words_is_within_2_points(prob):
    rng = np.random.default_rng(0)
    sentences = [[["p"] * int(rng.integers(1, 5)) for _ in range(int(rng.integers(1, 15)))] for _ in range(1400)]
    n_words = sum(len(s) for s in sentences)
    assert n_words >= 10_000
    sil_rng = np.random.default_rng(123)
    lines = [insert_silence(s, prob, sil_rng) for s in sentences]
    assert all(line[0] == SIL and line[-1] == SIL for line in lines)  # both ends, always
    gaps = sum(len(s) - 1 for s in sentences)
    rate = sum(gap_silences(line) for line in lines) / gaps
    assert abs(rate - prob) < 0.02, rate
    # no silence inside a word, never two in a row
    for line in lines:
        assert all(not (a == SIL and b == SIL) for a, b in zip(line, line[1:]))


def test_silence_is_seeded_and_optional():
    words = [["a"], ["b", "c"], ["d"]] * 20
    a = insert_silence(words, 0.5, np.random.default_rng(7))
    b = insert_silence(words, 0.5, np.random.default_rng(7))
    assert a == b
    assert insert_silence(words, 0.0, np.random.default_rng(7), surround=False) == [p for w in words for p in w]
    assert insert_silence(words, 1.0, np.random.default_rng(7)).count(SIL) == len(words) + 1
    with pytest.raises(ValueError):
        insert_silence(words, 1.5, np.random.default_rng(7))


def test_dictionary_round_trip_in_fairseq_format(tmp_path):
    from collections import Counter

    d = PhoneDictionary.from_counts(Counter({"t": 7, "ə": 10, "k": 7}), extra={SIL: 3})
    assert d.symbols == ["ə", "k", "t", SIL]  # most frequent first, ties by symbol, extras last
    path = d.save(tmp_path / "dict.phn.txt")
    assert path.read_text(encoding="utf-8") == "ə 10\nk 7\nt 7\n<SIL> 3\n"
    e = PhoneDictionary.load(path)
    assert e.symbols == d.symbols and e.counts == d.counts and len(e) == 4 and e.index("t") == 2
    assert "k" in e and "x" not in e
    with pytest.raises(KeyError, match="'x'"):
        e.index("x")
    (tmp_path / "bad.txt").write_text("a 1\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.txt:2"):
        PhoneDictionary.load(tmp_path / "bad.txt")
    with pytest.raises(FileNotFoundError, match="prepare-text"):
        PhoneDictionary.load(tmp_path / "missing.txt")


def test_lexicon_read_write(tmp_path):
    lex = {"cat": ["k", "æ", "t"], "a": ["ɐ"]}
    path = write_lexicon(tmp_path / "lexicon.lst", lex)
    assert path.read_text(encoding="utf-8") == "a\tɐ\ncat\tk æ t\n"
    assert read_lexicon(path) == lex
    (tmp_path / "bad.lst").write_text("cat\tk æ t\ndog\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.lst:2"):
        read_lexicon(tmp_path / "bad.lst")
