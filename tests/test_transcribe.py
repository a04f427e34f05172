"""w2vu transcribe on long recordings built here: chunks, times, the five formats, resumption, bad files.

The model is an untrained CTC model on MFCC features (its blank pushed down so that it emits
phones): what is under test is the transcription machinery, not learning.
"""

import csv
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wav2vec_u.audio.io import SAMPLE_RATE, load_16k, resample
from wav2vec_u.audio.vad import trim_edges
from wav2vec_u.config import to_dict
from wav2vec_u.io import write_json

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng to synthesise speech")

SENTENCES = [
    "the river runs past the old mill every morning",
    "my grandmother told this story when we were young",
    "she carried water from the well to the house",
    "the children played near the fire until night",
    "we planted seeds when the rains came back",
    "he walked for three days to reach the market",
]
SR_OUT = 44_100


@pytest.fixture(scope="module")
def utterances(tmp_path_factory):
    """16 kHz speech of each sentence, its silent edges trimmed (known speech boundaries)."""
    d = tmp_path_factory.mktemp("espeak")
    out = []
    for i, s in enumerate(SENTENCES):
        wav_path = d / f"{i}.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav_path), s], check=True)
        wav = load_16k(wav_path)
        a, b = trim_edges(wav, SAMPLE_RATE, threshold_db=40)
        out.append(wav[a:b] * 0.5)
    return out


def build_recording(utts, seconds: float, seed: int = 0):
    """~``seconds`` of 16 kHz audio: utterances joined by 1.5-4 s pauses, white noise at -60 dBFS.

    Returns the audio and the (start, end) seconds of the speech in it."""
    rng = np.random.default_rng(seed)
    parts, spans, t = [], [], 0
    gap = int(rng.uniform(1.5, 3.0) * SAMPLE_RATE)
    parts.append(np.zeros(gap, np.float32))
    t += gap
    i = 0
    while t < seconds * SAMPLE_RATE:
        u = utts[i % len(utts)]
        i += 1
        parts.append(u)
        spans.append((t / SAMPLE_RATE, (t + len(u)) / SAMPLE_RATE))
        t += len(u)
        gap = int(rng.uniform(1.5, 4.0) * SAMPLE_RATE)
        parts.append(np.zeros(gap, np.float32))
        t += gap
    wav = np.concatenate(parts)
    wav = wav + 0.001 * rng.standard_normal(len(wav)).astype(np.float32)
    return wav.astype(np.float32), spans


