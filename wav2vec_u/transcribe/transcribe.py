"""Transcribe recordings with any model this package trains: chunks, features, model, phones, words.

    cfg = TranscribeConfig()
    summary = transcribe_archive("run/st/ctc.pt", ["field/"], "out/tr", cfg, features_dir="out/frames",
                                 text_dir="out/text", workers=2)

How the features of a model are found (the model must see what it was trained on):

- a fine-tuned Hugging Face CTC model reads the audio itself: nothing to find;
- otherwise the feature folder ``--features-dir`` (``w2vu extract`` or ``w2vu segments`` output)
  names the extraction in its ``meta.json`` (``provenance.config.features``: extractor, layer,
  spectral options). A segments folder also holds the PCA and k-means (``pca_A.npy``,
  ``centroids.npy``) and the pooling of its ``meta.json``, which a GAN's inputs need;
- a GAN or decipherment checkpoint without ``--features-dir`` uses the folder its lineage
  records (the one it was trained on). A CTC model records none: it needs ``--features-dir``.
  A decipherment model cuts the frames into its own change-point segments.

A GAN is given the kind of folder it was trained on (its lineage's ``feature_kind``: segments
for wav2vec-U 1.0, frames for 2.0, whose generator strides over the frames itself); another
kind, a CTC model given a segments folder, or a folder without a usable ``meta.json`` is an
error before any audio is read.

Per recording (:func:`transcribe_recording`): chunks (:mod:`.chunks`), then per chunk the features,
the model's logits, Viterbi phones with times from the frame spans (:mod:`wav2vec_u.decode.viterbi`)
and, with ``--text-dir`` holding ``lexicon.lst`` and a word LM, lexicon + word-LM words. Times are
seconds of the original recording (chunk start + time within the chunk), rounded to 1 ms.
Confidence: exp of the mean log-posterior of the argmax over the positions of a phone or word, in (0, 1].

The archive (:func:`transcribe_archive`) is a batch job: a recording whose ``.done.json`` records
the same fingerprint (model, features, text, config, the file's size, mtime and a hash of its first
and last MiB) is skipped; a file that cannot be read goes to ``skipped.tsv`` with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wav2vec_u.audio.io import SAMPLE_RATE, AudioError
from wav2vec_u.config import ConfigError, at_least, from_dict, to_dict
from wav2vec_u.decode.lexicon_decoder import DecoderConfig
from wav2vec_u.decode.viterbi import Segment, log_softmax, viterbi_decode
from wav2vec_u.io import (atomic_write_text, read_json, remove_stale_temporaries, sha256_file, sha256_json,
                          write_json)
from wav2vec_u.transcribe.chunks import ChunkConfig, find_chunks
from wav2vec_u.transcribe.stream import Recording
from wav2vec_u.audio.features import FeatureConfig, build_extractor
from wav2vec_u.audio.segments import SegmentsConfig, load_segment_model
from wav2vec_u.decode.lexicon_decoder import LexiconDecoder, load_word_lm
from wav2vec_u.io import load_state
from wav2vec_u.text.lexicon import read_pronunciations
from wav2vec_u.text.lm import find_word_lm
from wav2vec_u.transcribe.exports import write_exports
from wav2vec_u.transcribe.review import waveform_peaks, write_review

log = logging.getLogger(__name__)

# what soundfile (libsndfile 1.1+) reads; other files in an input folder are not recordings
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".au", ".w64", ".caf")
OUTPUT_SUFFIXES = (".TextGrid", ".eaf", ".ctm", ".srt", ".csv")
FINGERPRINT_VERSION = 1  # bump when the outputs of the same inputs change


@dataclass
class TranscribeConfig:
    chunks: ChunkConfig = field(default_factory=ChunkConfig)
    words: bool = True            # words too, when --text-dir has lexicon.lst and lm.words.4.bin/.arpa
    decoder: DecoderConfig = field(default_factory=DecoderConfig)  # lm_weight/word_score as given (no tuning)
    review: bool = True           # also NAME.html, the review page (waveform, tiers, click to play)
    device: str = "cpu"
    threads: int = at_least(1, default=1)  # torch threads per process (workers are processes)


# ----------------------------------------------------------------------------- the model and its features

@dataclass
class Pipeline:
    """Everything that turns 16 kHz audio of one chunk into phones (and words)."""

    model: object                 # wav2vec_u.decode.decode.AcousticModel
    extractor: object | None      # None: the model reads audio (Hugging Face CTC)
    segment_model: object | None  # PCA + k-means + pooling (GAN inputs)
    pool: object | None
    frame_rate: float             # model input frames per second
    word_decoder: object | None
    fingerprint: dict             # what identifies the outputs (model, features, text, config)


def _feature_meta(features_dir: Path) -> dict:
    meta_path = features_dir / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: --features-dir must be the feature folder the model was "
                                "trained on (w2vu extract or w2vu segments output), whose meta.json records the extractor")
    return read_json(meta_path)


def _feature_config(meta: dict, where: Path):

    section = ((meta.get("provenance") or {}).get("config") or {}).get("features")
    if section is None:
        raise ConfigError(f"{where}/meta.json records no extraction config (provenance.config.features): "
                          "re-extract the features with w2vu extract, or pass the folder it wrote")
    return from_dict(FeatureConfig, section, "features.")


def load_pipeline(model_path: str | Path, cfg: TranscribeConfig, features_dir: str | Path | None = None,
                  text_dir: str | Path | None = None) -> Pipeline:
    """The model, its feature extraction (module docstring: how it is found) and the word decoder."""
    from wav2vec_u.decode.decode import load_acoustic_model

    model_path = Path(model_path)
    model = load_acoustic_model(model_path, cfg.device)
    # threads change the speed, not the outputs: a rerun with more of them keeps what is done
    fingerprint: dict = {"version": FINGERPRINT_VERSION, "model": sha256_file(model_path),
                         "config": sha256_json({k: v for k, v in to_dict(cfg).items() if k != "threads"})}
    extractor = segment_model = pool = None
    if model.kind == "hf-ctc":
        frame_rate = float(model.frame_rate)
    else:
        gan_reads = "segments"  # what a GAN was trained on: 1.0 segments, 2.0 frames (its lineage says)
        lineage: dict = {}
        if model.kind in ("gan", "decipher"):  # their checkpoints name the features they were trained on
            lineage = load_state(model_path, "model checkpoint").get("lineage") or {}
            gan_reads = lineage.get("feature_kind") or "segments"
        if features_dir is None and model.kind in ("gan", "decipher"):
            features_dir = lineage.get("features")
            if features_dir is None or not Path(features_dir).is_dir():
                raise FileNotFoundError(f"{model_path}: its lineage names no feature folder that exists here "
                                        f"({features_dir}): pass --features-dir with the feature folder it was "
                                        "trained on")
        if features_dir is None:
            raise FileNotFoundError(f"{model_path} is a {model.kind} model: pass --features-dir with the frame "
                                    "feature folder it was trained on (its meta.json names the extractor)")
        features_dir = Path(features_dir)
        meta = _feature_meta(features_dir)
        kind = meta.get("kind")
        if kind == "segments":
            if model.kind == "gan" and gan_reads != "segments":
                raise ConfigError(f"{features_dir} holds segment features but {model_path} is a GAN trained on "
                                  f"{gan_reads} (wav2vec-U 2.0): pass the frame folder it was trained on")
            if model.kind != "gan":
                raise ConfigError(f"{features_dir} holds segment features but {model_path} is a {model.kind} model, "
                                  "trained on frames: pass the frame folder (the segments folder's input_dir)")
            seg_cfg = from_dict(SegmentsConfig, meta.get("segments") or {}, "segments.")
            segment_model, pool = load_segment_model(features_dir, seg_cfg), seg_cfg.pool
            feat_cfg = _feature_config(meta.get("frame_meta") or {}, Path(meta.get("input_dir", features_dir)))
        elif kind == "frames":
            if model.kind == "gan" and gan_reads != "frames":
                raise ConfigError(f"{features_dir} holds frame features but {model_path} is a GAN, trained on "
                                  "segments: pass the segments folder (w2vu segments output)")
            feat_cfg = _feature_config(meta, features_dir)
        else:
            raise ConfigError(f"{features_dir}/meta.json has kind {kind!r}; expected 'frames' or 'segments'")
        feat_cfg.device = cfg.device
        extractor = build_extractor(feat_cfg)
        frame_rate = float(extractor.frame_rate)
        fingerprint["features"] = sha256_json(to_dict(feat_cfg))
        for name in ("pca_A.npy", "pca_b.npy", "centroids.npy"):
            if segment_model is not None and (features_dir / name).is_file():
                fingerprint[name] = sha256_file(features_dir / name)
    word_decoder = None
    if cfg.words and text_dir is not None:

        text_dir = Path(text_dir)
        lexicon, lm_path = text_dir / "lexicon.lst", find_word_lm(text_dir)
        if not lexicon.is_file() or lm_path is None:
            raise FileNotFoundError(f"--text-dir {text_dir} needs lexicon.lst and lm.words.4.bin/.arpa for words "
                                    "(w2vu prepare-text writes them); words=false decodes phones only")
        word_decoder = LexiconDecoder(model.phones, read_pronunciations(lexicon), load_word_lm(lm_path), cfg.decoder)
        fingerprint["lexicon"], fingerprint["word_lm"] = sha256_file(lexicon), sha256_file(lm_path)
    return Pipeline(model, extractor, segment_model, pool, frame_rate, word_decoder, fingerprint)


# ----------------------------------------------------------------------------- one chunk

@dataclass
class Item:
    """One phone, word or chunk of a transcript, in seconds of the original recording."""

    label: str
    start: float
    end: float
    confidence: float


def _confidence(best: np.ndarray, mid: np.ndarray, start: float, end: float) -> float:
    """exp of the mean argmax log-posterior over the positions whose midpoint lies in [start, end)."""
    inside = (mid >= start) & (mid < end)
    return float(np.exp(best[inside].mean())) if inside.any() else float("nan")


def decode_chunk(p: Pipeline, wav: np.ndarray, offset: float, chunk_end: float) -> tuple[list[Item], list[Item]]:
    """Phones and words of one chunk's 16 kHz ``wav``, times shifted by ``offset`` seconds."""
    from wav2vec_u.decode.decode import cluster_spans

    model = p.model
    x = wav if p.extractor is None else p.extractor(wav)
    if len(x) == 0:
        return [], []
    # frames each model input position covers: one frame, or a segment's frames (GAN inputs)
    base = np.stack([np.arange(len(x)), np.arange(1, len(x) + 1)], axis=1)
    if p.segment_model is not None:
        n_frames = len(x)
        x, _, ids = p.segment_model.transform(x, [n_frames], p.pool)
        base = cluster_spans(ids, len(x))
        if base is None:  # pooling that no run grouping explains: spread the frames evenly
            edges = np.linspace(0, n_frames, len(x) + 1).round().astype(np.int64)
            base = np.stack([edges[:-1], edges[1:]], axis=1)
    if model.segmented is not None:  # the model cuts the frames into segments itself (decipher)
        logits, spans = model.segmented(x)
    else:
        logits = model.logits(x)
        # output position t reads inputs [t*k, (t+1)*k) of a model with stride k (CTC subsample, GAN stride)
        k, t = model.subsample, np.arange(len(logits))
        if p.extractor is None:  # the model read audio: its positions are its own frames
            base, k = np.stack([t, t + 1], axis=1), 1
        first = np.minimum(t * k, len(base) - 1)
        last = np.minimum((t + 1) * k, len(base)) - 1
        spans = np.stack([base[first, 0], base[np.maximum(last, first), 1]], axis=1)
    vit = viterbi_decode(logits, model.phones, spans=spans, frame_rate=p.frame_rate)
    lp = log_softmax(logits)
    best = lp.max(axis=1)
    mid = spans.mean(axis=1) / p.frame_rate

    def shift(segs: list[Segment], with_conf: bool) -> list[Item]:
        out: list[Item] = []
        for s in segs:
            a = round(min(offset + s.start, chunk_end), 3)
            b = round(min(offset + s.end, chunk_end), 3)
            # outputs beyond the last input (a generator's conv padding) share its span: a tier
            # must not overlap (Praat refuses it), so a phone starts where the one before ends
            if out and a < out[-1].end:
                a = out[-1].end
            if b <= a:
                continue
            conf = math.exp(s.score) if with_conf else _confidence(best, mid, s.start, s.end)
            out.append(Item(s.token, a, b, round(conf, 4)))
        return out

    phones = shift(vit.segments, True)
    words = []
    if p.word_decoder is not None:
        words = shift(p.word_decoder.decode(logits, spans=spans, frame_rate=p.frame_rate).word_segments, False)
    return phones, words


