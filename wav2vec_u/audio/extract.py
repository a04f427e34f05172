"""Frame feature extraction at scale: batched by length, sharded, resumable, with provenance.

    from wav2vec_u.audio.extract import ExtractConfig, extract_split
    cfg = ExtractConfig()                                  # MFCC by default
    extract_split("corpus/train.tsv", "feats", "train", cfg)               # one job
    extract_split("corpus/train.tsv", "feats", "train", cfg, shard=(2, 8)) # job 3 of 8

Output (fairseq's layout): ``feats/train.npy`` (all frames, manifest order), ``train.lengths``,
``train.tsv`` (+ ``.phn/.wrd/.ltr`` found beside the manifest), ``train.extract.json`` (what
made this split) and ``meta.json`` (extractor, model path and sha256, layer, config, manifest
hash, versions) covering every split in the folder.

How it survives kills and splits work:

- Utterances are processed in chunks of ``chunk_utterances`` (manifest order). Each finished chunk
  is written atomically to ``.parts/<job>/partNNNNNN.npz``; a rerun with the same job fingerprint
  (extractor, model hash, config, manifest hash, shard) skips finished chunks, so a kill loses
  at most one chunk. A changed fingerprint discards stale parts.
- ``shard=(i, n)`` takes the i-th of n contiguous slices of the manifest and writes
  ``train.shard{i}of{n}.npy/.lengths/.json``. When all n shards exist (whichever job finishes
  last), they are merged in manifest order into ``train.npy``; ``w2vu extract --merge`` does the
  same by hand.
- Within a chunk, utterances are sorted by length and batched up to ``batch_seconds`` of padded
  audio. Extractors whose outputs could see padding (GroupNorm conv stacks) run one by one.
"""

from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from wav2vec_u.audio.features import Extractor, FeatureConfig, build_extractor
from wav2vec_u.audio.features_io import copy_manifest_and_labels, read_lengths, write_lengths
from wav2vec_u.audio.io import SAMPLE_RATE
from wav2vec_u.audio.manifest import entry_lines, load_listed, read_manifest
from wav2vec_u.config import at_least, positive, to_dict
from wav2vec_u.io import atomic_path, read_json, remove_stale_temporaries, sha256_file, sha256_json, write_json
from wav2vec_u.tracking import provenance

log = logging.getLogger(__name__)

MIN_SAMPLES = 400  # 25 ms: one MFCC window, and wav2vec 2.0's conv receptive field


