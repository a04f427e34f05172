"""fairseq's audio manifest: first line the root folder, then ``relative/path<TAB>num_samples``.

    root, entries = read_manifest("train.tsv")        # entries: list of (rel_path, num_samples)
    write_manifest("train.tsv", root, entries)       # atomic
    paths = manifest_paths("train.tsv")               # absolute paths, in order
"""

from __future__ import annotations

from pathlib import Path

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