# ----------------------------------------------------------------------------- one recording

@dataclass
class Transcript:
    media: str                    # the recording's path, as given
    duration: float               # seconds
    chunks: list[Item]
    words: list[Item] | None      # None: no word decoding
    phones: list[Item]


def transcribe_recording(p: Pipeline, path: str | Path, cfg: TranscribeConfig) -> Transcript:
    """Chunks, phones and words of one recording, streamed (see :mod:`.stream`)."""
    rec = Recording(path)
    chunks, phones, words = [], [], []
    for s, e in find_chunks(rec, cfg.chunks):
        wav = rec.read(s, e)
        a, b = s / SAMPLE_RATE, e / SAMPLE_RATE
        ph, wd = decode_chunk(p, wav, a, b)
        conf = [x.confidence for x in ph]
        # a chunk nothing was decoded in keeps a visible label: empty intervals vanish in Praat's tiers
        chunks.append(Item(" ".join(x.label for x in (wd if p.word_decoder is not None else ph)) or "…",
                           round(a, 3), round(b, 3), round(float(np.mean(conf)), 4) if conf else float("nan")))
        phones += ph
        words += wd
    return Transcript(str(path), round(rec.duration, 3), chunks, words if p.word_decoder is not None else None, phones)


# ----------------------------------------------------------------------------- the archive