@dataclass
class ExtractConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    batch_seconds: float = positive(default=160.0)  # padded audio per batch (SSL models); ~1 GB activations for Large
    max_batch: int = at_least(1, default=32)  # utterances per batch at most
    chunk_utterances: int = at_least(1, default=256)  # utterances per resumable part file
    save_dtype: Literal["float32", "float16"] = "float32"
    num_workers: int = at_least(1, default=2)  # threads that read and resample audio


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` (0-based i) -> (i, n); None -> (0, 1)."""
    if not text:
        return 0, 1
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n with 0 <= i < n (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return i, n


def shard_range(num: int, i: int, n: int) -> tuple[int, int]:
    """Contiguous slice [start, end) of ``num`` utterances for shard i of n (sizes differ by <= 1)."""
    return (num * i) // n, (num * (i + 1)) // n


def make_batches(lengths: list[int], batch_samples: int, max_batch: int) -> list[list[int]]:
    """Indices grouped longest-first so that (batch size x longest) <= batch_samples."""
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    batches, cur = [], []
    for k in order:
        if cur and ((len(cur) + 1) * lengths[cur[0]] > batch_samples or len(cur) >= max_batch):
            batches.append(cur)
            cur = []
        cur.append(k)
    if cur:
        batches.append(cur)
    return batches


class ExtractionJob:
    """One split (or one shard of it) of one manifest with one extractor."""

    def __init__(self, manifest: str | Path, outdir: str | Path, split: str, cfg: ExtractConfig,
                 shard: tuple[int, int] = (0, 1), extractor: Extractor | None = None):
        self.manifest, self.outdir, self.split, self.cfg = Path(manifest), Path(outdir), split, cfg
        self.root, entries = read_manifest(self.manifest)
        if not entries:
            raise ValueError(f"manifest {self.manifest} lists no audio files")
        self.shard_i, self.shard_n = shard
        self.all_entries = entries
        start, end = shard_range(len(entries), *shard)
        self.start, self.entries = start, entries[start:end]
        self.lines = entry_lines(self.manifest)[start:end]  # for messages about one utterance
        self.extractor = extractor if extractor is not None else build_extractor(cfg.features)
        self.describe = self.extractor.describe()
        self.manifest_sha = sha256_file(self.manifest)
        # the job fingerprint leaves out the shard and the batching (neither changes the output)
        self.split_fp = sha256_json({"extractor": self.describe, "features": to_dict(cfg.features),
                                     "save_dtype": cfg.save_dtype, "manifest_sha256": self.manifest_sha})
        self.fp = sha256_json({"split": self.split_fp, "shard": list(shard), "chunk": cfg.chunk_utterances})
        self.name = split if self.shard_n == 1 else f"{split}.shard{self.shard_i}of{self.shard_n}"
        self.parts = self.outdir / ".parts" / self.name

    # ------------------------------------------------------------------ status
    def split_done(self) -> bool:
        rec = self.outdir / f"{self.split}.extract.json"
        if not all((self.outdir / f"{self.split}{s}").is_file() for s in (".npy", ".lengths")) or not rec.is_file():
            return False
        try:
            return read_json(rec).get("fingerprint") == self.split_fp
        except ValueError:
            return False

    def shard_done(self, i: int) -> bool:
        name = f"{self.split}.shard{i}of{self.shard_n}"
        rec = self.outdir / f"{name}.json"
        if not rec.is_file() or not (self.outdir / f"{name}.npy").is_file() or not (self.outdir / f"{name}.lengths").is_file():
            return False
        try:
            return read_json(rec).get("split_fingerprint") == self.split_fp
        except ValueError:
            return False

    def _prepare_parts(self) -> None:
        # temporaries a killed run of this job left: its part files (its own folder) and the
        # files only this job writes; other shards' and the merge's are theirs to clean
        remove_stale_temporaries(self.parts)
        remove_stale_temporaries(self.outdir, names=[f"{self.name}.npy", f"{self.name}.lengths"], recursive=False)
        job = self.parts / "job.json"
        if self.parts.is_dir():
            try:
                same = read_json(job).get("fingerprint") == self.fp
            except (FileNotFoundError, ValueError):
                same = False
            if not same:
                log.info("%s: discarding parts of an earlier run with other options", self.name)
                shutil.rmtree(self.parts)
        if not self.parts.is_dir():
            self.parts.mkdir(parents=True)
            write_json(job, {"fingerprint": self.fp, "extractor": self.describe.get("extractor")})

    def _part_path(self, k: int) -> Path:
        return self.parts / f"part{k:06d}.npz"

    # ------------------------------------------------------------------ work
    def _load(self, entry: tuple[str, int, int]) -> np.ndarray:
        rel, num_samples, line = entry
        path = self.root / rel
        wav = load_listed(path, num_samples, f"{self.manifest}, line {line}")
        if len(wav) < MIN_SAMPLES:
            raise ValueError(f"{path}: {len(wav)} samples at 16 kHz, shorter than one 25 ms frame; "
                             f"remove it from {self.manifest}")
        return wav

    def _extract_chunk(self, entries: list[tuple[str, int]], lines: list[int],
                       pool: ThreadPoolExecutor) -> tuple[np.ndarray, list[int], float]:
        wavs = list(pool.map(self._load, [(rel, n, line) for (rel, n), line in zip(entries, lines)]))
        lengths = [len(w) for w in wavs]
        outs: list[np.ndarray | None] = [None] * len(wavs)
        batch_samples = int(self.cfg.batch_seconds * SAMPLE_RATE)
        for batch in make_batches(lengths, batch_samples, self.cfg.max_batch):
            for k, f in zip(batch, self.extractor.extract_batch([wavs[k] for k in batch])):
                outs[k] = f
        dtype = np.float16 if self.cfg.save_dtype == "float16" else np.float32
        feats = np.concatenate(outs).astype(dtype, copy=False) if outs else np.zeros((0, self.extractor.dim), dtype)
        return feats, [len(f) for f in outs], sum(lengths) / SAMPLE_RATE

    def run(self, progress: bool = True) -> dict:
        """Extract this job's utterances (skipping finished chunks), then assemble its output."""
        if self.split_done():
            log.info("%s: %s.npy is up to date, nothing to do", self.manifest, self.split)
            return {"status": "up-to-date"}
        if self.shard_n > 1 and self.shard_done(self.shard_i):
            log.info("%s: already extracted", self.name)
            return {"status": "shard-done", "merged": self.try_merge()}
        self._prepare_parts()
        chunk = max(1, self.cfg.chunk_utterances)
        n_chunks = -(-len(self.entries) // chunk)
        todo = [k for k in range(n_chunks) if not self._part_path(k).is_file()]
        if len(todo) < n_chunks:
            log.info("%s: resuming, %d of %d chunks already done", self.name, n_chunks - len(todo), n_chunks)
        total_sec = sum(self.entries[j][1] for k in todo for j in range(k * chunk, min((k + 1) * chunk, len(self.entries)))) / SAMPLE_RATE
        t0, done_sec = time.time(), 0.0
        from tqdm import tqdm

        bar = tqdm(total=round(total_sec, 1), unit="s", desc=f"extract {self.name} (audio s)", disable=not progress,
                   dynamic_ncols=True)
        with ThreadPoolExecutor(max(1, self.cfg.num_workers)) as pool:
            for k in todo:
                entries = self.entries[k * chunk:(k + 1) * chunk]
                feats, lengths, sec = self._extract_chunk(entries, self.lines[k * chunk:(k + 1) * chunk], pool)
                with atomic_path(self._part_path(k), suffix=".npz") as tmp:
                    with open(tmp, "wb") as f:
                        np.savez(f, feats=feats, lengths=np.asarray(lengths, dtype=np.int64))
                done_sec += sec
                bar.update(round(sec, 1))
        bar.close()
        elapsed = time.time() - t0
        speed = done_sec / elapsed if elapsed > 0 else float("inf")
        log.info("%s: %.1f s of audio in %.1f s (%.1f audio-seconds per second)", self.name, done_sec, elapsed, speed)
        result = self._assemble(n_chunks)
        result.update(audio_seconds=done_sec, elapsed=elapsed, audio_seconds_per_second=speed,
                      chunks_computed=len(todo), chunks_total=n_chunks)
        return result

    def _assemble(self, n_chunks: int) -> dict:
        parts = [self._part_path(k) for k in range(n_chunks)]
        if self.shard_n == 1:
            lengths = concat_parts(parts, self.outdir / f"{self.split}.npy", self.extractor.dim)
            self._finish_split(lengths)
            shutil.rmtree(self.parts)
            _cleanup_parts_root(self.outdir)
            return {"status": "done"}
        lengths = concat_parts(parts, self.outdir / f"{self.name}.npy", self.extractor.dim)
        write_lengths(self.outdir / f"{self.name}.lengths", lengths)
        write_json(self.outdir / f"{self.name}.json", {"split_fingerprint": self.split_fp, "shard": [self.shard_i, self.shard_n],
                                                      "first_utterance": self.start, "utterances": len(lengths)})
        shutil.rmtree(self.parts)
        _cleanup_parts_root(self.outdir)
        return {"status": "shard-done", "merged": self.try_merge()}

    def try_merge(self) -> bool:
        """Join all shards into ``{split}.npy`` if every one of them is finished."""
        if self.shard_n == 1:
            return self.split_done()
        missing = [i for i in range(self.shard_n) if not self.shard_done(i)]
        if missing:
            log.info("%s: waiting for shards %s before merging", self.split, missing)
            return False
        names = [f"{self.split}.shard{i}of{self.shard_n}" for i in range(self.shard_n)]
        try:
            lengths = concat_parts([self.outdir / f"{n}.npy" for n in names], self.outdir / f"{self.split}.npy",
                                   self.extractor.dim, [self.outdir / f"{n}.lengths" for n in names])
        except FileNotFoundError:  # another job finishing at the same moment merged them first
            return self.split_done()
        self._finish_split(lengths)
        for n in names:
            for suffix in (".npy", ".lengths", ".json"):
                (self.outdir / f"{n}{suffix}").unlink(missing_ok=True)
        log.info("%s: merged %d shards", self.split, self.shard_n)
        return True

    def _finish_split(self, lengths: list[int]) -> None:
        if len(lengths) != len(self.all_entries):
            raise RuntimeError(f"{self.split}: assembled {len(lengths)} utterances, manifest has {len(self.all_entries)}")
        write_lengths(self.outdir / f"{self.split}.lengths", lengths)
        copy_manifest_and_labels(self.manifest, self.outdir, self.split)
        seconds = sum(n for _, n in self.all_entries) / SAMPLE_RATE
        write_json(self.outdir / f"{self.split}.extract.json", {
            "fingerprint": self.split_fp, "manifest": str(self.manifest.resolve()), "manifest_sha256": self.manifest_sha,
            "utterances": len(lengths), "frames": int(sum(lengths)), "audio_seconds": round(seconds, 3),
            "shards": self.shard_n})
        write_frames_meta(self.outdir, self.describe, self.cfg)


def concat_parts(parts: list[Path], out: Path, dim: int, lengths_files: list[Path] | None = None) -> list[int]:
    """Stream part files (``.npz`` with feats+lengths, or ``.npy`` + ``.lengths``) into one ``.npy``."""
    lengths: list[int] = []
    shapes, dtype = [], None
    for k, p in enumerate(parts):
        if p.suffix == ".npz":
            with np.load(p) as z:
                lens = z["lengths"].tolist()
                if dtype is None:  # read one part's features for dim and dtype; the rest only in the copy pass
                    first = z["feats"]
                    dim, dtype = first.shape[1], first.dtype
                shapes.append((sum(lens), dim))
        else:
            arr = np.load(p, mmap_mode="r")
            lens = read_lengths(lengths_files[k]) if lengths_files else [arr.shape[0]]
            shapes.append(arr.shape)
            dtype = arr.dtype
        if sum(lens) != shapes[-1][0]:
            raise ValueError(f"{p}: {shapes[-1][0]} rows but its lengths sum to {sum(lens)} (corrupt part; delete it)")
        lengths += lens
    total = sum(s[0] for s in shapes)
    dim = shapes[0][1] if shapes else dim
    with atomic_path(out, suffix=".npy") as tmp:
        if total == 0:
            np.save(tmp, np.zeros((0, dim), dtype=dtype or np.float32))
        else:
            mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(total, dim))
            row = 0
            for p in parts:
                if p.suffix == ".npz":
                    with np.load(p) as z:
                        a = z["feats"]
                        if len(a) != sum(z["lengths"].tolist()) or (len(a) and a.shape[1] != dim):
                            raise ValueError(f"{p}: features do not match its lengths (corrupt part; delete it)")
                else:
                    a = np.load(p, mmap_mode="r")
                mm[row:row + len(a)] = a
                row += len(a)
            mm.flush()
            del mm
    return lengths


def _cleanup_parts_root(outdir: Path) -> None:
    root = outdir / ".parts"
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()


def write_frames_meta(outdir: Path, describe: dict, cfg: ExtractConfig) -> None:
    """``meta.json`` for a frame feature folder: the extractor, config and every split's record."""

    splits = {}
    for rec in sorted(outdir.glob("*.extract.json")):
        try:
            splits[rec.name[: -len(".extract.json")]] = read_json(rec)
        except ValueError:
            continue
    inputs = {s: r.get("manifest_sha256") for s, r in splits.items()}
    write_json(outdir / "meta.json", {
        "kind": "frames", "extractor": describe.get("extractor"), "model_path": describe.get("model_path"),
        "model_sha256": describe.get("model_sha256"), "layer": describe.get("layer"), "dim": describe.get("dim"),
        "frame_rate": describe.get("frame_rate"), "extractor_details": describe, "splits": splits,
        "provenance": provenance(cfg, None, inputs)})


def extract_split(manifest: str | Path, outdir: str | Path, split: str, cfg: ExtractConfig,
                  shard: tuple[int, int] = (0, 1), extractor: Extractor | None = None, progress: bool = True) -> dict:
    """Extract one split (or one shard of it); see the module docstring."""
    return ExtractionJob(manifest, outdir, split, cfg, shard, extractor).run(progress=progress)


def merge_split(manifest: str | Path, outdir: str | Path, split: str, cfg: ExtractConfig, num_shards: int) -> bool:
    """Join the shards of a split (``w2vu extract --merge``); False when some are missing."""
    job = ExtractionJob(manifest, outdir, split, cfg, (0, num_shards))
    if job.split_done():
        return True
    # run by hand once the shard jobs are over: a killed earlier merge's temporary is stale
    remove_stale_temporaries(Path(outdir), names=[f"{split}.npy", f"{split}.lengths"], recursive=False)
    return job.try_merge()
