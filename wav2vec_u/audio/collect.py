"""Collect a folder of audio into a fairseq manifest: find, check, convert to 16 kHz mono, split.

    summary = make_manifest(Path("/data/corpus"), Path("out/manifest"), ManifestConfig(valid_percent=0.05))

``w2vu manifest`` (:mod:`wav2vec_u.audio.manifest_command`) runs this as a cached stage; see its
docstring for the checks, the skip reasons and how files are converted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from wav2vec_u.config import in_range, non_negative
from wav2vec_u.audio.manifest import name_problem, output_names, path_inside, write_manifest
from wav2vec_u.io import atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class ManifestConfig:
    extensions: list[str] = field(default_factory=lambda: ["wav", "flac", "ogg", "mp3"])
    min_seconds: float = non_negative(default=0.5)  # shorter files give too few frames to be worth keeping
    silence_peak: float = non_negative(default=0.001)  # peak |x| below this (-60 dBFS) counts as silent
    copy_audio: Literal["always", "as_needed"] = "as_needed"
    valid_percent: float = in_range(0.0, 1.0, default=0.0)  # fraction (0-1) of files drawn into valid.tsv
    seed: int = 1


@dataclass
class FileCheck:
    rel: str
    ok: bool
    reason: str = ""
    detail: str = ""
    sample_rate: int = 0
    channels: int = 0
    frames: int = 0
    subtype: str = ""
    format: str = ""
    problems: list[str] = field(default_factory=list)  # decodes, but looks damaged (logged)

    @property
    def needs_conversion(self) -> bool:
        return not (self.format == "WAV" and self.sample_rate == 16000 and self.channels == 1 and self.subtype == "PCM_16")


def find_audio(src: Path, extensions: list[str], exclude: Path | None = None) -> list[Path]:
    exts = {"." + e.lower().lstrip(".") for e in extensions}
    out = []
    for p in sorted(src.rglob("*")):
        if exclude is not None and (p == exclude or exclude in p.parents):
            continue
        if p.is_file() and p.suffix.lower() in exts:
            out.append(p)
    return out


def check_file(path: Path, rel: str, cfg: ManifestConfig) -> tuple[FileCheck, np.ndarray | None]:
    """Decode one file; (check, mono float32 samples at the file's rate) or (check with reason, None)."""
    import soundfile as sf

    from wav2vec_u.audio.io import audio_problems

    why = name_problem(rel)
    if why is not None:
        return FileCheck(rel, False, "bad_name", f"{why}, which a manifest line cannot hold: rename the file"), None
    if path.stat().st_size == 0:
        return FileCheck(rel, False, "empty", "0 bytes"), None
    try:
        info = sf.info(str(path))
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile errors come as LibsndfileError/RuntimeError/TypeError
        return FileCheck(rel, False, "unreadable", str(exc).replace("\t", " ").replace("\n", " ")), None
    chk = FileCheck(rel, True, sample_rate=int(sr), channels=int(data.shape[1]), frames=int(data.shape[0]),
                    subtype=str(info.subtype), format=str(info.format), problems=audio_problems(path, data, info))
    if data.shape[0] == 0:
        chk.ok, chk.reason, chk.detail = False, "empty", "0 samples"
        return chk, None
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    seconds = data.shape[0] / sr
    if seconds < cfg.min_seconds:
        chk.ok, chk.reason, chk.detail = False, "too_short", f"{seconds:.3f} s < min_seconds={cfg.min_seconds}"
        return chk, None
    peak = float(np.abs(wav).max())
    if peak < cfg.silence_peak:
        chk.ok, chk.reason, chk.detail = False, "silent", f"peak {peak:.2e} < silence_peak={cfg.silence_peak}"
        return chk, None
    return chk, wav


def split_valid(n: int, valid_percent: float, seed: int) -> np.ndarray:
    """Boolean mask of the files drawn into valid (seeded, as fairseq's wav2vec_manifest.py)."""
    rng = np.random.default_rng(seed)
    return rng.random(n) < valid_percent


def make_manifest(src: str | Path, outdir: str | Path, cfg: ManifestConfig | None = None,
                  progress: bool = True) -> dict[str, Any]:
    """Check, convert and list the audio under ``src``; returns a summary (also written to meta.json)."""
    from tqdm import tqdm

    from wav2vec_u.audio.io import SAMPLE_RATE, resample, write_wav

    cfg = cfg or ManifestConfig()
    src, outdir = Path(src).resolve(), Path(outdir).resolve()
    if not src.is_dir():
        raise FileNotFoundError(f"audio folder not found: {src}")
    if outdir == src:
        raise ValueError(f"output folder {outdir} is the source folder: choose another (the source is never modified)")
    if not 0.0 <= cfg.valid_percent < 1.0:
        raise ValueError(f"valid_percent must be in [0, 1), got {cfg.valid_percent}")
    files = find_audio(src, cfg.extensions, exclude=outdir)
    if not files:
        raise ValueError(f"no audio files ({', '.join(cfg.extensions)}) under {src}")

    checks: list[FileCheck] = []
    for path in tqdm(files, desc="check", unit="file", disable=not progress):
        chk, _ = check_file(path, str(path.relative_to(src)), cfg)
        for problem in chk.problems:
            log.warning("%s: %s", chk.rel, problem)
        checks.append(chk)
    good = [c for c in checks if c.ok]
    in_place = cfg.copy_audio == "as_needed" and not any(c.needs_conversion for c in good)
    root = src if in_place else outdir / "audio"
    entries: list[tuple[str, int]] = []
    names = dict(zip([c.rel for c in good], output_names([c.rel for c in good])))
    converted = 0
    for chk in tqdm(good, desc="convert" if not in_place else "list", unit="file", disable=not progress or in_place):
        if in_place:
            entries.append((chk.rel, chk.frames))
            continue
        _, wav = check_file(src / chk.rel, chk.rel, cfg)
        assert wav is not None
        if chk.channels > 1:
            log.warning("%s: %d channels mixed down to mono", chk.rel, chk.channels)
        if chk.sample_rate != SAMPLE_RATE:
            log.info("%s: resampled %d Hz -> %d Hz", chk.rel, chk.sample_rate, SAMPLE_RATE)
        wav = resample(wav, chk.sample_rate, SAMPLE_RATE)
        name = names[chk.rel]
        write_wav(path_inside(root, name), wav, SAMPLE_RATE)
        converted += chk.needs_conversion
        entries.append((name, len(wav)))

    if not entries:
        reasons = ", ".join(sorted({c.reason for c in checks}))
        raise ValueError(f"no usable audio under {src}: every file was skipped ({reasons}); see the log")
    mask = split_valid(len(entries), cfg.valid_percent, cfg.seed)
    write_manifest(outdir / "train.tsv", root, [e for e, v in zip(entries, mask) if not v])
    if cfg.valid_percent > 0:
        write_manifest(outdir / "valid.tsv", root, [e for e, v in zip(entries, mask) if v])
    skipped = [c for c in checks if not c.ok]
    atomic_write_text(outdir / "skipped.tsv", "path\treason\tdetail\n" +
                      "".join(f"{_field(c.rel)}\t{c.reason}\t{_field(c.detail)}\n" for c in skipped))
    for c in skipped:
        log.warning("skipped %s: %s (%s)", _field(c.rel), c.reason, c.detail)
    reasons: dict[str, int] = {}
    for c in skipped:
        reasons[c.reason] = reasons.get(c.reason, 0) + 1
    return {"source": str(src), "root": str(root), "in_place": in_place, "files": len(checks), "kept": len(entries),
            "train": int((~mask).sum()), "valid": int(mask.sum()), "converted": converted, "skipped": reasons,
            "stereo_mixed_down": sum(c.channels > 1 for c in good),
            "hours": round(sum(n for _, n in entries) / SAMPLE_RATE / 3600, 4)}


def _field(text: str) -> str:
    """``text`` as one field of a tab-separated UTF-8 line: a name that cannot be one is written
    as Python's ``ascii()`` spells it (``a\\tb.wav``)."""

    return ascii(text)[1:-1] if name_problem(text) else text


def source_listing(src: Path, cfg: ManifestConfig, exclude: Path) -> list[list[Any]]:
    """(relative path, size, mtime) of every candidate file: the stage's input fingerprint."""
    return [[str(p.relative_to(src)), p.stat().st_size, p.stat().st_mtime_ns]
            for p in find_audio(src, cfg.extensions, exclude=exclude)]