def find_audio(inputs: list[str | Path]) -> list[tuple[Path, Path]]:
    """``(file, output stem relative to DIR)`` of every recording in ``inputs`` (files, or folders
    searched recursively for :data:`AUDIO_SUFFIXES`), sorted; a folder's files keep their subfolders."""
    found: list[tuple[Path, Path]] = []
    for item in map(Path, inputs):
        if item.is_dir():
            for f in sorted(item.rglob("*")):
                if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES and not f.name.startswith("."):
                    found.append((f, f.relative_to(item).with_suffix("")))
        elif item.is_file():
            found.append((item, Path(item.stem)))
        else:
            raise FileNotFoundError(f"input not found: {item}")
    seen: dict[Path, Path] = {}
    out = []
    for f, stem in found:
        if stem in seen:  # a.wav and a.flac side by side: the second keeps its suffix in the name
            stem = stem.with_name(f.name)
        if stem in seen:
            continue  # the same file given twice
        seen[stem] = f
        out.append((f, stem))
    return out


def file_fingerprint(path: Path, edge: int = 1 << 20) -> dict:
    """Size, mtime and a hash of the first and last MiB: a changed or replaced file is noticed
    without reading hours of audio."""
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(edge))
        if st.st_size > 2 * edge:
            f.seek(-edge, os.SEEK_END)
            h.update(f.read(edge))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "edges_sha256": h.hexdigest()}


