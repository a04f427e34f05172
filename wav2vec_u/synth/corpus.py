"""A synthetic speech corpus: espeak-ng reads sentences with many voices; a disjoint rest is text.

    from wav2vec_u.synth.corpus import SynthConfig, synthesize_corpus
    cfg = SynthConfig(lang="en-us", num_train=200, num_valid=50, num_unpaired=2000, seed=1)
    summary = synthesize_corpus("data/sentences/en.txt", "out/synth", cfg)

Writes into the output folder (the contract the other stages read):

- ``audio/{train,valid}/*.wav``  16 kHz mono PCM-16, edge silence trimmed
- ``train.tsv``, ``valid.tsv``    fairseq manifests, root = the output folder
- ``train.phn``, ``valid.phn``    reference phones, one utterance per line, space separated, no
                                  ``<SIL>``: exactly ``phonemize([normalize_line(s)], lang)``, the
                                  phone inventory the text side uses
- ``train.wrd``, ``valid.wrd``    the normalised words that were spoken
- ``train.timings.jsonl``, ...    per utterance: voice, rate, pitch, the phones and their
                                  (start, end) seconds from espeak-ng's phoneme events where they
                                  align with the reference phones (``null`` where they do not)
- ``unpaired.txt``                other sentences (raw lines), none equal to a spoken one after
                                  normalisation
- ``config.yaml``, ``meta.json``, ``synth.log``

Sentences are deduplicated after normalisation and shuffled with the seed; the first
``num_train + num_valid`` are spoken, the next ``num_unpaired`` (or all the rest) are the text.
Each utterance draws a voice variant, rate and pitch from the configured ranges with the
seed. Synthesis runs in ``workers`` processes; every batch of ``batch_size`` utterances starts
in a fresh process with a seeded ``rand()``, so the audio is the same for the same seed
whatever the number of workers.
"""

from __future__ import annotations

import difflib
import json
import logging
import multiprocessing as mp
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from wav2vec_u.audio.io import SAMPLE_RATE, resample, write_wav
from wav2vec_u.audio.manifest import write_manifest
from wav2vec_u.audio.vad import trim_edges
from wav2vec_u.config import at_least, in_range, non_negative, positive
from wav2vec_u.io import atomic_write_text, sha256_file, write_json
from wav2vec_u.text.normalize import normalize_line
from wav2vec_u.synth import espeak
from wav2vec_u.synth.espeak import Espeak, EspeakError
from wav2vec_u.text.phonemize import espeak_version, phonemize
from wav2vec_u.tracking import provenance

log = logging.getLogger(__name__)

# espeak-ng 1.51 variants that sound like speech (whisper, croak and the novelty voices left out)
DEFAULT_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                    "klatt", "klatt2", "klatt3", "klatt4"]
STRESS = str.maketrans("", "", "ˈˌ")


@dataclass
class VoiceConfig:
    variants: list[str] = field(default_factory=lambda: list(DEFAULT_VARIANTS))
    num_variants: int = non_negative(default=0)  # 0 = use every listed variant; else a seeded subset
    rate: tuple[int, int] = positive(default=(140, 200))  # words per minute, inclusive range (espeak default 175)
    pitch: tuple[int, int] = in_range(0, 100, default=(25, 75))  # base pitch 0-100 (espeak default 50)
    pitch_range: tuple[int, int] = in_range(0, 100, default=(30, 70))  # intonation 0-100 (espeak default 50)


@dataclass
class SynthConfig:
    lang: str = "en-us"                        # espeak-ng voice = phonemizer language (en-us, es, fr-fr, de)
    num_train: int = at_least(1, default=200)
    num_valid: int = non_negative(default=50)
    num_unpaired: int = at_least(-1, default=-1)  # -1: every sentence not spoken
    seed: int = 1
    workers: int = at_least(1, default=2)
    batch_size: int = at_least(1, default=16)  # utterances per fresh synthesis process
    backend: Literal["auto", "library", "cli"] = "auto"  # library gives phone timings; the cli program does not
    trim_threshold_db: float = non_negative(default=40.0)  # edge frames this far below the loudest are silence
    trim_margin_s: float = non_negative(default=0.03)  # silence kept before the first/after the last speech frame
    voice: VoiceConfig = field(default_factory=VoiceConfig)


