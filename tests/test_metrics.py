"""PER/WER against hand-worked examples, including empty references and hypotheses."""

import math
import random

import editdistance
import pytest

from wav2vec_u.metrics import align, error_rate, normalize_tokens, write_alignments


def test_hand_worked_example():
    # the cat sat->sit on the->mat mat +now: 2 substitutions, 1 insertion, 6 reference words
    ref = "the cat sat on the mat".split()
    hyp = "the cat sit on mat mat now".split()
    s = error_rate([ref], [hyp])
    assert s.errors == 3 == editdistance.eval(ref, hyp)
    assert (s.sub, s.ins, s.dele) == (2, 1, 0)
    assert s.ref_len == 6 and s.hyp_len == 7
    assert s.rate == pytest.approx(3 / 6)


def test_counts_per_type():
    # pure deletion, pure insertion, pure substitution
    s = error_rate([["a", "b", "c"], ["a"], ["a", "b"]], [["a", "c"], ["a", "x", "y"], ["a", "z"]])
    assert (s.dele, s.ins, s.sub) == (1, 2, 1)
    assert s.ref_len == 6
    assert s.rate == pytest.approx(4 / 6)
    assert s.num_utts == 3 and s.utts_with_errors == 3


def test_empty_hypothesis_is_all_deletions():
    s = error_rate([["a", "b", "c"]], [[]])
    assert (s.sub, s.ins, s.dele, s.ref_len) == (0, 0, 3, 3)
    assert s.rate == 1.0
    assert s.alignments[0].pairs == [("a", None, "D"), ("b", None, "D"), ("c", None, "D")]


def test_empty_reference_counts_insertions_in_corpus():
    s = error_rate([[], ["a", "b"]], [["x", "y"], ["a", "b"]])
    assert (s.ins, s.ref_len) == (2, 2)
    assert s.rate == 1.0  # 2 insertions over the 2 reference tokens of the corpus


def test_all_empty_references():
    assert error_rate([[]], [[]]).rate == 0.0
    s = error_rate([[]], [["x"]])
    assert math.isinf(s.rate)
    assert s.to_dict()["rate"] is None
    assert error_rate([], []).rate == 0.0


def test_mismatched_lengths_and_strings_rejected():
    with pytest.raises(ValueError, match="pair up"):
        error_rate([["a"]], [])
    with pytest.raises(TypeError):
        error_rate(["a b"], ["a b"])


def test_counts_sum_to_edit_distance_on_random_pairs():
    rng = random.Random(0)
    vocab = list("abcde")
    for _ in range(200):
        ref = [rng.choice(vocab) for _ in range(rng.randint(0, 9))]
        hyp = [rng.choice(vocab) for _ in range(rng.randint(0, 9))]
        a = align(ref, hyp)
        assert a.errors == editdistance.eval(ref, hyp)
        assert [p[0] for p in a.pairs if p[0] is not None] == ref
        assert [p[1] for p in a.pairs if p[1] is not None] == hyp
        assert a.ref_len - a.dele + a.ins == len(hyp)


def test_normalize_tokens():
    assert normalize_tokens(["<SIL>", "AH", "b", "<SIL>"]) == ["AH", "b"]
    assert normalize_tokens(["The", "Cat"], lower=True) == ["the", "cat"]


def test_write_alignments(tmp_path):
    s = error_rate([["a", "b"], []], [["a"], ["z"]])
    p = write_alignments(tmp_path / "x.align", s, ids=["u1", "u2"], name="PER")
    text = p.read_text()
    assert text.startswith("# PER 100.00% = 2/2")
    assert "id: u1" in text and "REF: a b" in text and "HYP: a ***" in text
    assert "OP:  C D" in text
    with pytest.raises(ValueError):
        write_alignments(tmp_path / "y", s, ids=["only-one"])


def test_score_files_with_empty_lines_and_mismatch(tmp_path):
    from wav2vec_u.decode.decode import read_token_lines
    from wav2vec_u.metrics import score_files

    hyp, ref = tmp_path / "hyp.phn", tmp_path / "ref.phn"
    hyp.write_text("a <SIL> b\n\n")   # second hypothesis empty
    ref.write_text("a b\nc d\n")
    out = score_files(hyp, ref, align=tmp_path / "a.txt", json_out=tmp_path / "s.json")
    assert (out["errors"], out["del"], out["ref_len"]) == (2, 2, 4)
    assert read_token_lines(hyp) == [["a", "<SIL>", "b"], []]
    (tmp_path / "h.wrd").write_text("The Cat\n")
    (tmp_path / "r.wrd").write_text("the cat\n")
    assert score_files(tmp_path / "h.wrd", tmp_path / "r.wrd", words=True)["errors"] == 0
    ref.write_text("a b\n")
    with pytest.raises(ValueError, match="same utterances"):
        score_files(hyp, ref)
    with pytest.raises(FileNotFoundError):
        score_files(tmp_path / "nope", ref)


def test_word_scoring_normalises_like_the_text_side():
    """Raw references keep case and punctuation; a hypothesis in prepare-text's normalisation that
    says the same words scores 0.0% WER (it scored 0.7% when only lower-casing)."""
    from wav2vec_u.metrics import normalize_words
    from wav2vec_u.text.normalize import normalize_line

    raw = [["Hello,", "World!", "<SIL>"], ["It’s", "the", "cat's", "hat."], ["\"Well", "--", "we'll", "see\""]]
    hyp = [normalize_line(" ".join(t for t in r if t != "<SIL>")).split() for r in raw]
    assert normalize_words(raw[0]) == ["hello", "world"] and hyp[1] == ["it's", "the", "cat's", "hat"]
    assert error_rate([normalize_words(r) for r in raw], [normalize_words(h) for h in hyp]).rate == 0.0
    assert error_rate([[t.lower() for t in r if t != "<SIL>"] for r in raw], hyp).rate > 0  # the old way