def done_path(outdir: Path, stem: Path) -> Path:
    return (outdir / stem).with_name(stem.name + ".done.json")


def is_done(outdir: Path, stem: Path, fingerprint: dict) -> bool:
    """The recording's outputs exist and its marker records this very fingerprint."""
    marker = done_path(outdir, stem)
    try:
        rec = read_json(marker) if marker.is_file() else None
    except ValueError:
        return False
    if not rec or rec.get("fingerprint") != fingerprint:
        return False
    return all((outdir / name).is_file() for name in rec.get("outputs", []))


_WORKER: dict = {}


def _init_worker(model_path, cfg, features_dir, text_dir) -> None:
    import torch

    torch.set_num_threads(cfg.threads)  # N processes x 1 thread: no oversubscription of the cores
    _WORKER["pipeline"] = load_pipeline(model_path, cfg, features_dir, text_dir)
    _WORKER["cfg"] = cfg


def _run_one(path: Path, stem: Path, outdir: Path, fingerprint: dict) -> tuple[str, str | None, float]:
    """Transcribe one recording and write its files; (path, error or None, seconds of audio)."""

    p, cfg = _WORKER["pipeline"], _WORKER["cfg"]
    try:
        tr = transcribe_recording(p, path, cfg)
    except (AudioError, OSError, ValueError) as exc:  # a bad file is reported, the archive goes on
        return str(path), str(exc).replace("\t", " ").replace("\n", " "), 0.0
    written = write_exports(tr, outdir / stem, path)
    if cfg.review:

        page = (outdir / stem).with_name(stem.name + ".html")
        written.append(write_review(tr, page, path, waveform_peaks(Recording(path))))
    # the marker comes last: a recording counts as done only once all its files are in place
    write_json(done_path(outdir, stem), {"media": str(path), "duration": tr.duration, "fingerprint": fingerprint,
                                         "outputs": [str(w.relative_to(outdir)) for w in written],
                                         "chunks": len(tr.chunks), "phones": len(tr.phones)})
    return str(path), None, tr.duration