# ----------------------------------------------------------------------------- sentences

def read_sentences(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sentence file not found: {path} (shipped files: data/sentences/en.txt, es.txt)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"sentence file {path} is not UTF-8 text: {exc}") from None
    return [line.strip() for line in lines if line.strip()]


def split_sentences(sentences: list[str], num_spoken: int, num_unpaired: int, seed: int
                    ) -> tuple[list[tuple[str, str]], list[str]]:
    """Seeded disjoint choice: ``num_spoken`` (raw, normalised) pairs to speak, and unpaired raw lines.

    Lines are deduplicated on their normalised form first, so no unpaired line normalises to a
    spoken sentence. ``num_unpaired=-1`` takes every remaining sentence.
    """
    unique: dict[str, str] = {}
    for raw in sentences:
        norm = normalize_line(raw)
        if norm and norm not in unique:
            unique[norm] = raw
    pairs = [(raw, norm) for norm, raw in unique.items()]
    need = num_spoken + max(num_unpaired, 0)
    if len(pairs) < need:
        raise ValueError(f"need {need} distinct sentences ({num_spoken} spoken + {max(num_unpaired, 0)} unpaired), "
                         f"the file has {len(pairs)} after normalisation and deduplication")
    order = np.random.default_rng(seed).permutation(len(pairs))
    spoken = [pairs[i] for i in order[:num_spoken]]
    rest = order[num_spoken:] if num_unpaired < 0 else order[num_spoken:num_spoken + num_unpaired]
    return spoken, [pairs[i][0] for i in rest]


# ----------------------------------------------------------------------------- voices

