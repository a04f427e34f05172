"""KenLM phone and word LMs: built with lmplz/build_binary, queried with the kenlm module."""

import json
import random
from pathlib import Path

import pytest

from wav2vec_u.text.lm import KenLMNotFound, NgramLM, build_lm, check_prune, find_kenlm_binary, kenlm_tools_available, oov_count

REPO = Path(__file__).resolve().parent.parent

HAVE_KENLM = kenlm_tools_available()
needs_lmplz = pytest.mark.skipif(not HAVE_KENLM, reason="KenLM lmplz/build_binary not built: run scripts/setup.sh")


@pytest.fixture(scope="module")
def phone_sentences():
    from wav2vec_u.text.normalize import normalize_line
    from wav2vec_u.text.phonemize import phonemize

    lines = (REPO / "data" / "sentences" / "en.txt").read_text(encoding="utf-8").splitlines()[:1600]
    words = phonemize([normalize_line(s) for s in lines], "en-us")
    return [[p for w in s for p in w] for s in words]


@needs_lmplz
def test_phone_lm_prefers_real_phone_order_to_shuffled(tmp_path, phone_sentences):
    train, held = phone_sentences[:1400], phone_sentences[1400:]
    text = tmp_path / "phones.txt"
    text.write_text("".join(" ".join(s) + "\n" for s in train), encoding="utf-8")
    meta = build_lm(text, tmp_path / "lm.phones.4", order=4)
    assert (tmp_path / "lm.phones.4.arpa").is_file() and (tmp_path / "lm.phones.4.bin").is_file()
    assert meta["ngram_counts"][4] > 0 and "--discount_fallback" in meta["commands"][0]
    assert json.loads((tmp_path / "lm.phones.4.meta.json").read_text())["order"] == 4

    rng = random.Random(0)
    shuffled = [rng.sample(s, len(s)) for s in held]  # same phones, same lengths, order destroyed
    for path in ("lm.phones.4.bin", "lm.phones.4.arpa"):
        lm = NgramLM(tmp_path / path)
        ppl_held, ppl_shuf = lm.perplexity(held), lm.perplexity(shuffled)
        assert ppl_held < 0.6 * ppl_shuf, (ppl_held, ppl_shuf)
        assert oov_count(lm, held) == 0


@needs_lmplz
def test_score_includes_end_of_sentence_and_counts_oov(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("a b c\na b\nb c a\n" * 5, encoding="utf-8")
    build_lm(text, tmp_path / "lm", order=3, binary=False)
    lm = NgramLM(tmp_path / "lm.arpa")
    with_eos = lm.score(["a", "b"])
    without = lm.score(["a", "b"], eos=False)
    full = sum(prob for prob, _, _ in lm.model.full_scores("a b"))
    assert with_eos == pytest.approx(full) and with_eos < without
    assert lm.oov_count(["a", "zz", "b", "yy"]) == 2
    assert lm.perplexity([["a", "b"]]) == pytest.approx(10 ** (-with_eos / 3))


@needs_lmplz
def test_tiny_corpus_high_order_and_pruning(tmp_path):
    # Without --discount_fallback lmplz fails on tiny text (BadDiscountException).
    text = tmp_path / "w.txt"
    text.write_text("the cat sat\nthe dog sat\n", encoding="utf-8")
    meta = build_lm(text, tmp_path / "w", order=4, prune=[0, 0, 0, 3])
    assert "--prune 0 0 0 3" in meta["commands"][0]
    assert NgramLM(tmp_path / "w.bin").score(["the", "cat", "sat"]) < 0


def test_prune_and_input_checks(tmp_path):
    assert check_prune([0, 0, 1, 1], 4) == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="unigrams"):
        check_prune([1, 1], 4)
    with pytest.raises(ValueError, match="decrease"):
        check_prune([0, 2, 1], 4)
    with pytest.raises(ValueError, match="at most 2"):
        check_prune([0, 0, 0], 2)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        build_lm(empty, tmp_path / "lm", order=3)
    with pytest.raises(FileNotFoundError, match="prepare-text"):
        NgramLM(tmp_path / "missing.bin")


def test_missing_binaries_name_the_setup_script(tmp_path, monkeypatch):
    import wav2vec_u.text.lm as lm

    monkeypatch.setenv("KENLM_BIN", str(tmp_path))
    monkeypatch.setattr(lm, "CACHE_BIN", tmp_path / "nothing")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KenLMNotFound, match="scripts/setup.sh"):
        find_kenlm_binary("lmplz")


@needs_lmplz
def test_pure_python_arpa_scorer_matches_kenlm(tmp_path, phone_sentences):
    """The fallback used where the kenlm module is missing gives KenLM's scores, OOVs included."""
    import kenlm

    from wav2vec_u.text.lm import ArpaModel

    text = tmp_path / "phones.txt"
    text.write_text("".join(" ".join(s) + "\n" for s in phone_sentences[:800]), encoding="utf-8")
    build_lm(text, tmp_path / "lm", order=4, prune=[0, 0, 1], binary=False)
    ref, ours = kenlm.Model(str(tmp_path / "lm.arpa")), ArpaModel(tmp_path / "lm.arpa")
    rng = random.Random(0)
    held = [" ".join(s) for s in phone_sentences[800:860]]
    odd = [" ".join(rng.sample(s, len(s))) for s in phone_sentences[860:880]]  # unseen n-grams: backoffs
    oov = ["a ZZZ b", "QQ", ""]
    for sent in held + odd + oov:
        for bos, eos in ((True, True), (False, True), (True, False)):
            assert ours.score(sent, bos=bos, eos=eos) == pytest.approx(ref.score(sent, bos=bos, eos=eos), abs=1e-4), sent


def test_load_lm_falls_back_to_the_arpa_file_without_kenlm(tmp_path, monkeypatch):
    import builtins

    from wav2vec_u.text.lm import ArpaModel
    from wav2vec_u.train.selection import load_lm

    arpa = tmp_path / "lm.phones.4.arpa"
    arpa.write_text("\\data\\\nngram 1=3\nngram 2=1\n\n\\1-grams:\n-1.0\t<s>\t-0.5\n-0.3\ta\t-0.2\n-0.7\t</s>\n\n"
                    "\\2-grams:\n-0.1\t<s> a\n\n\\end\\\n")
    (tmp_path / "lm.phones.4.bin").write_bytes(b"not read")
    real_import = builtins.__import__

    def no_kenlm(name, *a, **k):
        if name == "kenlm":
            raise ImportError("no kenlm")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_kenlm)
    lm = load_lm(tmp_path / "lm.phones.4.bin")
    assert isinstance(lm, ArpaModel)
    assert lm.score("a", bos=True, eos=True) == pytest.approx(-0.1 + -0.2 + -0.7)  # p(a|<s>) + bo(a) + p(</s>)
    assert lm.score("a", bos=False, eos=False) == pytest.approx(-0.3)
    arpa.unlink()
    with pytest.raises(FileNotFoundError, match="pip install kenlm"):
        load_lm(tmp_path / "lm.phones.4.bin")
