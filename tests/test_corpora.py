"""Public corpora read in their own layouts (TIMIT, LibriSpeech, MLS) and one's own labelled audio,
on fabricated trees: the published TIMIT counts, the shipped lists, layout errors naming the
file (and nothing written), odd files left out, and own transcripts reaching a scorable split."""

import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from toys import librispeech_tree, mls_tree, timit_tree, write_audio
from wav2vec_u.audio.corpora import TIMIT_COUNTS, fold_timit, timit_folding, timit_speakers
from wav2vec_u.audio.manifest import read_manifest
from wav2vec_u.cli import main
from wav2vec_u.tokens import read_token_lines

NO = ["--no-progress"]


# ------------------------------------------------------------------------------- shipped data

def test_shipped_timit_lists_match_the_published_counts():
    core = [r.split("\t") for r in
            Path(__file__).resolve().parents[1].joinpath("data/timit/core_test_speakers.txt").read_text().splitlines()
            if r and not r.startswith("#")]
    assert len(core) == 24 and len({s for _, s in core}) == 24
    per_region = Counter(r for r, _ in core)
    assert sorted(per_region) == [f"DR{i}" for i in range(1, 9)] and set(per_region.values()) == {3}
    # 2 male, 1 female per region (the first letter of a TIMIT speaker id is the sex)
    assert all(sorted(s[0] for r2, s in core if r2 == r) == ["F", "M", "M"] for r in per_region)
    core_ids, dev = set(timit_speakers("core_test")), timit_speakers("dev")
    assert core_ids == {s for _, s in core}
    assert len(dev) == 50 == len(set(dev)) and not core_ids & set(dev)
    assert 24 * 8 == TIMIT_COUNTS["test"] and 50 * 8 == TIMIT_COUNTS["valid"]


def test_timit_folding_61_to_39():
    fold = timit_folding()
    assert len(fold) == 61
    classes = {c for c in fold.values() if c}
    assert len(classes) == 39 and "sil" in classes
    assert fold["q"] == "" and fold["ao"] == "aa" and fold["zh"] == "sh" and fold["ix"] == "ih"
    assert {k for k, v in fold.items() if v == "sil"} == {"bcl", "dcl", "gcl", "pcl", "tcl", "kcl", "h#", "pau", "epi"}
    # closures become sil; a sil run (epi + closure) is one sil; q disappears
    assert fold_timit(["h#", "q", "ix", "tcl", "t", "epi", "pcl", "p", "h#"], fold) == \
        ["sil", "ih", "sil", "t", "sil", "p", "sil"]


# ------------------------------------------------------------------------- the full TIMIT tree

def _full_timit_speakers():
    """TIMIT's 630 speakers: the real core test and dev lists, invented names for the others."""
    core = [(f"DR{i // 3 + 1}", s) for i, s in enumerate(sorted(timit_speakers("core_test"),
                                                                   key=lambda s: s))]
    dev = [(f"DR{i % 8 + 1}", s) for i, s in enumerate(timit_speakers("dev"))]
    other_test = [(f"DR{i % 8 + 1}", f"MXT{i:02d}") for i in range(168 - 24 - 50)]
    train = [(f"DR{i % 8 + 1}", f"{'FM'[i % 2]}Z{i:03d}") for i in range(462)]
    return {"TRAIN": train, "TEST": core + dev + other_test}


def test_a_complete_timit_tree_gives_the_published_counts(tmp_path):
    root = tmp_path / "TIMIT"
    timit_tree(root, _full_timit_speakers(), utts=8, spoken=False)  # 6,300 tiny SPHERE files
    out = tmp_path / "corpus"
    assert main(["import-corpus", "timit", str(root), str(out), *NO]) == 0
    for split, n in TIMIT_COUNTS.items():
        assert len(read_manifest(out / f"{split}.tsv")[1]) == n == len(read_token_lines(out / f"{split}.phn"))
    ids = (out / "test.ids").read_text().split()
    assert len({i.split("_")[0] for i in ids}) == 24 and not any("_SA" in i for i in ids)
    from wav2vec_u.io import read_json

    meta = read_json(out / "meta.json")
    assert meta["counts_check"]["published_counts"] == "match" and meta["skipped"] == {
        "SA sentence (read by every speaker; left out as usual)": 1260}
    assert len((out / "text.txt").read_text().splitlines()) == 3696  # matched: every training utterance

    unmatched = tmp_path / "unmatched"
    assert main(["import-corpus", "timit", str(root), str(unmatched), "setting=unmatched", *NO]) == 0
    audio_ids = (unmatched / "train.ids").read_text().split()
    text_lines = (unmatched / "text.txt").read_text().splitlines()
    assert len(audio_ids) + len(text_lines) == 3696 and 1500 < len(audio_ids) < 2200
    # no prompt is in both halves: audio has the odd prompt numbers
    assert all(int(re.search(r"\d+$", i).group()) % 2 == 1 for i in audio_ids)