def draw_voices(n: int, cfg: SynthConfig, available: list[str] | None, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Per utterance: espeak voice name, variant, rate, pitch and pitch range, drawn with ``rng``."""
    vc = cfg.voice
    variants = list(vc.variants)
    if not variants:
        raise ValueError("voice.variants is empty: list at least one espeak-ng variant (e.g. m3, f2)")
    if available:
        missing = [v for v in variants if v not in available]
        if missing:
            raise ValueError(f"espeak-ng has no voice variant(s) {missing}; installed: {', '.join(available)}")
    if 0 < vc.num_variants < len(variants):
        variants = [variants[i] for i in sorted(rng.permutation(len(variants))[: vc.num_variants])]
    for name, (lo, hi), (vmin, vmax) in (("rate", vc.rate, (80, 450)), ("pitch", vc.pitch, (0, 100)),
                                         ("pitch_range", vc.pitch_range, (0, 100))):
        if not vmin <= lo <= hi <= vmax:
            raise ValueError(f"voice.{name}={[lo, hi]}: need {vmin} <= low <= high <= {vmax}")
    out = []
    for _ in range(n):
        variant = variants[int(rng.integers(len(variants)))]
        out.append({"voice": f"{cfg.lang}+{variant}", "variant": variant,
                    "rate": int(rng.integers(vc.rate[0], vc.rate[1] + 1)),
                    "pitch": int(rng.integers(vc.pitch[0], vc.pitch[1] + 1)),
                    "pitch_range": int(rng.integers(vc.pitch_range[0], vc.pitch_range[1] + 1))})
    return out


# ----------------------------------------------------------------------------- timings

def align_timings(phones: list[str], spans: list[tuple[str, float, float]] | None
                  ) -> tuple[list[list[float] | None], str, float]:
    """Times of the reference phones from espeak's phoneme events, where the two sequences agree.

    Returns ([start, end] or None per reference phone, status, coverage): status ``exact``
    when the event names equal the reference phones, ``partial`` when only some align (a
    longest-matching-blocks alignment; unmatched phones get None, never an invented time),
    ``unavailable`` without events.
    """
    if not spans:
        return [None] * len(phones), "unavailable", 0.0
    names = [s[0].translate(STRESS) for s in spans]
    times: list[list[float] | None] = [None] * len(phones)
    matcher = difflib.SequenceMatcher(a=phones, b=names, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            _, start, end = spans[block.b + k]
            times[block.a + k] = [round(start, 4), round(end, 4)]
    covered = sum(t is not None for t in times)
    status = "exact" if names == phones else "partial"
    return times, status, covered / max(len(phones), 1)


# ----------------------------------------------------------------------------- synthesis workers

def _synth_batch(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Runs in a fresh process: synthesise, resample, trim and write each utterance of the batch."""

    engine = None
    if job["backend"] in ("auto", "library"):
        try:
            engine = espeak.Espeak()
            engine.seed(job["seed"])
        except (espeak.EspeakError, OSError):
            if job["backend"] == "library":
                raise
    results = []
    for utt in job["utts"]:
        if engine is not None:
            out = engine.synthesize(utt["text"], utt["voice"], utt["rate"], utt["pitch"], utt["pitch_range"])
        else:
            out = espeak.synthesize_cli(utt["text"], utt["voice"], utt["rate"], utt["pitch"])
        wav = resample(out.audio.astype(np.float32) / 32768.0, out.sample_rate, SAMPLE_RATE)
        start, end = trim_edges(wav, SAMPLE_RATE, job["trim_db"], job["trim_margin"])
        wav = wav[start:end]
        if wav.size == 0 or np.abs(wav).max() == 0:
            raise espeak.EspeakError(f"espeak-ng produced no audio for {utt['text']!r} with voice {utt['voice']}")
        write_wav(Path(job["outdir"]) / utt["path"], wav, SAMPLE_RATE)
        spans = None
        if out.phonemes is not None:
            offset, dur = start / SAMPLE_RATE, len(wav) / SAMPLE_RATE
            spans = [(n, min(max(a - offset, 0.0), dur), min(max(b - offset, 0.0), dur)) for n, a, b in out.phonemes]
        results.append({"id": utt["id"], "num_samples": int(len(wav)), "spans": spans,
                        "engine": "library" if engine is not None else "cli"})
    return results


def _run_batches(jobs: list[dict[str, Any]], workers: int, total: int, progress: bool) -> dict[str, dict]:
    from tqdm import tqdm

    # forkserver: every batch starts from a clean process (espeak-ng keeps state between
    # utterances), without paying a full interpreter start per batch
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        # imported once in the server, not in every batch process (scipy.signal alone takes ~1 s)
        ctx.set_forkserver_preload(["wav2vec_u.synth.corpus", "scipy.signal", "soundfile"])
    else:
        ctx = mp.get_context("spawn")
    results: dict[str, dict] = {}
    with ctx.Pool(processes=max(1, min(workers, len(jobs))), maxtasksperchild=1) as pool, \
            tqdm(total=total, desc="synth", unit="utt", disable=not progress) as bar:
        for batch in pool.imap_unordered(_synth_batch, jobs):
            for r in batch:
                results[r["id"]] = r
            bar.update(len(batch))
    return results


# ----------------------------------------------------------------------------- corpus

def output_files() -> list[str]:
    return ["train.tsv", "valid.tsv", "train.phn", "valid.phn", "train.wrd", "valid.wrd",
            "train.timings.jsonl", "valid.timings.jsonl", "unpaired.txt", "meta.json"]


def synthesize_corpus(sentences_path: str | Path, outdir: str | Path, cfg: SynthConfig | None = None,
                      progress: bool = True) -> dict[str, Any]:
    """Synthesise the corpus described in the module docstring; returns a summary (also in meta.json)."""

    cfg = cfg or SynthConfig()
    if cfg.num_train < 1 or cfg.num_valid < 0:
        raise ValueError(f"num_train must be >= 1 and num_valid >= 0, got {cfg.num_train} and {cfg.num_valid}")
    if cfg.workers < 1 or cfg.batch_size < 1:
        raise ValueError("workers and batch_size must be >= 1")
    t0 = time.time()
    sentences_path, outdir = Path(sentences_path), Path(outdir)
    spoken, unpaired = split_sentences(read_sentences(sentences_path), cfg.num_train + cfg.num_valid,
                                       cfg.num_unpaired, cfg.seed)
    texts = [norm for _, norm in spoken]
    phones = [[p for word in sent for p in word] for sent in phonemize(texts, cfg.lang)]
    for (raw, norm), ph in zip(spoken, phones):
        if not ph:
            raise ValueError(f"{sentences_path}: phonemizer gives no phones for {raw!r} ({cfg.lang}); remove the line")

    available = None
    if cfg.backend != "cli":
        available = _installed_variants()
    rng = np.random.default_rng(cfg.seed)
    voices = draw_voices(len(spoken), cfg, available, rng)
    splits = ["train"] * cfg.num_train + ["valid"] * cfg.num_valid
    utts = []
    counters = {"train": 0, "valid": 0}
    for split, (raw, norm), ph, voice in zip(splits, spoken, phones, voices):
        uid = f"{split}_{counters[split]:05d}"
        counters[split] += 1
        utts.append({"id": uid, "split": split, "path": f"audio/{split}/{uid}.wav", "text": norm, "phones": ph, **voice})

    seeds = np.random.SeedSequence(cfg.seed).spawn(max(1, -(-len(utts) // cfg.batch_size)))
    jobs = [{"utts": utts[i:i + cfg.batch_size], "seed": int(seeds[k].generate_state(1)[0]), "outdir": str(outdir),
             "backend": cfg.backend, "trim_db": cfg.trim_threshold_db, "trim_margin": cfg.trim_margin_s}
            for k, i in enumerate(range(0, len(utts), cfg.batch_size))]
    log.info("synthesising %d utterances (%d train, %d valid) with %d workers", len(utts), cfg.num_train,
             cfg.num_valid, cfg.workers)
    results = _run_batches(jobs, cfg.workers, len(utts), progress)

    status_counts: dict[str, int] = {}
    durations = {"train": 0.0, "valid": 0.0}
    for split in ("train", "valid"):
        rows = [u for u in utts if u["split"] == split]
        entries, records = [], []
        for u in rows:
            r = results[u["id"]]
            entries.append((u["path"], r["num_samples"]))
            durations[split] += r["num_samples"] / SAMPLE_RATE
            times, status, coverage = align_timings(u["phones"], r["spans"])
            status_counts[status] = status_counts.get(status, 0) + 1
            records.append({"id": u["id"], "path": u["path"], "num_samples": r["num_samples"],
                            "duration": round(r["num_samples"] / SAMPLE_RATE, 4), "text": u["text"],
                            "voice": u["voice"], "variant": u["variant"], "rate": u["rate"], "pitch": u["pitch"],
                            # the espeak-ng program has no pitch-range option: only the library applies it
                            "pitch_range": u["pitch_range"] if r["engine"] == "library" else None,
                            "engine": r["engine"], "phones": u["phones"],
                            "timings": times, "timing_status": status, "timing_coverage": round(coverage, 4),
                            "espeak_phones": None if r["spans"] is None else [s[0] for s in r["spans"]]})
        write_manifest(outdir / f"{split}.tsv", outdir, entries)
        atomic_write_text(outdir / f"{split}.phn", "".join(" ".join(u["phones"]) + "\n" for u in rows))
        atomic_write_text(outdir / f"{split}.wrd", "".join(u["text"] + "\n" for u in rows))
        atomic_write_text(outdir / f"{split}.timings.jsonl",
                          "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records))
    atomic_write_text(outdir / "unpaired.txt", "".join(s + "\n" for s in unpaired))
    summary = {"lang": cfg.lang, "num_train": cfg.num_train, "num_valid": cfg.num_valid,
               "num_unpaired": len(unpaired), "hours": {k: round(v / 3600, 4) for k, v in durations.items()},
               "timing_status": status_counts, "espeak_ng": espeak_version(),
               "sentences": {"path": str(sentences_path), "sha256": sha256_file(sentences_path)},
               "seconds": round(time.time() - t0, 2)}
    write_meta(outdir, cfg, summary)
    return summary


def _installed_variants() -> list[str] | None:
    """Variant names espeak-ng has installed (None if the library cannot tell)."""

    try:
        return Espeak().variants() or None
    except (EspeakError, OSError):
        return None


def write_meta(outdir: str | Path, cfg: SynthConfig, summary: dict[str, Any]) -> None:

    meta = provenance(cfg, cfg.seed, {"sentences": summary["sentences"]["sha256"]})
    meta["summary"] = summary
    write_json(Path(outdir) / "meta.json", meta)
