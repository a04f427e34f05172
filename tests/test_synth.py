"""w2vu synth: disjoint sentence choice, seeded voices, audio + manifest + phones + words + timings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from wav2vec_u.audio.manifest import read_manifest
from wav2vec_u.config import ConfigError
from wav2vec_u.synth.corpus import SynthConfig, align_timings, draw_voices, split_sentences, synthesize_corpus
from wav2vec_u.text.normalize import normalize_line
from wav2vec_u.text.phonemize import phonemize

REPO = Path(__file__).resolve().parent.parent
EN = REPO / "data" / "sentences" / "en.txt"
ES = REPO / "data" / "sentences" / "es.txt"


def test_shipped_sentence_files():
    for path in (EN, ES):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) >= 5000, path
        norms = [normalize_line(x) for x in lines]
        assert len(set(norms)) == len(norms), f"{path}: duplicate lines after normalisation"
        assert all(4 <= len(n.split()) <= 25 for n in norms), path
        assert not any("<" in x or ">" in x for x in lines), f"{path}: markup left"
    assert EN.stat().st_size + ES.stat().st_size < 4_000_000


def test_split_is_disjoint_after_normalisation_and_seeded():
    # duplicates that differ only in case and punctuation must not land on both sides
    sents = [f"Sentence number {w}." for w in "one two three four five six seven eight".split()]
    sents += [s.upper().replace(".", "!") for s in sents] + ["", "  "]
    spoken, unpaired = split_sentences(sents, 3, -1, seed=5)
    spoken_norm = {norm for _, norm in spoken}
    assert len(spoken) == 3 and len(unpaired) == 5
    assert not spoken_norm & {normalize_line(u) for u in unpaired}
    assert split_sentences(sents, 3, -1, seed=5) == (spoken, unpaired)
    assert split_sentences(sents, 3, -1, seed=6) != (spoken, unpaired)
    assert len(split_sentences(sents, 3, 2, seed=5)[1]) == 2
    with pytest.raises(ValueError, match="distinct sentences"):
        split_sentences(sents, 7, 2, seed=5)


def test_draw_voices_seeded_and_validated():
    cfg = SynthConfig(lang="en-us")
    cfg.voice.num_variants = 3
    a = draw_voices(50, cfg, None, np.random.default_rng(0))
    b = draw_voices(50, cfg, None, np.random.default_rng(0))
    assert a == b
    assert len({v["variant"] for v in a}) == 3
    assert all(cfg.voice.rate[0] <= v["rate"] <= cfg.voice.rate[1] for v in a)
    assert all(v["voice"] == f"en-us+{v['variant']}" for v in a)
    with pytest.raises(ValueError, match="no voice variant"):
        draw_voices(1, _cfg_with(["m3", "nosuch"]), ["m3", "f1"], np.random.default_rng(0))
    bad = SynthConfig()
    bad.voice.rate = (300, 100)
    with pytest.raises(ValueError, match="voice.rate"):
        draw_voices(1, bad, None, np.random.default_rng(0))


def _cfg_with(variants):
    cfg = SynthConfig()
    cfg.voice.variants = variants
    return cfg


def test_align_timings_never_invents_times():
    spans = [("h", 0.0, 0.1), ("ˈə", 0.1, 0.2), ("l", 0.2, 0.3), ("oʊ", 0.3, 0.5)]
    times, status, cov = align_timings(["h", "ə", "l", "oʊ"], spans)
    assert status == "exact" and cov == 1.0 and times[1] == [0.1, 0.2]
    times, status, cov = align_timings(["h", "ɛ", "l", "oʊ"], spans)  # one phone differs
    assert status == "partial" and times[1] is None and times[3] == [0.3, 0.5] and cov == 0.75
    times, status, cov = align_timings(["h", "ə"], None)
    assert status == "unavailable" and times == [None, None] and cov == 0.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    cfg = SynthConfig(lang="en-us", num_train=6, num_valid=2, num_unpaired=300, seed=3, workers=2, batch_size=3)
    summary = synthesize_corpus(EN, out, cfg, progress=False)
    return out, cfg, summary


def test_corpus_files_agree(corpus):
    out, cfg, summary = corpus
    for split, n in (("train", cfg.num_train), ("valid", cfg.num_valid)):
        root, entries = read_manifest(out / f"{split}.tsv")
        assert root == out.resolve() and len(entries) == n
        words = (out / f"{split}.wrd").read_text(encoding="utf-8").splitlines()
        phones = (out / f"{split}.phn").read_text(encoding="utf-8").splitlines()
        records = [json.loads(x) for x in (out / f"{split}.timings.jsonl").read_text(encoding="utf-8").splitlines()]
        assert len(words) == len(phones) == len(records) == n
        # reference phones = what the text side computes for the same sentence
        expected = [" ".join(p for w in s for p in w) for s in phonemize(words, cfg.lang)]
        assert phones == expected
        assert all("<SIL>" not in p for p in phones)
        for (rel, nsamp), rec, w in zip(entries, records, words):
            wav, sr = sf.read(root / rel, dtype="float32", always_2d=True)
            assert sr == 16000 and wav.shape == (nsamp, 1)
            assert 0.3 < nsamp / sr < 15 and np.abs(wav).max() > 0.05
            assert w == normalize_line(w) and rec["text"] == w
            assert rec["path"] == rel and rec["voice"].startswith("en-us+")
            # edge silence trimmed: the first and last 20 ms are not the quiet part of a long pause
            assert np.abs(wav[:2000]).max() > 1e-3 and np.abs(wav[-2000:]).max() > 1e-3
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 3 and meta["summary"]["num_unpaired"] == 300


def test_corpus_timings_monotonic_and_inside_audio(corpus):
    out, _, summary = corpus
    assert summary["timing_status"].get("exact", 0) >= 6, summary["timing_status"]
    for line in (out / "train.timings.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        assert len(rec["timings"]) == len(rec["phones"])
        known = [t for t in rec["timings"] if t is not None]
        if rec["timing_status"] == "exact":
            assert len(known) == len(rec["phones"])
        starts = [t[0] for t in known]
        assert starts == sorted(starts)
        assert all(0 <= s <= e <= rec["duration"] + 1e-6 for s, e in known)
        # the phones cover most of the trimmed audio (margins and pauses are the rest)
        if known:
            assert known[-1][1] - known[0][0] > 0.6 * rec["duration"]


def test_timings_line_up_with_the_audio(corpus):
    """Vowels are louder than voiceless consonants *at the recorded times*, and less so when shifted."""
    out, _, _ = corpus
    vowels, voiceless = set("aeiouæɑɔəɛɪʊʌɜɚᵻ"), {"s", "f", "θ", "h", "p", "t", "k", "ʃ"}

    def contrast(shift: float) -> float:
        level = {"v": [], "u": []}
        for line in (out / "train.timings.jsonl").read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            wav, sr = sf.read(out / rec["path"])
            for phone, t in zip(rec["phones"], rec["timings"]):
                kind = "v" if phone[0] in vowels else "u" if phone in voiceless else None
                if t is None or kind is None:
                    continue
                a, b = max(0, int((t[0] + shift) * sr)), min(len(wav), int((t[1] + shift) * sr))
                if b - a >= 80:
                    level[kind].append(10 * np.log10(np.mean(wav[a:b] ** 2) + 1e-10))
        return float(np.mean(level["v"]) - np.mean(level["u"]))

    at_zero = contrast(0.0)
    assert at_zero > 8.0, at_zero  # measured ~14 dB on 200 utterances
    assert at_zero > contrast(-0.08) + 4 and at_zero > contrast(0.08) + 4


def test_unpaired_text_is_disjoint(corpus):
    out, _, _ = corpus
    unpaired = (out / "unpaired.txt").read_text(encoding="utf-8").splitlines()
    spoken = set((out / "train.wrd").read_text().splitlines()) | set((out / "valid.wrd").read_text().splitlines())
    assert len(unpaired) == 300
    assert not {normalize_line(u) for u in unpaired} & spoken


def test_same_seed_same_audio_whatever_the_workers(corpus, tmp_path):
    out, cfg, _ = corpus
    cfg1 = SynthConfig(lang="en-us", num_train=6, num_valid=2, num_unpaired=300, seed=3, workers=1, batch_size=3)
    synthesize_corpus(EN, tmp_path, cfg1, progress=False)
    for split in ("train", "valid"):
        _, a = read_manifest(out / f"{split}.tsv")
        _, b = read_manifest(tmp_path / f"{split}.tsv")
        assert a == b
        for rel, _ in a:
            assert (out / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_spanish_corpus(tmp_path):
    cfg = SynthConfig(lang="es", num_train=2, num_valid=0, num_unpaired=10, seed=1)
    synthesize_corpus(ES, tmp_path, cfg, progress=False)
    words = (tmp_path / "train.wrd").read_text(encoding="utf-8").splitlines()
    phones = (tmp_path / "train.phn").read_text(encoding="utf-8").splitlines()
    assert phones == [" ".join(p for w in s for p in w) for s in phonemize(words, "es")]


def test_cli_program_backend_gives_audio_without_timings(tmp_path):
    cfg = SynthConfig(lang="en-us", num_train=2, num_valid=0, num_unpaired=5, seed=1, backend="cli")
    summary = synthesize_corpus(EN, tmp_path, cfg, progress=False)
    assert summary["timing_status"] == {"unavailable": 2}
    root, entries = read_manifest(tmp_path / "train.tsv")
    for (rel, n), line in zip(entries, (tmp_path / "train.timings.jsonl").read_text().splitlines()):
        rec = json.loads(line)
        assert rec["engine"] == "cli" and rec["timings"] == [None] * len(rec["phones"]) and rec["pitch_range"] is None
        assert sf.info(str(root / rel)).frames == n and n > 8000


def test_cli_runs_skips_rerun_and_rejects_bad_keys(tmp_path, capsys):
    from wav2vec_u.cli import main

    sents = tmp_path / "s.txt"
    sents.write_text("\n".join(EN.read_text(encoding="utf-8").splitlines()[:40]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["synth", str(sents), str(out), "--num-train", "2", "--num-valid", "1", "--num-unpaired", "5",
            "--no-wandb", "--no-progress", "voice.num_variants=2", "voice.rate=[120,140]"]
    assert main(args) == 0
    for name in ("train.tsv", "valid.tsv", "train.phn", "train.wrd", "unpaired.txt", "config.yaml", "meta.json",
                 "synth.log"):
        assert (out / name).is_file(), name
    assert "rate:\n  - 120\n  - 140" in (out / "config.yaml").read_text()
    stamp = (out / "train.tsv").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "train.tsv").stat().st_mtime_ns == stamp  # up to date: nothing rewritten
    assert main(args[:-1] + ["voice.rate=[120,150]"]) == 0
    assert (out / "train.tsv").stat().st_mtime_ns != stamp  # option changed: recomputed
    assert main(["synth", str(sents), str(tmp_path / "o2"), "voice.rat=[1,2]"]) == 2
    assert "voice.rat" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "missing.txt"), str(tmp_path / "o3")]) == 2
    assert main(["synth", str(sents), str(tmp_path / "o4"), "--num-train", "100", "--num-unpaired", "0"]) == 2
    assert "distinct sentences" in capsys.readouterr().err


def test_config_rejects_unknown_backend():
    from wav2vec_u.config import load_config

    with pytest.raises(ConfigError, match="backend"):
        load_config(SynthConfig, None, ["backend=festival"])