# ------------------------------------------------------------------- a small TIMIT tree: odd files

@pytest.fixture(scope="module")
def small_timit(tmp_path_factory):
    root = tmp_path_factory.mktemp("timit") / "TIMIT"
    ids = timit_tree(root, {"TRAIN": [("DR1", "FCJF0"), ("DR2", "MDPK0")],
                            "TEST": [("DR1", "FELC0"), ("DR1", "FADG0"), ("DR3", "MXYZ0")]}, utts=2)
    return root, ids


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_timit_odd_files_are_left_out_and_named(small_timit, tmp_path):
    root = _copy(small_timit[0], tmp_path / "timit" / "TIMIT")
    spk = root / "TRAIN" / "DR1" / "FCJF0"
    (root / ".DS_Store").write_bytes(b"\0\1")
    (spk / "._SI1.WAV").write_bytes(b"\0\5\26\7")                  # a macOS resource fork
    shutil.copy(spk / "SI1.WAV", spk / "SI1.WAV.wav")              # a converted copy beside the original
    (root / "TRAIN" / "README.DOC").write_text("notes")
    (root / "TEST").rename(root / "test")                          # lower-case copies exist too
    out = tmp_path / "out"
    assert main(["import-corpus", "timit", str(root), str(out), *NO]) == 0
    assert (out / "train.ids").read_text().split() == sorted(small_timit[1]["TRAIN"], key=lambda i: (
        i.split("_")[0] != "FCJF0", i.split("_")[1]))
    skipped = (out / "skipped.tsv").read_text()
    for name in ("._SI1.WAV", "SI1.WAV.wav", "README.DOC", "SA1.WAV"):
        assert name in skipped, name
    assert (out / "valid.ids").read_text().split() == [i for i in small_timit[1]["TEST"] if i.startswith("FADG0")]
    assert [i.split("_")[0] for i in (out / "test.ids").read_text().split()] == ["FELC0"] * 2
    assert len(read_token_lines(out / "test_full.phn")) == 6
    assert (out / "phone_lexicon.txt").read_text().startswith("aa\taa\n") or "sil\tsil" in (out / "phone_lexicon.txt").read_text()
    # audio is read in place, as SPHERE
    root_line, entries = read_manifest(out / "train.tsv")
    assert sf.info(str(root_line / entries[0][0])).format == "NIST"


@pytest.mark.parametrize("damage", ["no_phn", "rate", "bad_phone", "no_wrd"])
def test_timit_layout_errors_name_the_file_and_write_nothing(small_timit, tmp_path, capsys, damage):
    root = _copy(small_timit[0], tmp_path / "TIMIT")
    utt = root / "TEST" / "DR1" / "FADG0" / "SX12.WAV"
    if damage == "no_phn":
        utt.with_suffix(".PHN").unlink()
        expect = [str(utt), "SX12.PHN"]
    elif damage == "no_wrd":
        utt.with_suffix(".WRD").unlink()
        expect = [str(utt), "SX12.WRD"]
    elif damage == "rate":
        wav, _ = sf.read(utt, dtype="float32")
        write_audio(utt, wav[::2], 8000, "sph")
        expect = [str(utt), "8000 Hz"]
    else:
        phn = utt.with_suffix(".PHN")
        phn.write_text(phn.read_text().replace(" h#\n", " hh#\n", 1))
        expect = [f"{phn}:1", "hh#"]
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["import-corpus", "timit", str(root), str(out), *NO]) == 2
    err = capsys.readouterr().err
    assert all(e in err for e in expect), err
    assert not out.exists()


def test_not_a_timit_tree(tmp_path, capsys):
    (tmp_path / "data" / "wavs").mkdir(parents=True)
    assert main(["import-corpus", "timit", str(tmp_path / "data"), str(tmp_path / "out"), *NO]) == 2
    assert "TRAIN/ and TEST/" in capsys.readouterr().err and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------- LibriSpeech, MLS

@pytest.fixture(scope="module")
def small_librispeech(tmp_path_factory):
    root = tmp_path_factory.mktemp("ls") / "LibriSpeech"
    librispeech_tree(root, {"train-clean-100": 4, "dev-other": 2})
    return root