def write_stereo_44k(path: Path, wav16: np.ndarray) -> Path:
    """The 16 kHz audio as a stereo 44.1 kHz PCM-16 file (the right channel quieter), written in blocks."""
    block = 160 * 16000  # whole 10 ms periods: 160 samples at 16 kHz = 441 at 44.1 kHz
    with sf.SoundFile(str(path), "w", SR_OUT, 2, subtype="PCM_16") as f:
        for a in range(0, len(wav16), block):
            x = resample(wav16[a:a + block], SAMPLE_RATE, SR_OUT)
            f.write(np.stack([x, 0.8 * x], axis=1))
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An untrained CTC model on MFCC features and the frame folder whose meta.json names them."""
    from wav2vec_u.audio.extract import ExtractConfig
    from wav2vec_u.audio.features import FeatureConfig, build_extractor
    from wav2vec_u.models.ctc import BLANK, CtcModel, CtcModelConfig, save_ctc_model

    d = tmp_path_factory.mktemp("model")
    dim = build_extractor(FeatureConfig()).dim
    torch.manual_seed(0)
    model = CtcModel(dim, [BLANK] + [f"p{i}" for i in range(12)], CtcModelConfig(hidden=16, layers=1, subsample=2))
    model.blank_offset = 50.0  # untrained: keep the blank from winning everywhere, so phones come out
    save_ctc_model(d / "ctc.pt", model)
    frames = d / "frames"
    frames.mkdir()
    write_json(frames / "meta.json", {"kind": "frames", "extractor": "mfcc", "frame_rate": 100.0,
                                      "provenance": {"config": to_dict(ExtractConfig())}})
    return d


def transcribe(model_dir, inputs, out, *extra, workers=1):
    from wav2vec_u.cli import main

    argv = ["transcribe", str(model_dir / "ctc.pt"), *map(str, inputs), "--out", str(out),
            "--features-dir", str(model_dir / "frames"), "--no-progress", "--workers", str(workers), *extra]
    assert main(argv) == 0


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def tiers_from_csv(path):
    tiers = {}
    for r in read_csv(path):
        tiers.setdefault(r["tier"], []).append((float(r["start"]), float(r["end"]), r["label"]))
    return tiers


def test_two_minutes_stereo_44k(utterances, model_dir, tmp_path):
    wav, spans = build_recording(utterances, 120)
    (tmp_path / "rec").mkdir()
    src = write_stereo_44k(tmp_path / "rec" / "field.wav", wav)
    out = tmp_path / "out"
    transcribe(model_dir, [tmp_path / "rec"], out)
    tiers = tiers_from_csv(out / "field.csv")
    chunks = tiers["chunks"]
    # chunk boundaries: one chunk per utterance, within 0.1 s of the known speech edges
    assert len(chunks) == len(spans), (chunks, spans)
    err = [max(abs(c[0] - s[0]), abs(c[1] - s[1])) for c, s in zip(chunks, spans)]
    print(f"\nchunk-boundary error: max {max(err):.3f} s, mean {np.mean(err):.3f} s over {len(spans)} chunks")
    assert max(err) <= 0.1
    # phones: monotone, inside their chunk
    phones = tiers["phones"]
    assert phones
    assert_phone_times_in_chunks(phones, chunks)
    assert_formats_agree(out, "field", src)


def assert_phone_times_in_chunks(phones: list, chunks: list) -> None:
    """Phone intervals (start, end, ...) are non-empty, in order, non-overlapping and each inside a chunk."""
    starts = [p[0] for p in phones]
    assert starts == sorted(starts)
    assert all(p[0] < p[1] for p in phones)
    assert all(a[1] <= b[0] + 1e-9 for a, b in zip(phones, phones[1:]))
    for p in phones:
        assert any(c[0] - 1e-6 <= p[0] and p[1] <= c[1] + 1e-6 for c in chunks), p


def assert_formats_agree(out: Path, name: str, media: Path):
    """TextGrid (praatio), EAF (pympi-ling), CTM and SRT hold the tiers of the CSV."""
    from praatio import textgrid
    from pympi import Elan

    tiers = tiers_from_csv(out / f"{name}.csv")
    tg = textgrid.openTextgrid(str(out / f"{name}.TextGrid"), includeEmptyIntervals=False)
    assert list(tg.tierNames) == list(tiers)
    for t, items in tiers.items():
        got = [(round(e.start, 3), round(e.end, 3), e.label) for e in tg.getTier(t).entries]
        assert got == items, t
    eaf = Elan.Eaf(str(out / f"{name}.eaf"))
    assert sorted(eaf.get_tier_names()) == sorted(tiers)
    for t, items in tiers.items():
        got = sorted((a / 1000, b / 1000, v) for a, b, v, *_ in eaf.get_annotation_data_for_tier(t))
        assert got == items, t
    linked = eaf.get_linked_files()
    assert linked and (out / linked[0]["RELATIVE_MEDIA_URL"]).resolve() == media.resolve()
    assert linked[0]["MEDIA_URL"] == media.resolve().as_uri()
    ctm = [line.split() for line in (out / f"{name}.ctm").read_text().splitlines()]
    assert [(float(r[2]), round(float(r[2]) + float(r[3]), 3), r[4]) for r in ctm] == tiers["phones"]
    srt = (out / f"{name}.srt").read_text().strip().split("\n\n")
    assert len(srt) == len(tiers["chunks"])


@pytest.fixture(scope="module")
def archive(utterances, tmp_path_factory):
    """A folder of three ~20 s recordings (one in a subfolder, one FLAC), stereo 44.1 kHz."""
    d = tmp_path_factory.mktemp("archive")
    (d / "day2").mkdir()
    for i, name in enumerate(["a.wav", "day2/b.flac", "c.wav"]):
        wav, _ = build_recording(utterances, 20, seed=i)
        x = resample(wav, SAMPLE_RATE, SR_OUT)
        sf.write(str(d / name), np.stack([x, 0.8 * x], axis=1), SR_OUT, subtype="PCM_16")
    return d


def snapshot(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def test_rerun_after_a_kill_is_byte_identical_and_skips_finished(archive, model_dir, tmp_path, monkeypatch):
    from wav2vec_u.transcribe import transcribe as tr

    ref = tmp_path / "ref"
    transcribe(model_dir, [archive], ref)
    first = snapshot(ref)
    assert {"a.TextGrid", "a.eaf", "a.ctm", "a.srt", "a.csv", "day2/b.csv", "c.csv", "skipped.tsv"} <= set(first)

    # a run killed after its first recording: the second raises as a kill would
    out = tmp_path / "out"
    real, calls = tr._run_one, []

    def killed_after_first(*a, **k):
        calls.append(a[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(tr, "_run_one", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        tr.transcribe_archive(model_dir / "ctc.pt", [archive], out, features_dir=model_dir / "frames", progress=False)
    monkeypatch.setattr(tr, "_run_one", real)
    assert (out / "a.done.json").is_file() and not (out / "day2" / "b.done.json").exists()
    res = tr.transcribe_archive(model_dir / "ctc.pt", [archive], out, features_dir=model_dir / "frames", progress=False)
    assert (res["done_before"], res["transcribed"]) == (1, 2)
    assert snapshot(out) == first

    # one recording's outputs deleted: only it is redone, and the same bytes come back
    (out / "c.csv").unlink()
    res = tr.transcribe_archive(model_dir / "ctc.pt", [archive], out, features_dir=model_dir / "frames", progress=False)
    assert (res["done_before"], res["transcribed"]) == (2, 1)
    assert snapshot(out) == first
    # a changed option changes the fingerprint: everything is redone
    res = tr.transcribe_archive(model_dir / "ctc.pt", [archive], out, tr.TranscribeConfig(words=False),
                                features_dir=model_dir / "frames", progress=False)
    assert res["transcribed"] == 3


def test_corrupt_and_empty_files_are_skipped_with_reasons(archive, model_dir, tmp_path):
    d = tmp_path / "mixed"
    shutil.copytree(archive, d)
    (d / "empty.wav").write_bytes(b"")
    (d / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    sf.write(str(d / "silent_header.wav"), np.zeros((0, 2), np.float32), SR_OUT)
    out = tmp_path / "out"
    transcribe(model_dir, [d], out)
    rows = [line.split("\t") for line in (out / "skipped.tsv").read_text().splitlines()[1:]]
    reasons = {Path(p).name: r for p, r in rows}
    assert set(reasons) == {"empty.wav", "corrupt.wav", "silent_header.wav"}
    assert all(str(d) in r for r in reasons.values())  # each reason names the file
    print("\nskipped:", reasons)
    for name in ["a", "day2/b", "c"]:
        assert (out / f"{name}.done.json").is_file()


def test_mp3_input(utterances, model_dir, tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3 (needs libsndfile >= 1.1 built with LAME/mpg123)")
    wav, spans = build_recording(utterances, 30, seed=3)
    x = resample(wav, SAMPLE_RATE, SR_OUT)
    sf.write(str(tmp_path / "rec.mp3"), np.stack([x, 0.8 * x], axis=1), SR_OUT, format="MP3")
    out = tmp_path / "out"
    transcribe(model_dir, [tmp_path / "rec.mp3"], out)
    chunks = tiers_from_csv(out / "rec.csv")["chunks"]
    assert len(chunks) == len(spans)
    err = [max(abs(c[0] - s[0]), abs(c[1] - s[1])) for c, s in zip(chunks, spans)]
    print(f"\nMP3 chunk-boundary error: max {max(err):.3f} s")
    assert max(err) <= 0.1
    assert_formats_agree(out, "rec", tmp_path / "rec.mp3")


def test_features_must_be_known(model_dir, archive, tmp_path):
    from wav2vec_u.config import ConfigError
    from wav2vec_u.transcribe.transcribe import transcribe_archive

    with pytest.raises(FileNotFoundError, match="--features-dir"):
        transcribe_archive(model_dir / "ctc.pt", [archive], tmp_path / "o", progress=False)
    seg = tmp_path / "seg"
    seg.mkdir()
    write_json(seg / "meta.json", {"kind": "segments"})
    with pytest.raises(ConfigError, match="trained on frames"):
        transcribe_archive(model_dir / "ctc.pt", [archive], tmp_path / "o", features_dir=seg, progress=False)
    with pytest.raises(FileNotFoundError, match="meta.json"):
        transcribe_archive(model_dir / "ctc.pt", [archive], tmp_path / "o", features_dir=tmp_path, progress=False)


def test_workers_give_the_same_files(archive, model_dir, tmp_path):
    transcribe(model_dir, [archive], tmp_path / "serial")
    transcribe(model_dir, [archive], tmp_path / "parallel", workers=2)
    assert snapshot(tmp_path / "parallel") == snapshot(tmp_path / "serial")


def write_text_dir(d: Path) -> Path:
    """A lexicon over the toy phones and a word bigram LM (ARPA; KenLM wants at least bigrams),
    named as prepare-text names them."""
    d.mkdir()
    words = {f"w{i}": f"p{i} p{(i + 3) % 12}" for i in range(12)} | {f"v{i}": f"p{i}" for i in range(12)}
    (d / "lexicon.lst").write_text("".join(f"{w}\t{p}\n" for w, p in words.items()))
    lines = ["\\data\\", f"ngram 1={len(words) + 3}", "ngram 2=1", "", "\\1-grams:", "-1.0\t<s>\t0",
             "-1.0\t</s>", "-2.0\t<unk>"]
    lines += [f"-1.4\t{w}\t0" for w in words] + ["", "\\2-grams:", "-0.5\t<s> w0", "", "\\end\\", ""]
    (d / "lm.words.4.arpa").write_text("\n".join(lines))
    return d


def test_words_with_a_lexicon_and_word_lm(archive, model_dir, tmp_path):
    text = write_text_dir(tmp_path / "text")
    out = tmp_path / "out"
    transcribe(model_dir, [archive / "a.wav"], out, "--text-dir", str(text))
    tiers = tiers_from_csv(out / "a.csv")
    assert list(tiers) == ["chunks", "words", "phones"]
    words = tiers["words"]
    assert words and all(w[2] in {f"w{i}" for i in range(12)} | {f"v{i}" for i in range(12)} for w in words)
    assert all(a[1] <= b[0] + 1e-9 and a[0] < a[1] for a, b in zip(words, words[1:]))
    for w in words:
        assert any(c[0] - 1e-6 <= w[0] and w[1] <= c[1] + 1e-6 for c in tiers["chunks"]), w
    assert [c[2] for c in tiers["chunks"]][0].split()[0] == words[0][2]  # chunks are labelled with their words
    assert_formats_agree(out, "a", archive / "a.wav")
    assert len((out / "a.words.ctm").read_text().splitlines()) == len(words)
    conf = [float(r["confidence"]) for r in read_csv(out / "a.csv") if r["tier"] == "words"]
    assert all(0 < c <= 1 for c in conf)


@pytest.mark.slow
def test_twenty_minutes_in_bounded_memory(utterances, model_dir, tmp_path):
    """The issue's archive-sized case: 20 minutes of stereo 44.1 kHz, run in a fresh process
    whose peak RSS is measured (the file alone, decoded whole as float32, would be 423 MB)."""
    wav, spans = build_recording(utterances, 20 * 60, seed=7)
    (tmp_path / "rec").mkdir()
    src = write_stereo_44k(tmp_path / "rec" / "long.wav", wav)
    del wav
    out = tmp_path / "out"
    code = ("import resource, sys, time; from wav2vec_u.cli import main; t = time.time(); "
            f"rc = main(['transcribe', '{model_dir / 'ctc.pt'}', '{src}', '--out', '{out}', "
            f"'--features-dir', '{model_dir / 'frames'}', '--no-progress']); "
            "print('PEAK_RSS_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
            "'WALL_S', time.time() - t); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = next(x for x in res.stdout.splitlines() if x.startswith("PEAK_RSS_MB"))
    peak, wall = float(line.split()[1]), float(line.split()[3])
    tiers = tiers_from_csv(out / "long.csv")
    chunks = tiers["chunks"]
    assert len(chunks) == len(spans)
    err = [max(abs(c[0] - s[0]), abs(c[1] - s[1])) for c, s in zip(chunks, spans)]
    print(f"\n20 min stereo 44.1 kHz: peak RSS {peak:.0f} MB, {wall:.0f} s wall "
          f"({20 * 60 / wall:.0f}x real time), chunk-boundary error max {max(err):.3f} s "
          f"mean {np.mean(err):.3f} s over {len(spans)} chunks")
    assert max(err) <= 0.1
    assert peak < 1024  # bounded: the whole file is never in memory
    starts = [p[0] for p in tiers["phones"]]
    assert starts == sorted(starts)
    assert_formats_agree(out, "long", src)


def test_silero_chunks(utterances, model_dir, tmp_path):
    pytest.importorskip("silero_vad")
    from wav2vec_u.audio.silero import silero_probabilities

    wav, spans = build_recording(utterances, 30, seed=5)
    batched, streamed = silero_probabilities(wav), silero_probabilities(wav, row_s=1e9)
    assert np.mean((batched >= 0.5) == (streamed >= 0.5)) > 0.99  # rows with warm-up ~ one stream
    (tmp_path / "rec").mkdir()
    write_stereo_44k(tmp_path / "rec" / "s.wav", wav)
    out = tmp_path / "out"
    transcribe(model_dir, [tmp_path / "rec"], out, "chunks.vad.method=silero")
    chunks = tiers_from_csv(out / "s.csv")["chunks"]
    assert len(chunks) == len(spans)
    assert max(max(abs(c[0] - s[0]), abs(c[1] - s[1])) for c, s in zip(chunks, spans)) <= 0.1


def test_gan_finds_its_segments_through_its_lineage(utterances, tmp_path):
    """An untrained GAN generator on PCA + k-means segments; no --features-dir: the lineage names them."""
    from wav2vec_u.audio.extract import ExtractConfig
    from wav2vec_u.audio.features import FeatureConfig, build_extractor
    from wav2vec_u.audio.segments import KmeansConfig, PcaConfig, SegmentsConfig
    from wav2vec_u.models.generator import Generator
    from wav2vec_u.train.checkpoint import save_checkpoint
    from wav2vec_u.train.config import GanConfig
    from wav2vec_u.transcribe.transcribe import transcribe_archive

    rng = np.random.default_rng(0)
    dim, pca = build_extractor(FeatureConfig()).dim, 16
    seg = tmp_path / "segments"
    seg.mkdir()
    np.save(seg / "pca_A.npy", rng.standard_normal((dim, pca)).astype(np.float32) / np.sqrt(dim))
    np.save(seg / "pca_b.npy", np.zeros(pca, np.float32))
    np.save(seg / "centroids.npy", rng.standard_normal((8, pca)).astype(np.float32))
    seg_cfg = SegmentsConfig(pca=PcaConfig(dim=pca), kmeans=KmeansConfig(k=8, input="pca"))
    write_json(seg / "meta.json", {"kind": "segments", "input_dir": str(tmp_path / "frames"), "segments": to_dict(seg_cfg),
                                   "frame_meta": {"kind": "frames", "frame_rate": 100.0,
                                                  "provenance": {"config": to_dict(ExtractConfig())}}})
    phones = ["<SIL>"] + [f"p{i}" for i in range(10)]
    cfg = GanConfig()
    torch.manual_seed(0)
    gen = Generator(pca, len(phones), cfg.generator)
    ckpt = save_checkpoint(tmp_path / "gan.pt", {"config": to_dict(cfg), "phones": phones, "input_dim": pca,
                                                 "generator": gen.state_dict(), "lineage": {"features": str(seg)}})
    wav, spans = build_recording(utterances, 20, seed=2)
    (tmp_path / "rec").mkdir()
    write_stereo_44k(tmp_path / "rec" / "g.wav", wav)
    res = transcribe_archive(ckpt, [tmp_path / "rec"], tmp_path / "out", progress=False)
    assert res["transcribed"] == 1
    tiers = tiers_from_csv(tmp_path / "out" / "g.csv")
    assert len(tiers["chunks"]) == len(spans) and tiers["phones"]
    for p in tiers["phones"]:
        assert any(c[0] - 1e-6 <= p[0] and p[1] <= c[1] + 1e-6 for c in tiers["chunks"]), p
    starts = [p[0] for p in tiers["phones"]]
    assert starts == sorted(starts)
    assert_formats_agree(tmp_path / "out", "g", tmp_path / "rec" / "g.wav")
    # a GAN handed a frame folder is told to use its segments
    from wav2vec_u.config import ConfigError

    frames = tmp_path / "frames"
    frames.mkdir()
    write_json(frames / "meta.json", {"kind": "frames", "provenance": {"config": to_dict(ExtractConfig())}})
    with pytest.raises(ConfigError, match="segments folder"):
        transcribe_archive(ckpt, [tmp_path / "rec"], tmp_path / "o2", features_dir=frames, progress=False)


def test_decipher_model_cuts_its_own_segments(archive, tmp_path):
    """A decipherment model (tiny settings) trained on the archive's chunks, then transcribing one of
    its recordings; no --features-dir: the model's lineage names its frame folder."""
    from toys import write_bigram_arpa
    from wav2vec_u.cli import main
    from wav2vec_u.tokens import SIL
    from wav2vec_u.transcribe.transcribe import transcribe_archive

    assert main(["cut", str(archive), "--out", str(tmp_path / "chunks")]) == 0
    assert main(["extract", str(tmp_path / "chunks"), str(tmp_path / "frames"), "--no-progress", "--no-wandb"]) == 0
    # the "phones" of this text are its letters: decipherment needs statistics, not a real inventory
    text = tmp_path / "text"
    text.mkdir()
    sents = [[c for c in s if c != " "] for s in SENTENCES * 3]
    (text / "phones.txt").write_text("".join(" ".join([SIL, *s, SIL]) + "\n" for s in sents))
    write_bigram_arpa(text / "lm.phones.4.arpa", sents)
    tiny = ["seeds=[1]", "refine=1", "workers=1", "units.k=16", "match.steps=50", "match.restarts=2", "hmm.iters=2",
            "units.min_gap_candidates=[]", "units.self_loop_candidates=[]"]
    assert main(["decipher", str(tmp_path / "frames"), str(tmp_path / "dec"), "--text-dir", str(text), *tiny,
                 "--no-wandb"]) == 0
    res = transcribe_archive(tmp_path / "dec" / "decipher.pt", [archive / "c.wav"], tmp_path / "out", progress=False)
    assert res["transcribed"] == 1
    tiers = tiers_from_csv(tmp_path / "out" / "c.csv")
    chunks, phones = tiers["chunks"], tiers["phones"]
    assert chunks and phones
    assert {p[2] for p in phones} <= {c for s in sents for c in s}
    assert_phone_times_in_chunks(phones, chunks)
    conf = [float(r["confidence"]) for r in read_csv(tmp_path / "out" / "c.csv") if r["tier"] == "phones"]
    assert all(0 < c <= 1 for c in conf)
    assert_formats_agree(tmp_path / "out", "c", archive / "c.wav")


