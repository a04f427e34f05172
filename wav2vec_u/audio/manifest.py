"""fairseq's audio manifest: first line the root folder, then ``relative/path<TAB>num_samples``.

    root, entries = read_manifest("train.tsv")        # entries: list of (rel_path, num_samples)
    write_manifest("train.tsv", root, entries)       # atomic
    paths = manifest_paths("train.tsv")               # absolute paths, in order
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from wav2vec_u.io import atomic_write_text


def write_manifest(path: str | Path, root: str | Path, entries: list[tuple[str, int]]) -> Path:
    lines = [str(Path(root).resolve())] + [f"{rel}\t{int(n)}" for rel, n in entries]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_manifest(path: str | Path) -> tuple[Path, list[tuple[str, int]]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise ValueError(f"manifest {path} is empty: its first line must be the audio root folder")
    root = Path(lines[0].strip())
    entries = []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or not parts[1].strip().isdigit():
            raise ValueError(f"manifest {path}, line {i}: expected 'relative/path<TAB>num_samples', got {line!r}")
        entries.append((parts[0], int(parts[1])))
    return root, entries


def manifest_paths(path: str | Path) -> list[Path]:
    root, entries = read_manifest(path)
    return [root / rel for rel, _ in entries]


class ManifestAudio(Sequence):
    """The utterances of a fairseq manifest as 16 kHz float32 arrays, read when indexed.

    ``num_samples`` comes from the manifest (batching needs no audio read). Every file is
    checked up front: a missing one is an error naming it and the manifest.
    """

    def __init__(self, manifest: str | Path):
        from wav2vec_u.audio.manifest import read_manifest

        self.manifest = Path(manifest)
        root, entries = read_manifest(self.manifest)
        self.paths = [root / rel for rel, _ in entries]
        self.num_samples = [n for _, n in entries]
        missing = [p for p in self.paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(self.paths)} audio files listed in {self.manifest} are missing "
                f"(first: {missing[0]}); the Hugging Face CTC model trains on the audio itself: restore the "
                f"files or correct the root folder on the manifest's first line ({root})")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        from wav2vec_u.audio.io import load_16k

        return load_16k(self.paths[i])


def split_manifest(folder: str | Path, split: str) -> Path | None:
    """The manifest of ``split`` for a feature or corpus folder: ``{split}.tsv`` in it, else the
    manifest its ``meta.json`` records for the split (``w2vu extract``), else None."""
    from wav2vec_u.io import read_json

    folder = Path(folder)
    if (folder / f"{split}.tsv").is_file():
        return folder / f"{split}.tsv"
    meta = folder / "meta.json"
    if meta.is_file():
        try:
            rec = (read_json(meta).get("splits") or {}).get(split) or {}
        except (ValueError, AttributeError):
            rec = {}
        if rec.get("manifest") and Path(rec["manifest"]).is_file():
            return Path(rec["manifest"])
    return None


def split_audio(folder: str | Path, split: str) -> ManifestAudio:
    manifest = split_manifest(folder, split)
    if manifest is None:
        raise FileNotFoundError(f"no audio manifest for split '{split}' in {folder}: the Hugging Face CTC model "
                                f"reads the audio; give a feature folder made by `w2vu extract` (it keeps "
                                f"{split}.tsv) or a corpus folder with {split}.tsv")
    return ManifestAudio(manifest)
