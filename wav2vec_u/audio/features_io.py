"""Feature directories in fairseq's wav2vec-U layout: read, write, and find them.

One split of a feature directory is three files plus a description::

    train.npy       all frames (or segments) of all utterances concatenated, (N, D) float32/float16
    train.lengths   rows per utterance, one integer per line, in manifest order
    train.tsv       the manifest the rows come from (fairseq format)
    meta.json       how the features were made (extractor, model sha256, layer, config, hashes)

Segment directories add ``train.cluster`` (k-means id of every frame, one utterance per line);
wav2vec-U 2.0 frame directories add ``train.km`` in the same format (k-means ids of 100 Hz MFCC
frames, the auxiliary targets; :func:`align_targets` decimates them to the feature rate).
Label files that sit next to the manifest (``train.phn``, ``train.wrd``, ``train.ltr``) are
copied along, as fairseq's scripts do, so later stages find them beside the features::

    feats, lengths = load_features("out/segments", "train")    # (N, D) ndarray, list[int]
    save_features("out/segments", "train", feats, lengths, manifest="corpus/train.tsv", meta={...})
    d = resolve_feature_dir("/old/fairseq/prepared", "train")  # -> .../precompute_pca512_cls128_mean_pooled

``resolve_feature_dir`` accepts a directory prepared by fairseq's ``prepare_audio.sh``
(``precompute_pca512_cls128_mean_pooled``, ``..._mean``, ``precompute_pca512``, or the raw
``{split}.npy`` at the top), or one made by ``w2vu prepare-audio`` (``segments/``, ``frames/``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Iterable

import numpy as np

from wav2vec_u.io import atomic_path, atomic_write_text, check_installed, write_json

LABEL_SUFFIXES = (".phn", ".wrd", ".ltr")
# how many frames a target line may differ from its utterance after decimation (framing arithmetic)
TARGET_LENGTH_SLACK = 2


def read_lengths(path: str | Path) -> list[int]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing lengths file: {path}")
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if not line.isdigit():
            raise ValueError(f"{path}, line {i}: expected a non-negative integer, got {line!r}")
        out.append(int(line))
    return out


def write_lengths(path: str | Path, lengths: Iterable[int]) -> Path:
    return atomic_write_text(path, "".join(f"{int(n)}\n" for n in lengths))


def load_features(directory: str | Path, split: str, mmap: bool = False) -> tuple[np.ndarray, list[int]]:
    """``{split}.npy`` (N, D) and ``{split}.lengths``; checks they agree. ``mmap`` avoids reading
    a large file into memory. A folder that a kill left half-rewritten (see
    ``wav2vec_u.io.install_outputs``) is refused: its splits may come from two different runs."""
    directory = Path(directory)
    check_installed(directory)
    npy, lens = directory / f"{split}.npy", directory / f"{split}.lengths"
    if not npy.is_file():
        raise FileNotFoundError(f"missing features file: {npy} (run `w2vu extract` or `w2vu prepare-audio` first)")
    lengths = read_lengths(lens)
    try:
        feats = np.load(npy, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"cannot read features {npy}: {exc} (a truncated or non-numpy file?)") from None
    if feats.ndim != 2:
        raise ValueError(f"{npy}: expected a 2-D array (frames, dims), got shape {feats.shape}")
    if sum(lengths) != feats.shape[0]:
        raise ValueError(f"{lens} sums to {sum(lengths)} rows but {npy} has {feats.shape[0]}: the files "
                         "do not belong together (re-run the stage that wrote them)")
    return feats, lengths


def save_npy(path: str | Path, array: np.ndarray) -> Path:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)
    return Path(path)


def save_features(directory: str | Path, split: str, feats: np.ndarray, lengths: Iterable[int],
                  manifest: str | Path | None = None, meta: dict | None = None,
                  clusters: list[np.ndarray] | None = None) -> Path:
    """Write one split atomically (each file). ``meta`` (if given) goes to ``meta.json``."""
    directory = Path(directory)
    lengths = [int(n) for n in lengths]
    feats = np.asarray(feats)
    if feats.ndim != 2 or sum(lengths) != feats.shape[0]:
        raise ValueError(f"save_features({directory}, {split}): lengths sum to {sum(lengths)} but feats has shape {feats.shape}")
    directory.mkdir(parents=True, exist_ok=True)
    save_npy(directory / f"{split}.npy", feats)
    write_lengths(directory / f"{split}.lengths", lengths)
    if manifest is not None:
        copy_manifest_and_labels(manifest, directory, split)
    if clusters is not None:
        write_clusters(directory / f"{split}.cluster", clusters)
    if meta is not None:
        write_json(directory / "meta.json", meta)
    return directory


def copy_manifest_and_labels(manifest: str | Path, directory: str | Path, split: str) -> None:
    """Copy the manifest as ``{split}.tsv`` and any ``.phn/.wrd/.ltr`` beside it (fairseq does too)."""
    manifest, directory = Path(manifest), Path(directory)
    if not manifest.is_file():
        raise FileNotFoundError(f"manifest not found: {manifest}")
    if manifest.resolve() != (directory / f"{split}.tsv").resolve():
        with atomic_path(directory / f"{split}.tsv") as tmp:
            shutil.copyfile(manifest, tmp)
    for suffix in LABEL_SUFFIXES:
        src = manifest.with_suffix(suffix)
        dst = directory / f"{split}{suffix}"
        if src.is_file() and src.resolve() != dst.resolve():
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)


def copy_split_files(src_dir: str | Path, dst_dir: str | Path, split: str) -> None:
    """Carry ``{split}.tsv`` and label files from one feature directory to the next."""
    src_dir = Path(src_dir)
    if (src_dir / f"{split}.tsv").is_file():
        copy_manifest_and_labels(src_dir / f"{split}.tsv", dst_dir, split)
    for name in ("dict.phn.txt",):
        if (src_dir / name).is_file():
            with atomic_path(Path(dst_dir) / name) as tmp:
                shutil.copyfile(src_dir / name, tmp)


def write_clusters(path: str | Path, clusters: list[np.ndarray]) -> Path:
    """One line per utterance: the cluster id of each frame, space-separated (fairseq's ``.src``)."""
    return atomic_write_text(path, "".join(" ".join(map(str, np.asarray(c).tolist())) + "\n" for c in clusters))


def read_clusters(path: str | Path) -> list[np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing cluster file: {path}")
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            out.append(np.array([int(t) for t in line.split()], dtype=np.int64))
        except ValueError:
            raise ValueError(f"{path}, line {i}: expected integers separated by spaces") from None
    return out


def align_targets(ids: list[np.ndarray], lengths: list[int], downsample: int, source: str = "targets") -> np.ndarray:
    """Per-utterance target ids at ``downsample`` times the feature rate -> one id per feature row.

    Every ``downsample``-th id is kept (the reference: ``aux_target[:, ::target_downsample_rate]``),
    then cut or padded with -1 to the utterance's length. An utterance whose decimated targets
    differ from its feature length by more than ``TARGET_LENGTH_SLACK`` frames is an error: the
    files do not belong together, or ``downsample`` is not the ratio of the two frame rates.
    """
    if downsample < 1:
        raise ValueError(f"aux_downsample must be >= 1, got {downsample}")
    if len(ids) != len(lengths):
        raise ValueError(f"{source} has {len(ids)} lines for {len(lengths)} utterances: it does not belong to "
                         "these features")
    out = np.full(sum(lengths), -1, dtype=np.int64)
    offset = 0
    for i, (row, n) in enumerate(zip(ids, lengths)):
        kept = np.asarray(row, dtype=np.int64)[::downsample]
        if abs(len(kept) - n) > TARGET_LENGTH_SLACK:
            raise ValueError(f"{source}, line {i + 1}: {len(row)} ids, every {downsample}th kept gives {len(kept)} "
                             f"frames, but the utterance has {n} feature frames: the files do not belong together, "
                             f"or data.aux_downsample is not (target frame rate / feature frame rate)")
        m = min(len(kept), n)
        out[offset:offset + m] = kept[:m]
        offset += n
    return out


def splits_in(directory: str | Path) -> list[str]:
    """Splits that have both ``.npy`` and ``.lengths`` in a directory (sorted, train first)."""
    directory = Path(directory)
    names = sorted(p.stem for p in directory.glob("*.npy") if (directory / f"{p.stem}.lengths").is_file()
                   and ".shard" not in p.stem)
    return sorted(names, key=lambda s: (s != "train", s))


_FAIRSEQ_SEGMENT_DIRS = (r"precompute_pca\d+_cls\d+_mean_pooled", r"precompute_pca\d+_cls\d+_mean", r"precompute_pca\d+")


def resolve_feature_dir(path: str | Path, split: str = "train", kind: str = "segments") -> Path:
    """The directory holding ``{split}.npy`` of the wanted ``kind`` (segments or frames) inside a
    feature directory, a ``w2vu prepare-audio`` output, or a fairseq wav2vec-U prepared directory."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"feature directory not found: {path}")
    if kind not in ("segments", "frames"):
        raise ValueError(f"kind must be 'segments' or 'frames', got {kind!r}")
    candidates: list[Path] = []
    if kind == "segments":
        candidates.append(path / "segments")
        for pattern in _FAIRSEQ_SEGMENT_DIRS:
            candidates += sorted(p for p in path.iterdir() if p.is_dir() and re.fullmatch(pattern, p.name))
    else:
        candidates.append(path / "frames")
    candidates.append(path)
    for c in candidates:
        if (c / f"{split}.npy").is_file() and (c / f"{split}.lengths").is_file():
            return c
    raise FileNotFoundError(f"no {split}.npy + {split}.lengths found in {path} or its {kind} subfolders "
                            f"({', '.join(c.name for c in candidates[:-1]) or 'none'})")


def read_fairseq_pca(directory: str | Path, dim: int = 512) -> tuple[np.ndarray, np.ndarray] | None:
    """PCA written by fairseq's ``pca.py`` (``pca/{dim}_pca_A.npy`` (D_in, dim) and ``_b.npy``), if present;
    apply as ``x @ A + b``."""
    base = Path(directory) / "pca" / f"{dim}_pca"
    a, b = Path(f"{base}_A.npy"), Path(f"{base}_b.npy")
    if a.is_file() and b.is_file():
        return np.load(a), np.load(b)
    return None
