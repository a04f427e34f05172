"""wav2vec-U segment features: PCA, k-means, merge runs of equal cluster ids, mean-pool.

Plain functions on arrays (frames of all utterances concatenated, plus per-utterance lengths),
then :func:`make_segments` which runs them over a feature directory::

    A, b = fit_pca(frames_sample, dim=512)                    # x @ A + b, as fairseq's pca.py
    centroids = fit_kmeans(frames_sample, k=128, niter=50, nredo=3, seed=1)
    ids = assign_clusters(frames, centroids)                  # (N,) int64
    seg, seg_lengths = merge_segments(apply_pca(frames, A, b), ids, lengths)
    pooled, pooled_lengths = mean_pool(seg, seg_lengths, rate=0.5)

The order follows the reference (fairseq ``prepare_audio.sh``; docs/method.md): k-means runs on the
raw frame features (``kmeans.input: raw``), the PCA'd frames are averaged within each run of equal
cluster ids, and an optional second pooling averages groups of ``ceil(1/rate)`` adjacent
segments (fairseq's ``mean_pool.py``: an utterance of n segments becomes ceil(n * rate), the
last group padded by repeating the last segment).
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from wav2vec_u.config import at_least, in_range, non_negative, to_dict
from wav2vec_u.tokens import offsets_of
from wav2vec_u.audio.features_io import copy_split_files, load_features, save_features, save_npy, splits_in
from wav2vec_u.io import install_outputs, read_json, sha256_file, work_folder, write_json
from wav2vec_u.stage import fingerprint, run_stage
from wav2vec_u.tracking import provenance

log = logging.getLogger(__name__)


@dataclass
class PcaConfig:
    dim: int = non_negative(default=512)  # paper Sec. 4 / prepare_audio.sh: PCA to 512; 0 disables PCA
    sample_frames: int = at_least(1, default=1_000_000)  # fit on at most this many frames (uniform sample of fit_split)
    eigen_power: float = 0.0          # fairseq pca.py --eigen-power; -0.5 whitens


@dataclass
class KmeansConfig:
    k: int = at_least(1, default=128)  # paper Sec. 4 / prepare_audio.sh "CLUS128"
    niter: int = at_least(1, default=50)  # wav2vec_cluster_faiss.py: niter=50
    nredo: int = at_least(1, default=3)  # wav2vec_cluster_faiss.py: nredo=3 (restarts, best kept)
    sample_frames: int | None = at_least(1, default=None)  # None: every frame of fit_split, as the reference does
    input: Literal["raw", "pca"] = "raw"  # what k-means sees; reference: the raw (1024-dim) features
    spherical: bool = False


@dataclass
class PoolConfig:
    merge: bool = True                # mean of frames within each run of equal cluster ids
    mean_pool: bool = True            # second pooling, as in the reference README (_mean_pooled)
    rate: float = in_range(0.0, 1.0, lo_open=True, default=0.5)  # mean_pool.py --subsample-rate default


@dataclass
class SegmentsConfig:
    pca: PcaConfig = field(default_factory=PcaConfig)
    kmeans: KmeansConfig = field(default_factory=KmeansConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)
    seed: int = 1
    fit_split: str = "train"          # PCA and k-means are fitted on this split, applied to all
    splits: list[str] = field(default_factory=list)  # empty: every split found in the input dir
    save_dtype: Literal["float32", "float16"] = "float32"
    chunk_frames: int = at_least(1, default=2_000_000)  # frames per processing chunk (bounds memory on big corpora)


# ----------------------------------------------------------------------------- array functions

def sample_rows(n: int, m: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most ``m`` of ``n`` rows (all when m is None or >= n)."""
    if m is None or m >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))