def test_librispeech_layout(small_librispeech, tmp_path, capsys):
    root = _copy(small_librispeech, tmp_path / "LibriSpeech")
    (root / "SPEAKERS.TXT").write_text(";ID|SEX\n")
    (root / "train-clean-100" / "100" / "2000" / ".DS_Store").write_bytes(b"x")
    out = tmp_path / "out"
    args = ["import-corpus", "librispeech", str(root), str(out), "splits.train=[train-clean-100]",
            "splits.valid=[dev-other]", *NO]
    assert main(args) == 0
    assert len(read_manifest(out / "train.tsv")[1]) == 4 and len(read_token_lines(out / "valid.wrd")) == 2
    assert not (out / "train.phn").exists() and ".DS_Store" in (out / "skipped.tsv").read_text()
    assert (out / "valid.ids").read_text().split()[0] == "110-2010-0000"
    assert main(args) == 0 and "up to date" in capsys.readouterr().out  # cached

    chap = root / "dev-other" / "110" / "2010"
    (chap / "110-2010-0000.flac").unlink()
    assert main([*args[:3], str(tmp_path / "o2"), *args[4:]]) == 2
    err = capsys.readouterr().err
    assert f"{chap / '110-2010.trans.txt'}:1" in err and "110-2010-0000.flac does not exist" in err
    assert not (tmp_path / "o2").exists()
    wav = 0.1 * np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    write_audio(chap / "110-2010-0009.flac", wav, 22050, "flac")       # a file without a transcript line
    assert main([*args[:3], str(tmp_path / "o3"), "splits.valid=[dev-clean]", *NO]) == 2
    assert "dev-clean" in capsys.readouterr().err
    assert main([*args[:3], str(tmp_path / "o3"), *args[4:]]) == 2
    err = capsys.readouterr().err
    assert "110-2010-0009.flac: has no line in" in err and "problems" in err


def test_mls_layout(tmp_path, capsys):
    root = mls_tree(tmp_path / "mls_german", {"train": 3, "dev": 2, "test": 2})
    out = tmp_path / "out"
    assert main(["import-corpus", "mls", str(root), str(out), *NO]) == 0
    assert {p.stem for p in out.glob("*.tsv")} == {"train", "valid", "test", "skipped"}
    assert (out / "valid.wrd").read_text().count("\n") == 2
    lines = (root / "test" / "transcripts.txt").read_text().splitlines()
    (root / "test" / "transcripts.txt").write_text("\n".join(lines + ["99_9_000009\tghost line"]) + "\n")
    wav, sr = sf.read(next((root / "train" / "audio").rglob("*.flac")), dtype="float32")
    write_audio(next((root / "dev" / "audio").rglob("*.flac")), np.stack([wav, wav], 1), sr, "flac")  # stereo
    capsys.readouterr()
    assert main(["import-corpus", "mls", str(root), str(tmp_path / "o2"), *NO]) == 2
    err = capsys.readouterr().err
    assert f"{root / 'test' / 'transcripts.txt'}:3" in err and "2 channel(s)" in err and not (tmp_path / "o2").exists()


# ---------------------------------------------------------------- bring your own labelled audio

def test_own_transcripts_reach_a_scorable_split(tmp_path, capsys):
    audio = tmp_path / "my_recordings"
    rng = np.random.default_rng(0)
    sentences = {"a/one": "Hello, World!", "two": "It's the cat's hat.", "b/three": "Well -- we'll see"}
    for name in sentences:
        sr = 22050 if name == "two" else 16000  # one's own audio may be at any rate, even stereo
        t = np.arange(sr) / sr
        wav = (0.2 * np.sin(2 * np.pi * 220 * t) * (0.5 + rng.random())).astype(np.float32)
        write_audio(audio / f"{name}.wav", np.stack([wav, wav], 1) if name == "two" else wav, sr, "wav")
    (audio / "notes.txt").write_text("not audio")
    trans = tmp_path / "dev.tsv"
    trans.write_text("".join(f"{k}\t{v}\n" for k, v in sentences.items()))
    out = tmp_path / "dev"
    assert main(["import-corpus", "plain", str(audio), str(out), "--transcripts", str(trans), "split=valid", *NO]) == 0
    assert read_token_lines(out / "valid.wrd")[0] == ["Hello,", "World!"]
    assert "notes.txt" in (out / "skipped.tsv").read_text()
    # reference phones for one's own words, then the split is scored like any other
    assert main(["phonemize-refs", str(out), "--lang", "en-us"]) == 0
    phn = read_token_lines(out / "valid.phn")
    assert len(phn) == 3 and all(phn) and "ð" in phn[1]
    assert main(["phonemize-refs", str(out), "--lang", "en-us"]) == 2  # never silently replaced
    perfect = tmp_path / "hyp.wrd"
    perfect.write_text("hello world\nit's the cat's hat\nwell we'll see\n")  # what prepare-text's normalisation gives
    capsys.readouterr()
    assert main(["score", str(perfect), str(out / "valid.wrd"), "--words"]) == 0
    assert "WER 0.00%" in capsys.readouterr().out
    assert main(["extract", str(out), str(tmp_path / "feats"), "--no-progress", "--no-wandb"]) == 0
    assert (tmp_path / "feats" / "valid.npy").is_file()

    # an audio file without a transcript line, and a line without audio: errors naming both, nothing written
    trans.write_text("a/one\tHello\nfour\tmissing audio\n")
    assert main(["import-corpus", "plain", str(audio), str(tmp_path / "o2"), "--transcripts", str(trans), *NO]) == 2
    err = capsys.readouterr().err
    assert f"{trans}:2" in err and "two.wav: has no transcript line" in err and not (tmp_path / "o2").exists()