def test_hf_ctc_model_reads_the_audio_itself(utterances, tmp_path, monkeypatch):
    """A fine-tuned Hugging Face CTC model (here a tiny random Wav2Vec2) needs no feature folder."""
    transformers = pytest.importorskip("transformers")
    import json

    from wav2vec_u.models.hf_ctc import HfCtcConfig, build_hf_ctc, save_hf_ctc
    from wav2vec_u.transcribe.transcribe import transcribe_archive

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = tmp_path / "tiny-w2v2"
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        conv_dim=(32, 32, 32, 32), conv_stride=(5, 4, 4, 4), conv_kernel=(10, 4, 4, 4),
        num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4)).save_pretrained(enc)
    (enc / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True, "sampling_rate": 16000}))
    cfg = HfCtcConfig(model=str(enc))
    model = build_hf_ctc(cfg, ["<SIL>"] + [f"p{i}" for i in range(6)]).eval()
    model.blank_offset = 50.0  # untrained: phones must come out
    ckpt = save_hf_ctc(tmp_path / "hf.pt", model, cfg)
    wav, spans = build_recording(utterances, 15, seed=4)
    (tmp_path / "rec").mkdir()
    write_stereo_44k(tmp_path / "rec" / "h.wav", wav)
    assert transcribe_archive(ckpt, [tmp_path / "rec"], tmp_path / "out", progress=False)["transcribed"] == 1
    tiers = tiers_from_csv(tmp_path / "out" / "h.csv")
    assert len(tiers["chunks"]) == len(spans) and tiers["phones"]
    for p in tiers["phones"]:
        assert any(c[0] - 1e-6 <= p[0] and p[1] <= c[1] + 1e-6 for c in tiers["chunks"]), p
    assert_formats_agree(tmp_path / "out", "h", tmp_path / "rec" / "h.wav")


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def headless(page_url: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--mute-audio",
                           "--autoplay-policy=no-user-gesture-required", "--allow-file-access-from-files",
                           "--virtual-time-budget=8000", *flags, page_url],
                          capture_output=True, text=True, timeout=90)