def transcribe_archive(model_path: str | Path, inputs: list[str | Path], outdir: str | Path,
                       cfg: TranscribeConfig | None = None, *, features_dir: str | Path | None = None,
                       text_dir: str | Path | None = None, workers: int = 1, progress: bool = True) -> dict:
    """Transcribe every recording in ``inputs`` into ``outdir``; returns counts and the skipped files.

    Resumable: recordings already done with the same fingerprint are skipped (module docstring).
    ``outdir/skipped.tsv`` lists the files that could not be transcribed in this run, with the reason."""
    from tqdm import tqdm

    cfg = cfg or TranscribeConfig()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(outdir)  # a kill -9 leaves atomic writes' temporaries behind
    files = find_audio(inputs)
    if not files:
        raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {', '.join(map(str, inputs))}")
    _init_worker(model_path, cfg, features_dir, text_dir)  # errors in the model or features show before any audio
    base = _WORKER["pipeline"].fingerprint
    skipped: list[tuple[str, str]] = []
    todo, done_before, hours = [], 0, 0.0
    for f, stem in files:
        try:
            rec = Recording(f)
            fp = {**base, "input": file_fingerprint(f)}
        except (AudioError, OSError) as exc:
            skipped.append((str(f), str(exc)))
            continue
        if is_done(outdir, stem, fp):
            done_before += 1
            continue
        todo.append((f, stem, fp, rec.duration))
        hours += rec.duration / 3600
    log.info("transcribe: %d recordings (%.2f h) to do, %d done before, %d unreadable",
             len(todo), hours, done_before, len(skipped))
    t0 = time.time()
    bar = tqdm(total=round(hours, 4), unit="h", disable=not progress, desc="transcribe",
               bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} h audio [{elapsed}<{remaining}{postfix}]")
    finished = 0

    def account(result: tuple[str, str | None, float], duration: float) -> None:
        nonlocal finished
        path, error, _ = result
        if error is not None:
            skipped.append((path, error))
            log.warning("skipped %s: %s", path, error)
        else:
            finished += 1
        bar.update(round(duration / 3600, 4))
        bar.set_postfix_str(f"{finished + len(skipped)}/{len(todo) + len(skipped)} files")

    try:
        if workers <= 1 or len(todo) <= 1:
            for f, stem, fp, dur in todo:
                account(_run_one(f, stem, outdir, fp), dur)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(model_path, cfg, features_dir, text_dir)) as pool:
                futures = {pool.submit(_run_one, f, stem, outdir, fp): dur for f, stem, fp, dur in todo}
                for fut in as_completed(futures):
                    account(fut.result(), futures[fut])
    finally:
        bar.close()
        skipped.sort()
        atomic_write_text(outdir / "skipped.tsv", "path\treason\n" + "".join(
            f"{p}\t{r.replace(chr(9), ' ').replace(chr(10), ' ')}\n" for p, r in skipped))
    wall = time.time() - t0
    return {"recordings": len(files), "transcribed": finished, "done_before": done_before, "skipped": skipped,
            "audio_hours": hours, "wall_s": wall, "speed": (hours * 3600 / wall) if wall > 0 else None}
