"""Silence removal over a manifest: new 16 kHz audio, a new manifest, labels and timings carried along.

    summary = vad_manifest(Path("out/manifest/train.tsv"), Path("out/vad"), VadCommandConfig())

``w2vu vad`` (:mod:`wav2vec_u.audio.vad_command`) runs this as a cached stage over every manifest
of a folder. Output names come from the one path-safety rule (audio.manifest.output_names).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wav2vec_u.audio.io import SAMPLE_RATE
from wav2vec_u.audio.vad import VadConfig
from wav2vec_u.config import at_least, non_negative
from wav2vec_u.audio.io import AudioError, write_wav
from wav2vec_u.audio.manifest import entry_lines, load_listed, output_names as safe_names, path_inside, read_manifest, require_manifest, scan_manifests, write_manifest
from wav2vec_u.audio.vad import remove_silence
from wav2vec_u.config import to_dict
from wav2vec_u.io import atomic_write_text

log = logging.getLogger(__name__)


LABEL_SUFFIXES = (".phn", ".wrd", ".ltr")


@dataclass
class VadCommandConfig:
    vad: VadConfig = field(default_factory=VadConfig)
    min_seconds: float = non_negative(default=0.2)  # outputs shorter than this (after VAD) are skipped
    workers: int = at_least(1, default=2)


def _process(job: tuple[str, str, str, int, str, dict]) -> dict[str, Any]:
    """VAD one file. Runs in a worker process, which has no log handlers: warnings come back in
    the result (``problems``) and the parent logs them."""

    src, dst, rel, num_samples, where, cfg = job
    problems: list[str] = []
    try:
        wav = load_listed(src, num_samples, where, problems)
    except (AudioError, FileNotFoundError) as exc:
        detail = " ".join(str(exc).split())  # one field of skipped.tsv: no tabs or line breaks
        return {"rel": rel, "ok": False, "reason": "unreadable", "detail": detail, "problems": problems}
    out, kept = remove_silence(wav, SAMPLE_RATE, VadConfig(**cfg["vad"]))
    if len(out) < cfg["min_seconds"] * SAMPLE_RATE:
        reason = "no_speech" if not kept else "too_short"
        return {"rel": rel, "ok": False, "reason": reason, "detail": f"{len(out) / SAMPLE_RATE:.3f} s of speech",
                "problems": problems}
    write_wav(dst, out, SAMPLE_RATE)
    return {"rel": rel, "ok": True, "num_samples": int(len(out)), "in_samples": int(len(wav)),
            "kept": [[round(a / SAMPLE_RATE, 3), round(b / SAMPLE_RATE, 3)] for a, b in kept], "kept_samples": kept,
            "problems": problems}


def map_time(t: float, kept: list[tuple[int, int]], sr: int = SAMPLE_RATE) -> float | None:
    """A time in the input (seconds) -> the same instant in the VAD output, None if it was cut."""
    x, offset = t * sr, 0
    for a, b in kept:
        if a <= x <= b:
            return (offset + x - a) / sr
        offset += b - a
    return None


def shift_timings(record: dict[str, Any], kept: list[tuple[int, int]], path: str, num_samples: int) -> dict[str, Any]:
    """A synth ``timings.jsonl`` record moved onto the VAD output: phones in cut audio get None."""
    times = []
    for t in record.get("timings") or []:
        start, end = (None, None) if t is None else (map_time(t[0], kept), map_time(t[1], kept))
        times.append(None if start is None or end is None else [round(start, 4), round(end, 4)])
    known = sum(t is not None for t in times)
    status = record.get("timing_status", "unavailable")
    if status == "exact" and known < len(times):
        status = "partial"
    return {**record, "path": path, "num_samples": num_samples, "duration": round(num_samples / SAMPLE_RATE, 4),
            "timings": times, "timing_status": status if known or not times else "unavailable",
            "timing_coverage": round(known / max(len(times), 1), 4)}


def output_names(rels: list[str]) -> list[str]:
    """WAV names under ``audio/<split>/``: the path-safety rule of
    :func:`wav2vec_u.audio.manifest.output_names` (inside OUTDIR, distinct), without the folders
    every entry shares (``audio/train/u1.flac`` -> ``u1.wav``), so the output does not nest
    ``audio/train`` twice."""

    return safe_names(rels, ".wav", strip_common=True)


def vad_manifest(manifest: str | Path, outdir: str | Path, cfg: VadCommandConfig | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """VAD every utterance of ``manifest``; writes OUTDIR/<split>.tsv etc. Returns a summary."""
    from tqdm import tqdm


    cfg = cfg or VadCommandConfig()
    manifest, outdir = Path(manifest), Path(outdir)
    split = manifest.stem
    root, entries = read_manifest(manifest)
    if not entries:
        raise ValueError(f"manifest {manifest} lists no audio")
    audio_root = (outdir / "audio" / split).resolve()
    out_names = output_names([rel for rel, _ in entries])
    plain_cfg = to_dict(cfg)
    jobs = [(str(root / rel), str(path_inside(audio_root, name)), rel, n, f"{manifest}, line {line}", plain_cfg)
            for (rel, n), name, line in zip(entries, out_names, entry_lines(manifest))]
    if cfg.workers > 1 and len(jobs) > 1:
        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(min(cfg.workers, len(jobs))) as pool:
            results = list(tqdm(pool.imap(_process, jobs, chunksize=4), total=len(jobs), desc=f"vad {split}",
                                unit="utt", disable=not progress))
    else:
        results = [_process(j) for j in tqdm(jobs, desc=f"vad {split}", unit="utt", disable=not progress)]

    for r in results:
        for problem in r["problems"]:
            log.warning("%s", problem)
    kept_idx = [i for i, r in enumerate(results) if r["ok"]]
    if not kept_idx:
        raise ValueError(no_file_kept(manifest, results, plain_cfg["vad"]))
    write_manifest(outdir / f"{split}.tsv", audio_root, [(out_names[i], results[i]["num_samples"]) for i in kept_idx])
    atomic_write_text(outdir / f"{split}.vad.jsonl", "".join(
        json.dumps({"path": out_names[i], "source": entries[i][0], "in_seconds": results[i]["in_samples"] / SAMPLE_RATE,
                    "out_seconds": results[i]["num_samples"] / SAMPLE_RATE, "kept": results[i]["kept"]}) + "\n"
        for i in kept_idx))
    skipped = [r for r in results if not r["ok"]]
    for r in skipped:
        log.warning("vad: skipped %s: %s (%s)", r["rel"], r["reason"], r["detail"])
    copied = []
    for suffix in LABEL_SUFFIXES:
        labels = manifest.with_suffix(suffix)
        if not labels.is_file():
            continue
        lines = labels.read_text(encoding="utf-8").splitlines()
        if len(lines) != len(entries):
            raise ValueError(f"{labels} has {len(lines)} lines but {manifest} lists {len(entries)} files: "
                             "labels must have one line per utterance")
        atomic_write_text(outdir / f"{split}{suffix}", "".join(lines[i] + "\n" for i in kept_idx))
        copied.append(suffix)
    timings = manifest.with_suffix(".timings.jsonl")
    if timings.is_file():
        records = [json.loads(x) for x in timings.read_text(encoding="utf-8").splitlines() if x.strip()]
        if len(records) != len(entries):
            raise ValueError(f"{timings} has {len(records)} records but {manifest} lists {len(entries)} files")
        atomic_write_text(outdir / f"{split}.timings.jsonl", "".join(
            json.dumps(shift_timings(records[i], results[i]["kept_samples"], out_names[i], results[i]["num_samples"]),
                       ensure_ascii=False) + "\n" for i in kept_idx))
        copied.append(".timings.jsonl")
    total_in = sum(r["in_samples"] for r in results if r["ok"]) / SAMPLE_RATE
    total_out = sum(r["num_samples"] for r in results if r["ok"]) / SAMPLE_RATE
    return {"split": split, "files": len(entries), "kept": len(kept_idx), "skipped": skipped,
            "seconds_in": round(total_in, 2), "seconds_out": round(total_out, 2), "labels_copied": copied}


def no_file_kept(manifest: Path, results: list[dict[str, Any]], vad_cfg: dict) -> str:
    """The error when every file of a manifest was skipped: which files, and why."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r["reason"]] = counts.get(r["reason"], 0) + 1
    shown = "; ".join(f"{r['rel']}: {r['reason']} ({r['detail']})" for r in results[:5])
    more = f"; and {len(results) - 5} more" if len(results) > 5 else ""
    hint = f" (VAD settings: {vad_cfg})" if counts.keys() & {"no_speech", "too_short"} else ""
    return (f"{manifest}: no file kept, all {len(results)} skipped "
            f"({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}): {shown}{more}{hint}")


def _manifests(path: Path) -> list[Path]:
    """The manifests to VAD, checked before anything is written: a folder's manifests by format
    (``skipped.tsv`` and stray tables are not splits), or one given file, which must be one."""

    if path.is_dir():
        manifests = scan_manifests(path)
        if not manifests:
            raise FileNotFoundError(f"no manifest in {path} (a .tsv whose first line is the audio root folder, "
                                    "then path<TAB>num_samples lines; write one with `w2vu manifest`)")
        return [require_manifest(m) for m in manifests]
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    return [require_manifest(path)]