def fit_pca(x: np.ndarray, dim: int, eigen_power: float = 0.0, chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """PCA of the rows of ``x`` (N, D): returns ``A`` (D, dim) and ``b`` (dim,) so that
    ``x @ A + b`` are the centred projections on the top ``dim`` components (sign fixed so the
    largest-magnitude loading of each component is positive). ``eigen_power`` -0.5 whitens."""
    n, d = x.shape
    if not 0 < dim <= d:
        raise ValueError(f"PCA dim must be in 1..{d} (the feature dimension), got {dim}")
    if n < 2:
        raise ValueError(f"PCA needs at least 2 frames, got {n}")
    mean = np.zeros(d)
    for i in range(0, n, chunk):
        mean += x[i:i + chunk].sum(axis=0, dtype=np.float64)
    mean /= n
    cov = np.zeros((d, d))
    m32 = mean.astype(np.float32)
    for i in range(0, n, chunk):
        c = np.asarray(x[i:i + chunk], dtype=np.float32) - m32
        cov += (c.T @ c).astype(np.float64)
    cov /= n
    evals, evecs = np.linalg.eigh(cov)                 # ascending
    order = np.argsort(evals)[::-1][:dim]
    evals, vecs = np.maximum(evals[order], 0.0), evecs[:, order]
    signs = np.sign(vecs[np.abs(vecs).argmax(axis=0), np.arange(dim)])
    vecs = vecs * np.where(signs == 0, 1.0, signs)
    if eigen_power:
        vecs = vecs * np.power(evals + 1e-12, eigen_power)
    a = vecs.astype(np.float32)
    b = (-mean @ vecs).astype(np.float32)
    return a, b


def apply_pca(x: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 500_000) -> np.ndarray:
    """``x @ A + b`` in float32, chunked over rows."""
    out = np.empty((x.shape[0], a.shape[1]), dtype=np.float32)
    for i in range(0, x.shape[0], chunk):
        np.matmul(np.asarray(x[i:i + chunk], dtype=np.float32), a, out=out[i:i + chunk])
    out += b
    return out


def fit_kmeans(x: np.ndarray, k: int = 128, niter: int = 50, nredo: int = 3, seed: int = 1,
               spherical: bool = False, verbose: bool = False) -> np.ndarray:
    """faiss k-means on every row of ``x`` (N, D); returns centroids (k, D) float32."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[0] < k:
        raise ValueError(f"k-means with k={k} needs at least {k} frames, got {x.shape[0]} "
                         "(use more audio or set kmeans.k smaller)")
    km = faiss.Kmeans(x.shape[1], k, niter=niter, nredo=nredo, seed=seed, spherical=spherical, verbose=verbose,
                      max_points_per_centroid=x.shape[0])  # use every frame given, no faiss subsampling
    km.train(x)
    return np.asarray(km.centroids, dtype=np.float32).copy()


def assign_clusters(x: np.ndarray, centroids: np.ndarray, spherical: bool = False, chunk: int = 500_000) -> np.ndarray:
    """Nearest centroid of every row (L2; inner product when spherical), (N,) int64."""
    import faiss

    index = faiss.IndexFlatIP(centroids.shape[1]) if spherical else faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    out = np.empty(x.shape[0], dtype=np.int64)
    for i in range(0, x.shape[0], chunk):
        _, idx = index.search(np.ascontiguousarray(x[i:i + chunk], dtype=np.float32), 1)
        out[i:i + chunk] = idx[:, 0]
    return out


def segment_starts(ids: np.ndarray, lengths) -> np.ndarray:
    """Boolean (N,): True where a new segment starts (utterance start or a change of cluster id)."""
    ids = np.asarray(ids)
    starts = np.ones(len(ids), dtype=bool)
    starts[1:] = ids[1:] != ids[:-1]
    off = offsets_of(lengths)[:-1]
    starts[off[off < len(ids)]] = True
    return starts


def merge_segments(feats: np.ndarray, ids: np.ndarray, lengths) -> tuple[np.ndarray, list[int]]:
    """Mean of ``feats`` over each run of equal consecutive ``ids`` within an utterance.
    Returns (S, D) float32 and segments per utterance."""
    lengths = np.asarray(lengths, dtype=np.int64)
    n = int(lengths.sum())
    if feats.shape[0] != n or len(ids) != n:
        raise ValueError(f"merge_segments: {feats.shape[0]} frames, {len(ids)} ids, lengths sum {n}")
    if n == 0:
        return np.zeros((0, feats.shape[1]), np.float32), [0] * len(lengths)
    starts = segment_starts(ids, lengths)
    seg_of_frame = np.cumsum(starts) - 1
    counts = np.bincount(seg_of_frame)
    seg = _weighted_rows(feats, seg_of_frame, np.arange(n), 1.0 / counts[seg_of_frame], len(counts))
    return seg, segments_per_utterance(starts, lengths)


def segments_per_utterance(starts: np.ndarray, lengths) -> list[int]:
    lengths = np.asarray(lengths, dtype=np.int64)
    csum = np.concatenate([[0], np.cumsum(starts, dtype=np.int64)])
    off = offsets_of(lengths)
    return (csum[off[1:]] - csum[off[:-1]]).astype(int).tolist()


def mean_pool(feats: np.ndarray, lengths, rate: float = 0.5) -> tuple[np.ndarray, list[int]]:
    """fairseq ``mean_pool.py``: an utterance of n rows becomes m = ceil(n * rate) rows, each the
    mean of g = ceil(n / m) consecutive rows; the last group is completed by repeating the last row."""
    if not 0 < rate <= 1:
        raise ValueError(f"pool.rate must be in (0, 1], got {rate}")
    lengths = np.asarray(lengths, dtype=np.int64)
    if int(lengths.sum()) != feats.shape[0]:
        raise ValueError(f"mean_pool: lengths sum to {int(lengths.sum())} but feats has {feats.shape[0]} rows")
    targets = np.array([math.ceil(n * rate) for n in lengths.tolist()], dtype=np.int64)
    groups = np.where(targets > 0, -(-lengths // np.maximum(targets, 1)), 0)  # ceil(n / m)
    padded = targets * groups                                                 # rows after padding
    total = int(padded.sum())
    if total == 0:
        return np.zeros((0, feats.shape[1]), np.float32), targets.astype(int).tolist()
    utt = np.repeat(np.arange(len(lengths)), padded)
    pos = np.arange(total) - np.repeat(offsets_of(padded)[:-1], padded)
    src = offsets_of(lengths)[:-1][utt] + np.minimum(pos, lengths[utt] - 1)
    g = np.repeat(groups, targets)                 # group size of each output row
    out_row = np.repeat(np.arange(len(g)), g)      # output row of each padded position
    pooled = _weighted_rows(feats, out_row, src, 1.0 / g[out_row], len(g))
    return pooled, targets.astype(int).tolist()


def _weighted_rows(x: np.ndarray, out_rows: np.ndarray, in_rows: np.ndarray, weights: np.ndarray, num_out: int) -> np.ndarray:
    """``out[r] = sum_i weights[i] * x[in_rows[i]]`` over i with ``out_rows[i] == r``, as one sparse
    product (np.add.reduceat over axis 0 was ~80x slower on (1e5, 512) arrays; measured)."""
    from scipy.sparse import csr_matrix

    m = csr_matrix((weights.astype(np.float32), (out_rows, in_rows)), shape=(num_out, x.shape[0]))
    return np.asarray(m @ np.asarray(x, dtype=np.float32), dtype=np.float32)


# ----------------------------------------------------------------------------- directories

@dataclass
class SegmentModel:
    """What is fitted on the fit split and applied to every split."""

    pca_a: np.ndarray | None
    pca_b: np.ndarray | None
    centroids: np.ndarray
    kmeans_on: str
    spherical: bool = False

    def save(self, directory: Path) -> None:

        if self.pca_a is not None:
            save_npy(directory / "pca_A.npy", self.pca_a)
            save_npy(directory / "pca_b.npy", self.pca_b)
        save_npy(directory / "centroids.npy", self.centroids)

    def transform(self, frames: np.ndarray, lengths: list[int], pool: PoolConfig):
        """Frames of whole utterances -> (segment feats, segment lengths, per-frame cluster ids)."""
        x = apply_pca(frames, self.pca_a, self.pca_b) if self.pca_a is not None else np.asarray(frames, np.float32)
        ids = assign_clusters(x if self.kmeans_on == "pca" else frames, self.centroids, self.spherical)
        if pool.merge:
            seg, seg_len = merge_segments(x, ids, lengths)
        else:
            seg, seg_len = x, list(lengths)
        if pool.mean_pool:
            seg, seg_len = mean_pool(seg, seg_len, pool.rate)
        return seg, seg_len, ids


def fit_segment_model(frames: np.ndarray, cfg: SegmentsConfig) -> tuple[SegmentModel, dict]:
    """Fit PCA and k-means on (a sample of) ``frames``; returns the model and what was used."""
    n, d = frames.shape
    info: dict = {"fit_frames": n, "input_dim": d}
    pca_dim = cfg.pca.dim
    if pca_dim > d:
        log.warning("pca.dim=%d exceeds the feature dimension %d: using %d (a rotation, no reduction)", pca_dim, d, d)
        pca_dim = d
    a = b = None
    if pca_dim > 0:
        rows = sample_rows(n, cfg.pca.sample_frames, cfg.seed)
        a, b = fit_pca(np.asarray(frames[rows], dtype=np.float32), pca_dim, cfg.pca.eigen_power)
        info.update(pca_dim=pca_dim, pca_sample_frames=len(rows))
    rows = sample_rows(n, cfg.kmeans.sample_frames, cfg.seed + 1)
    x = np.asarray(frames[rows], dtype=np.float32)
    if cfg.kmeans.input == "pca" and a is not None:
        x = apply_pca(x, a, b)
    centroids = fit_kmeans(x, cfg.kmeans.k, cfg.kmeans.niter, cfg.kmeans.nredo, cfg.seed, cfg.kmeans.spherical)
    info.update(kmeans_sample_frames=len(rows), kmeans_dim=x.shape[1])
    return SegmentModel(a, b, centroids, cfg.kmeans.input if a is not None else "raw", cfg.kmeans.spherical), info


def load_segment_model(directory: str | Path, cfg: SegmentsConfig) -> SegmentModel:
    """A model saved by an earlier run (pca_A.npy, pca_b.npy, centroids.npy)."""
    directory = Path(directory)
    if not (directory / "centroids.npy").is_file():
        raise FileNotFoundError(f"no centroids.npy in {directory}: not a segments output directory")
    a = np.load(directory / "pca_A.npy") if (directory / "pca_A.npy").is_file() else None
    b = np.load(directory / "pca_b.npy") if a is not None else None
    return SegmentModel(a, b, np.load(directory / "centroids.npy"), cfg.kmeans.input if a is not None else "raw",
                        cfg.kmeans.spherical)


def transform_split(frames: np.ndarray, lengths: list[int], model: SegmentModel, pool: PoolConfig,
                    chunk_frames: int) -> tuple[np.ndarray, list[int], list[np.ndarray]]:
    """Apply the model to a whole split in utterance-aligned chunks of about ``chunk_frames``."""
    off = offsets_of(lengths)
    feats, seg_lengths, clusters = [], [], []
    u = 0
    while u < len(lengths):
        v = u + 1
        while v < len(lengths) and off[v + 1] - off[u] <= chunk_frames:
            v += 1
        seg, seg_len, ids = model.transform(np.asarray(frames[off[u]:off[v]]), list(lengths[u:v]), pool)
        feats.append(seg)
        seg_lengths += seg_len
        clusters += np.split(ids, np.cumsum(lengths[u:v])[:-1]) if v - u > 1 else [ids]
        u = v
    d = model.pca_a.shape[1] if model.pca_a is not None else frames.shape[1]
    return (np.concatenate(feats) if feats else np.zeros((0, d), np.float32)), seg_lengths, clusters


def make_segments(in_dir: str | Path, out_dir: str | Path, cfg: SegmentsConfig,
                  pretrained: str | Path | None = None, extra_meta: dict | None = None) -> dict:
    """Segment features for every split of a frame feature directory (fairseq layout).

    Writes ``{split}.npy/.lengths/.tsv/.cluster`` (+ labels), ``pca_A.npy``, ``pca_b.npy``,
    ``centroids.npy`` and ``meta.json`` to ``out_dir``; returns the meta dict.

    Everything is built in a work folder inside ``out_dir`` and moved in only when every split is
    done (``wav2vec_u.io.install_outputs``): a run killed half-way (say a rerun with a new k after
    train was written) leaves the previous complete outputs as they were, never train at one k
    and valid at another."""

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    splits = list(cfg.splits) or splits_in(in_dir)
    if not splits:
        raise FileNotFoundError(f"no {{split}}.npy + {{split}}.lengths in {in_dir}")
    if pretrained is not None:
        model, info = load_segment_model(pretrained, cfg), {"pretrained": str(pretrained)}
    else:
        frames, _ = load_features(in_dir, cfg.fit_split, mmap=True)
        log.info("fitting PCA (dim %d) and k-means (k=%d, %d iterations, %d restarts) on %s: %d frames x %d",
                 cfg.pca.dim, cfg.kmeans.k, cfg.kmeans.niter, cfg.kmeans.nredo, cfg.fit_split, *frames.shape)
        model, info = fit_segment_model(frames, cfg)
        del frames
    work = work_folder(out_dir)
    try:
        meta = _write_segments(in_dir, work, splits, model, info, cfg, extra_meta)
        # a rerun without PCA must not leave the old PCA beside the new centroids (--pretrained reads them)
        install_outputs(work, out_dir, stale=["pca_A.npy", "pca_b.npy"])
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # kill -9 skips this: run_stage removes .work-* next time
        raise
    return meta


def _write_segments(in_dir: Path, out_dir: Path, splits: list[str], model: SegmentModel, info: dict,
                    cfg: SegmentsConfig, extra_meta: dict | None) -> dict:

    model.save(out_dir)
    stats = {}
    for split in splits:
        frames, lengths = load_features(in_dir, split, mmap=True)
        seg, seg_len, clusters = transform_split(frames, lengths, model, cfg.pool, cfg.chunk_frames)
        seg = seg.astype(np.float16 if cfg.save_dtype == "float16" else np.float32, copy=False)
        save_features(out_dir, split, seg, seg_len, clusters=clusters)
        copy_split_files(in_dir, out_dir, split)
        stats[split] = {"utterances": len(lengths), "frames": int(sum(lengths)), "segments": int(sum(seg_len)),
                        "frames_per_segment": round(sum(lengths) / max(1, sum(seg_len)), 3)}
        log.info("%s: %d frames -> %d segments (%.2f frames per segment)", split, sum(lengths), sum(seg_len),
                 stats[split]["frames_per_segment"])
    inputs = {f"{s}.lengths": sha256_file(in_dir / f"{s}.lengths") for s in splits}
    meta = {"kind": "segments", "input_dir": str(in_dir.resolve()), "segments": to_dict(cfg), "fit": info,
            "stats": stats, "dim": int(seg.shape[1]) if splits else None,
            "frame_meta": _read_meta(in_dir), **(extra_meta or {}),
            "provenance": provenance(cfg, cfg.seed, inputs)}
    write_json(out_dir / "meta.json", meta)
    return meta


def _read_meta(directory: Path) -> dict | None:

    f = directory / "meta.json"
    try:
        return read_json(f) if f.is_file() else None
    except ValueError:
        return None


def segments_stage(frames_dir: Path, outdir: Path, cfg, pretrained: Path | None = None, extra_meta: dict | None = None) -> bool:
    """Run :func:`make_segments` unless its recorded options and inputs match; True if it ran."""

    splits = list(cfg.splits) or splits_in(frames_dir)
    if not splits:
        raise FileNotFoundError(f"no {{split}}.npy + {{split}}.lengths in {frames_dir}")
    inputs = []
    npy_stats = {}
    for s in splits:
        inputs.append(frames_dir / f"{s}.lengths")
        rec = frames_dir / f"{s}.extract.json"  # our extraction fingerprint covers the frames' content
        if rec.is_file():
            inputs.append(rec)
        st = (frames_dir / f"{s}.npy").stat()
        npy_stats[s] = [st.st_size, st.st_mtime_ns]  # files from elsewhere: size and time stand in for a hash
    if pretrained is not None:
        inputs += [p for p in sorted(Path(pretrained).glob("*.npy")) if p.stem in ("pca_A", "pca_b", "centroids")]
    fp = fingerprint({"segments": to_dict(cfg), "splits": splits, "npy": npy_stats,
                      "pretrained": str(pretrained) if pretrained else None}, inputs)
    outputs = [f"{s}{x}" for s in splits for x in (".npy", ".lengths")] + ["meta.json"]
    ran, _ = run_stage(outdir, fp, outputs,
                       lambda: make_segments(frames_dir, outdir, cfg, pretrained=pretrained, extra_meta=extra_meta))
    if not ran:
        log.info("segments in %s are up to date, nothing to do", outdir)
    return ran
