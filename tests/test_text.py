"""`w2vu prepare-text`: phones, silences, dictionary, lexicon and LMs from unpaired text."""

import json
from collections import Counter
from pathlib import Path

import pytest

from wav2vec_u.config import load_config
from wav2vec_u.text.config import TextConfig
from wav2vec_u.text.dictionary import PhoneDictionary
from wav2vec_u.text.lexicon import read_lexicon
from wav2vec_u.text.lm import kenlm_tools_available
from wav2vec_u.text.prepare import prepare_text
from wav2vec_u.text.silence import SIL

REPO = Path(__file__).resolve().parent.parent
HAVE_KENLM = kenlm_tools_available()
needs_lmplz = pytest.mark.skipif(not HAVE_KENLM, reason="KenLM lmplz/build_binary not built: run scripts/setup.sh")


def no_lm(**over) -> TextConfig:
    """Defaults without LMs and in one process (fast), plus dotted overrides."""
    return load_config(TextConfig, None, ["lm.build=false", "phonemize.njobs=1", *[f"{k}={v}" for k, v in over.items()]])


def shipped(lang: str, n: int, tmp_path: Path) -> Path:
    lines = (REPO / "data" / "sentences" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()[:n]
    path = tmp_path / f"{lang}.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines()]


def test_phones_equal_phonemizer(tmp_path):
    from phonemizer import phonemize
    from phonemizer.separator import Separator

    sentences = ["The quick brown fox jumps over the lazy dog.", "She sells sea shells by the sea shore!",
                 "In the beginning, God created the heavens and the earth."]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    prepare_text(src, tmp_path / "out", no_lm(), lang="en-us", progress=False)
    ours = read_lines(tmp_path / "out" / "phones.nosil.txt")
    # phonemizer called directly, with its own normalisation of case and punctuation
    ref = phonemize([s.lower() for s in sentences], language="en-us", backend="espeak", strip=True,
                    separator=Separator(phone=" ", word=" | ", syllable=""), with_stress=False,
                    preserve_punctuation=False, language_switch="remove-flags")
    assert ours == [r.replace("|", " ").split() for r in ref]
    with_sil = read_lines(tmp_path / "out" / "phones.txt")
    assert [[p for p in s if p != SIL] for s in with_sil] == ours
    assert all(s[0] == SIL and s[-1] == SIL for s in with_sil)
    assert (tmp_path / "out" / "words.txt").read_text(encoding="utf-8").splitlines()[0] == \
        "the quick brown fox jumps over the lazy dog"


@needs_lmplz
@pytest.mark.parametrize("lang,code", [("en", "en-us"), ("es", "es")])
def test_shipped_sentences_give_every_output_and_rerun_does_nothing(tmp_path, lang, code):
    from wav2vec_u.text.lm import NgramLM

    src = shipped(lang, 400, tmp_path)
    out = tmp_path / "out"
    meta = prepare_text(src, out, lang=code, progress=False)
    for name in ("phones.txt", "phones.nosil.txt", "words.txt", "dict.phn.txt", "lexicon.lst", "oov.txt",
                 "phones.summary.tsv", "lm.phones.4.arpa", "lm.phones.4.bin", "lm.words.4.arpa", "lm.words.4.bin",
                 "lm.phones.4.meta.json", "lm.words.4.meta.json", "meta.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0 or name == "oov.txt", name
    assert not [p.name for p in out.iterdir() if p.name.startswith(".work")]
    meta_file = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta_file["lang"] == code and meta_file["espeak_version"] and meta_file["phonemizer_version"]
    assert meta_file["input_sha256"] and meta_file["counts"]["sentences"] == len(read_lines(out / "words.txt"))
    assert "lmplz" in meta_file["lms"]["words"]["commands"][0] and "--prune 0 0 0 3" in meta_file["lms"]["words"]["commands"][0]
    assert meta_file["lms"]["phones"]["kenlm_version"] != "unknown"

    d = PhoneDictionary.load(out / "dict.phn.txt")
    phones = read_lines(out / "phones.txt")
    counts = Counter(p for s in phones for p in s)
    assert set(d.symbols) == set(counts) and d.symbols[-1] == SIL
    assert all(counts[s] == c for s, c in zip(d.symbols, d.counts))
    lexicon = read_lexicon(out / "lexicon.lst")
    words = {w for s in read_lines(out / "words.txt") for w in s}
    assert words == set(lexicon)
    assert 0.15 < meta["counts"]["sil_gap_rate"] < 0.35
    lm = NgramLM(out / "lm.phones.4.bin")
    assert lm.oov_count(phones[0]) == 0 and lm.score(phones[0]) < 0
    assert NgramLM(out / "lm.words.4.bin").oov_count(read_lines(out / "words.txt")[0]) == 0

    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    again = prepare_text(src, out, lang=code, progress=False)
    assert again == meta_file
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == before
    # another option: the work is redone, and the sentence phonemes come from the cache
    changed = prepare_text(src, out, lang=code, sil_prob=0.5, progress=False)
    assert changed["phonemize_chunks"]["cached_chunks"] == changed["phonemize_chunks"]["chunks"]
    assert changed["counts"]["sil_gap_rate"] > meta["counts"]["sil_gap_rate"]


def test_unknown_language_fails_clearly_and_writes_nothing(tmp_path, capsys):
    from wav2vec_u.cli import main

    src = tmp_path / "in.txt"
    src.write_text("hello world\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["prepare-text", str(src), str(out), "--lang", "xx-nowhere"]) == 2
    err = capsys.readouterr().err
    assert "unknown language code 'xx-nowhere'" in err and "espeak-ng" in err
    assert not out.exists()


def test_non_utf8_input_fails_naming_line_and_offset(tmp_path, capsys):
    from wav2vec_u.cli import main

    src = tmp_path / "latin1.txt"
    src.write_bytes("first line\nsecond café\n".encode("latin-1"))
    out = tmp_path / "out"
    assert main(["prepare-text", str(src), str(out), "--lang", "en-us"]) == 2
    err = capsys.readouterr().err
    assert "latin1.txt" in err and "not UTF-8 at line 2" in err and "byte offset 21" in err
    assert not out.exists()


def test_failure_midway_leaves_previous_outputs_intact(tmp_path, monkeypatch):
    import wav2vec_u.text.prepare as prep

    src = tmp_path / "in.txt"
    src.write_text("one small step\nfor a man\n", encoding="utf-8")
    out = tmp_path / "out"
    prepare_text(src, out, no_lm(), progress=False)
    old = (out / "phones.txt").read_text(encoding="utf-8")

    def boom(*a, **k):
        raise RuntimeError("killed while writing the dictionary")

    monkeypatch.setattr(prep.PhoneDictionary, "save", boom)
    src.write_text("giant leap\nfor mankind\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        prepare_text(src, out, no_lm(), progress=False)
    assert (out / "phones.txt").read_text(encoding="utf-8") == old
    assert not [p.name for p in out.iterdir() if p.name.startswith(".work")]


def test_normalisation_filters_and_dedup(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("Hello there, world.\nhello THERE world!\n\nIt cost 5 dollars.\nNaïve café owner.\nOk.\n",
                   encoding="utf-8")
    cfg = no_lm(**{"normalize.digits": "drop_sentence", "filter.charset": "a-z'", "filter.min_words": 2})
    meta = prepare_text(src, tmp_path / "out", cfg, progress=False)
    assert (tmp_path / "out" / "words.txt").read_text(encoding="utf-8") == "hello there world\n"
    assert meta["counts"]["dropped"] == {"duplicate": 1, "empty": 1, "digits": 1, "charset": 1, "too_short": 1}


def test_user_lexicon_reports_unknown_words(tmp_path):
    lex = tmp_path / "lex.tsv"
    lex.write_text("the\tð ə\ncat\tk æ t\nsat\ts æ t\ndog\td ɒ ɡ\n", encoding="utf-8")
    src = tmp_path / "in.txt"
    src.write_text("The cat sat.\nThe dog sat.\nThe zebra sat.\nA zebra!\n", encoding="utf-8")
    out = tmp_path / "out"
    meta = prepare_text(src, out, no_lm(), lang="xx-own", lexicon=lex, progress=False)
    assert read_lines(out / "phones.nosil.txt") == [["ð", "ə", "k", "æ", "t", "s", "æ", "t"],
                                                     ["ð", "ə", "d", "ɒ", "ɡ", "s", "æ", "t"]]
    assert (out / "oov.txt").read_text(encoding="utf-8") == "zebra\t2\na\t1\n"
    assert meta["counts"]["dropped"] == {"oov": 2} and meta["phones_from"] == "lexicon"
    assert set(read_lexicon(out / "lexicon.lst")) == {"the", "cat", "sat", "dog"}


def test_rare_phones_dropped_with_their_sentences_or_mapped(tmp_path):
    lex = tmp_path / "lex.tsv"
    lex.write_text("aa\ta\nab\ta b\nba\tb a\nzz\tz\n", encoding="utf-8")
    src = tmp_path / "in.txt"
    src.write_text("aa ab\nba aa\nzz aa\n", encoding="utf-8")
    cfg = no_lm(**{"phones.min_count": 2, "phones.count_over": "corpus"})
    meta = prepare_text(src, tmp_path / "drop", cfg, lexicon=lex, progress=False)
    assert meta["counts"]["rare_phones"] == ["z"] and meta["counts"]["dropped"] == {"rare_phone": 1}
    assert "zz" not in read_lexicon(tmp_path / "drop" / "lexicon.lst")
    assert PhoneDictionary.load(tmp_path / "drop" / "dict.phn.txt").symbols == ["a", "b", SIL]
    summary = (tmp_path / "drop" / "phones.summary.tsv").read_text(encoding="utf-8").splitlines()
    assert summary[0].startswith("phone\tcount") and any(r.startswith("z\t1\t") and r.endswith("dropped") for r in summary)

    cfg = no_lm(**{"phones.min_count": 2, "phones.count_over": "corpus", "phones.rare": "map", "phones.map_to": "a"})
    prepare_text(src, tmp_path / "map", cfg, lexicon=lex, progress=False)
    assert read_lines(tmp_path / "map" / "phones.nosil.txt")[2] == ["a", "a"]


def test_interrupted_run_resumes_from_cached_chunks(tmp_path):
    from wav2vec_u.text.phonemize import phonemize_corpus
    from wav2vec_u.text.normalize import normalize_line

    src = shipped("en", 120, tmp_path)
    out = tmp_path / "out"
    sentences = [normalize_line(s) for s in src.read_text(encoding="utf-8").splitlines()]
    # as if the first two chunks were done when the run was killed
    phonemize_corpus(sentences[:80], "en-us", out / ".cache" / "phonemize", njobs=1, chunk_size=40, progress=False)
    meta = prepare_text(src, out, no_lm(**{"phonemize.chunk_size": 40}), progress=False)
    assert meta["phonemize_chunks"] == {"chunks": 3, "cached_chunks": 2}


def test_parallel_phonemisation_matches_serial(tmp_path):
    from wav2vec_u.text.normalize import normalize_line
    from wav2vec_u.text.phonemize import phonemize, phonemize_corpus

    lines = (REPO / "data" / "sentences" / "es.txt").read_text(encoding="utf-8").splitlines()[:60]
    sentences = [normalize_line(s) for s in lines]
    par, stats = phonemize_corpus(sentences, "es", tmp_path / "c", njobs=2, chunk_size=20, progress=False)
    assert stats == {"chunks": 3, "cached_chunks": 0}
    assert par == phonemize(sentences, "es")


@pytest.mark.slow
@needs_lmplz
@pytest.mark.parametrize("lang,code", [("en", "en-us"), ("es", "es")])
def test_full_shipped_files(tmp_path, lang, code):
    meta = prepare_text(REPO / "data" / "sentences" / f"{lang}.txt", tmp_path / "out", lang=code, progress=False)
    assert meta["counts"]["sentences"] > 11_000 and meta["counts"]["oov_words"] == 0


def test_lines_in_another_script_are_dropped_and_reported(tmp_path):
    """espeak-ng reads Cyrillic, CJK and Arabic letters in English text by name ("chinese letter"):
    such lines are dropped before phonemisation and listed with their line numbers."""
    src = tmp_path / "mixed.txt"
    src.write_text("the cat sat\nпривет мир\nthe dog ran\n中文字\nمرحبا بالعالم\na cat and a dog\n",
                   encoding="utf-8")
    meta = prepare_text(src, tmp_path / "out", lang="en-us", progress=False)
    assert meta["counts"]["dropped"]["foreign_script"] == 3
    report = (tmp_path / "out" / "foreign_script.tsv").read_text(encoding="utf-8").splitlines()
    assert [r.split("\t")[:2] for r in report[1:]] == [["2", "CYRILLIC"], ["4", "CJK"], ["5", "ARABIC"]]
    words = {w for line in read_lines(tmp_path / "out" / "words.txt") for w in line}
    assert words == {"the", "cat", "sat", "dog", "ran", "a", "and"}
    # a language keeps the letters of its own script
    from wav2vec_u.text.normalize import foreign_scripts
    assert foreign_scripts("привет", "ru") == set() and foreign_scripts("niño", "es") == set()