def test_review_page_in_a_headless_browser(archive, model_dir, tmp_path):
    if chromium() is None:
        pytest.skip("needs Debian's chromium (scripts/setup.sh installs it)")
    import re

    out = tmp_path / "out"
    transcribe(model_dir, [archive / "a.wav"], out)
    page = out / "a.html"
    chunks = tiers_from_csv(out / "a.csv")["chunks"]
    res = headless(page.as_uri() + "#selftest", "--dump-dom")
    dom = res.stdout
    assert 'data-ready="1"' in dom, res.stderr[-2000:]
    for tier in ("chunks", "phones"):
        assert f'id="tier-{tier}"' in dom
    shown = re.findall(r'class="item[^"]*"[^>]*data-start="([0-9.]+)"', dom)
    assert shown and float(shown[0]) == chunks[0][0]  # the first 10 s view shows the first chunk
    seek = re.search(r'data-seek="([0-9.]+)"', dom)
    assert seek, "clicking the first chunk did not seek the audio"
    assert abs(float(seek.group(1)) - chunks[0][0]) < 0.01
    shot = tmp_path / "review.png"
    headless(page.as_uri(), f"--screenshot={shot}", "--window-size=1300,560")
    assert shot.is_file() and shot.stat().st_size > 10_000


@pytest.mark.parametrize("sr", [22_050, 48_000])
def test_windows_equal_the_whole_file_resampled(tmp_path, sr):
    """Windows read on the grid are the samples of the whole file resampled at once (the padding
    holds the filter's reach); the review page's peaks cover the file."""
    from wav2vec_u.transcribe.review import PEAKS_PER_SECOND, waveform_peaks
    from wav2vec_u.transcribe.stream import Recording

    rng = np.random.default_rng(0)
    x = (0.3 * np.sin(np.arange(sr * 7) * 2 * np.pi * 440 / sr) + 0.05 * rng.standard_normal(sr * 7)).astype(np.float32)
    sf.write(str(tmp_path / "x.wav"), np.stack([x, x], axis=1), sr, subtype="FLOAT")
    rec = Recording(tmp_path / "x.wav")
    whole = resample(x, sr, SAMPLE_RATE)
    assert rec.num_samples == len(whole)
    a, b = rec.align(SAMPLE_RATE + 37), rec.align(5 * SAMPLE_RATE, up=True)
    assert np.abs(rec.read(a, b) - whole[a:b]).max() < 1e-6
    parts = [rec.read(s, e) for s, e in rec.blocks(rec.align(SAMPLE_RATE))]
    assert np.abs(np.concatenate(parts) - whole).max() < 1e-6
    assert len(waveform_peaks(rec, block_s=2.0)) == -(-rec.num_samples // (SAMPLE_RATE // PEAKS_PER_SECOND))


def test_cut_recordings_into_training_utterances(archive, tmp_path):
    from wav2vec_u.audio.manifest import read_manifest
    from wav2vec_u.cli import main

    out = tmp_path / "chunks"
    assert main(["cut", str(archive), "--out", str(out), "valid_percent=0.01"]) == 0  # still one held out
    rows = read_csv(out / "chunks.csv")
    train_root, train = read_manifest(out / "train.tsv")
    valid = read_manifest(out / "valid.tsv")[1] if (out / "valid.tsv").is_file() else []
    assert len(train) + len(valid) == len(rows) > 0
    for rel, n in train:
        info = sf.info(str(train_root / rel))
        assert info.samplerate == SAMPLE_RATE and info.channels == 1 and info.frames == n
        assert 0.2 * SAMPLE_RATE <= n <= 20 * SAMPLE_RATE
    by_rec = {}
    for r in rows:
        by_rec.setdefault(r["recording"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_rec.values())  # a recording is never split across train and valid
    assert sorted(len([r for r in by_rec.values() if r == {sp}]) for sp in ("train", "valid")) == [1, 2]


def test_own_language_recipe_calls_only_w2vu_commands(tmp_path):
    """run.sh with a stand-in for w2vu that records its calls: each method's stages, in order, with the
    outputs of one stage handed to the next."""
    import os
    import re

    from wav2vec_u.cli import COMMANDS

    run_sh = Path(__file__).resolve().parents[1] / "recipes" / "own-language" / "run.sh"
    subprocess.run(["bash", "-n", str(run_sh)], check=True)
    assert set(re.findall(r"\$W2VU ([a-z-]+)", run_sh.read_text())) <= set(COMMANDS)
    stub = tmp_path / "w2vu"
    stub.write_text('#!/usr/bin/env bash\necho "$*" >> "$STUB_LOG"\n'
                    'if [ "$1" = select ]; then touch "$STUB_CHOSEN"; echo "chosen: $STUB_CHOSEN"; fi\n')
    stub.chmod(0o755)

    def calls(*args: str) -> list[list[str]]:
        log = tmp_path / f"log{len(list(tmp_path.glob('log*')))}"
        env = dict(os.environ, W2VU=str(stub), STUB_LOG=str(log), STUB_CHOSEN=str(tmp_path / "best.pt"))
        subprocess.run(["bash", str(run_sh), "--audio", "A", "--text", "T", "--lang", "xx", "--out", "O", *args],
                       check=True, env=env, capture_output=True, text=True)
        return [line.split() for line in log.read_text().splitlines()]

    dec = calls("--decipher-args", "seeds=[1,2] refine=1", "--st-args", "ctc.epochs=3")
    assert [c[0] for c in dec] == ["cut", "prepare-text", "extract", "decipher", "self-train", "transcribe"]
    assert dec[3] == ["decipher", "O/features", "O/decipher", "--text-dir", "O/text", "seeds=[1,2]", "refine=1"]
    assert dec[4] == ["self-train", "O/features", "O/self_train", "--labels", "O/decipher/train.hyp",
                      "--text-dir", "O/text", "ctc.epochs=3"]
    assert dec[5][:2] == ["transcribe", "O/self_train/ctc.pt"] and "O/features" in dec[5]
    assert [c[0] for c in calls("--stage", "7")] == ["transcribe"]
    gan = calls("--method", "gan", "--seeds", "0 1", "--gan-args", "trainer.max_updates=10")
    assert [c[0] for c in gan] == ["cut", "prepare-text", "extract", "segments", "train-gan", "train-gan", "select",
                                   "self-train", "transcribe"]
    assert gan[4][-2:] == ["trainer.seed=0", "trainer.max_updates=10"]
    assert gan[7][3:5] == ["--checkpoint", str(tmp_path / "best.pt")]
