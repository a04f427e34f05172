"""fairseq's audio manifest: first line the root folder, then ``relative/path<TAB>num_samples``.

    root, entries = read_manifest("train.tsv")        # entries: list of (rel_path, num_samples)
    write_manifest("train.tsv", root, entries)       # atomic; refuses names with tabs or newlines
    paths = manifest_paths("train.tsv")               # absolute paths, in order
    scan_manifests("corpus/")                         # the *.tsv of a folder; one that is not a manifest is an error
    output_names(["../a.flac", "b/a.ogg"])            # names for per-utterance outputs, never outside

A file is a manifest by its format, not its extension: ``skipped.tsv`` (written beside the
manifests by ``w2vu manifest``, ``vad`` and ``import-corpus``) is a table; any other ``.tsv`` in a
folder of manifests must be one, else the stage stops naming it and the line. Every stage that writes one output per utterance
names it with :func:`output_names`, so a manifest entry such as ``/data/u.wav`` or
``../u.wav`` can never make a stage write onto its source (docs/synth-and-audio.md).
"""

from __future__ import annotations

import logging
import posixpath
from pathlib import Path, PurePosixPath
from typing import Sequence

from wav2vec_u.io import atomic_write_text
from wav2vec_u.io import read_json

log = logging.getLogger(__name__)

# Written by `w2vu manifest` and `w2vu vad` beside the manifests: a table, never a split.
SKIPPED_TABLE = "skipped.tsv"


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a manifest field (None if it can): a tab splits the row and a line
    break (any that ``str.splitlines`` knows, e.g. ``\\r`` or U+2028) splits the file."""
    if "\t" in name:
        return "it contains a tab"
    if len(f"x{name}x".splitlines()) != 1:
        return "it contains a line break"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    return None


def write_manifest(path: str | Path, root: str | Path, entries: list[tuple[str, int]]) -> Path:
    root = str(Path(root).resolve())
    for rel in [root] + [rel for rel, _ in entries]:
        why = name_problem(rel)
        if why is not None:
            raise ValueError(f"cannot write manifest {path}: the file name {rel!r} cannot be listed because {why} "
                             "(manifests are tab-separated lines); rename the file")
    lines = [root] + [f"{rel}\t{int(n)}" for rel, n in entries]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def _parse(path: Path) -> tuple[Path, list[tuple[str, int]], list[int]]:
    """(root, entries, line number of each entry); a ValueError names the file and the line."""
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"manifest {path} is not UTF-8 text ({exc.reason} at byte {exc.start}): "
                         "not a fairseq manifest") from None
    if not lines or not lines[0].strip():
        raise ValueError(f"manifest {path} is empty: its first line must be the audio root folder")
    if "\t" in lines[0]:  # a table with a header row (skipped.tsv), not a manifest
        raise ValueError(f"manifest {path}, line 1: expected the audio root folder, got the tab-separated "
                         f"row {lines[0][:120]!r}: not a fairseq manifest")
    root = Path(lines[0].strip())
    entries, numbers = [], []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or not parts[1].strip().isdigit():
            raise ValueError(f"manifest {path}, line {i}: expected 'relative/path<TAB>num_samples', got {line!r}")
        entries.append((parts[0], int(parts[1])))
        numbers.append(i)
    return root, entries, numbers


def read_manifest(path: str | Path) -> tuple[Path, list[tuple[str, int]]]:
    root, entries, _ = _parse(Path(path))
    return root, entries


def entry_lines(path: str | Path) -> list[int]:
    """The line number of each entry of a manifest (1-based, the root is line 1), for messages."""
    return _parse(Path(path))[2]


def manifest_problem(path: str | Path) -> str | None:
    """None if ``path`` is a fairseq manifest (a root line, then path<TAB>count rows), else why not."""
    try:
        _parse(Path(path))
    except (ValueError, FileNotFoundError) as exc:
        return str(exc)
    return None


def is_manifest(path: str | Path) -> bool:
    return manifest_problem(path) is None


def require_manifest(path: str | Path) -> Path:
    """``path`` if it is a manifest that lists audio files that exist; else an error naming the
    file and the line (a missing file: the first one, and how many are missing)."""
    path = Path(path)
    if path.name == SKIPPED_TABLE:
        raise ValueError(f"{path} is the table of skipped files written by `w2vu manifest`/`w2vu vad`, "
                         "not a manifest: give the folder or the split's own .tsv")
    root, entries, lines = _parse(path)
    if not entries:
        raise ValueError(f"manifest {path} lists no audio files (only its root line)")
    missing = [(n, rel) for (rel, _), n in zip(entries, lines) if not (root / rel).is_file()]
    if missing:
        n, rel = missing[0]
        raise FileNotFoundError(
            f"manifest {path}, line {n}: audio file {root / rel} not found ({len(missing)} of {len(entries)} listed "
            f"files are missing). Paths are relative to the root on line 1 ({root}): correct it, restore the "
            "files, or move this .tsv out of the folder if it is not a split")
    return path


def scan_manifests(folder: str | Path) -> list[Path]:
    """The ``*.tsv`` of ``folder`` (sorted), each a manifest: every one is a split.

    ``skipped.tsv`` is never one; any other ``.tsv`` that is not a manifest is an error naming
    it and the line, so a stray listing beside the manifests stops the stage before it writes
    anything instead of being silently left out or read as audio paths."""
    folder = Path(folder)
    found = []
    for p in sorted(folder.glob("*.tsv")):
        if p.name == SKIPPED_TABLE or not p.is_file():
            continue
        why = manifest_problem(p)
        if why is not None:
            raise ValueError(f"{why}. Every .tsv in {folder} is read as a split: move {p.name} out of the folder, "
                             "or name the splits to use (--splits train valid)")
        found.append(p)
    return found


def safe_relpath(rel: str) -> str:
    """``rel`` made relative and unable to climb: joined to a folder it stays inside it.

    ``/data/a.wav`` -> ``data/a.wav``, ``../x/a.wav`` -> ``x/a.wav``, ``a/../../b.wav`` -> ``b.wav``;
    "" when nothing is left (``..``)."""
    path = PurePosixPath(rel)
    parts: list[str] = []
    for part in path.parts[1:] if path.anchor else path.parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def output_names(rels: Sequence[str], suffix: str = ".wav", strip_common: bool = False) -> list[str]:
    """Distinct relative names, safe inside any output folder, for one output per entry of ``rels``.

    The path-safety rule every writer of per-utterance outputs uses (vad, manifest copies):

    - absolute paths lose their anchor and ``..`` cannot climb (:func:`safe_relpath`), so an
      output can never land on its source outside the output folder;
    - an entry already named ``*{suffix}`` keeps its name; another gets ``suffix`` instead of its
      extension (``a/b.flac`` -> ``a/b.wav``), or after it (``a/b.flac.wav``) when that name is
      taken, or a number (``a/b-2.wav``) when both are;
    - ``strip_common`` drops the folders every entry shares (``audio/train/u1.flac`` -> ``u1.wav``).

    Names are compared case-insensitively (two files may not differ only in case on macOS or
    Windows) and assigned in order, so the result depends only on ``rels``.
    """
    safe = [safe_relpath(r) for r in rels]
    if strip_common and safe and all("/" in s for s in safe):
        common = posixpath.commonpath([posixpath.dirname(s) for s in safe])
        if common:
            safe = [s[len(common) + 1:] for s in safe]
    names: list[str | None] = [None] * len(safe)
    taken: set[str] = set()
    inside = [not r.startswith("/") and ".." not in PurePosixPath(r).parts for r in rels]
    for tier in (True, False):  # first the entries that need no new name, those that stayed inside first
        for i, s in enumerate(safe):
            if inside[i] == tier and s.lower().endswith(suffix.lower()) and s.casefold() not in taken:
                names[i] = s
                taken.add(s.casefold())
    for i, s in enumerate(safe):
        if names[i] is not None:
            continue
        base = s or f"utterance{i}"
        plain = str(PurePosixPath(base).with_suffix(suffix))
        candidates = [plain] + ([base + suffix] if not base.lower().endswith(suffix.lower()) else [])
        k = 2
        while all(c.casefold() in taken for c in candidates):
            candidates = [f"{plain[:-len(suffix)]}-{k}{suffix}"]
            k += 1
        names[i] = next(c for c in candidates if c.casefold() not in taken)
        taken.add(names[i].casefold())
    return [n for n in names if n is not None]


def path_inside(root: str | Path, name: str) -> Path:
    """``root / name``, refused if it resolves outside ``root`` (a ``..`` or a symlink out)."""
    root = Path(root).resolve()
    path = (root / name).resolve()
    if path != root and root not in path.parents:
        raise ValueError(f"output {name!r} would be written to {path}, outside {root}; "
                         "per-utterance outputs are always written inside the output folder")
    return root / name


def load_listed(path: str | Path, num_samples: int, where: str, problems: list[str] | None = None):
    """16 kHz mono float32 audio of a file a manifest lists, checking the manifest's sample count.

    A count that disagrees with the file (neither its own length nor its length at 16 kHz) is a
    warning naming ``where`` (the manifest and line), not an error: every stage uses the audio
    itself, the count only sizes batches and progress bars, and a stale count usually means the
    audio was edited after the manifest was written (``w2vu manifest`` refreshes them). With
    ``problems`` the warnings are appended there instead of logged (see ``read_audio``)."""
    from wav2vec_u.audio.io import SAMPLE_RATE, read_audio, resample

    wav, sr = read_audio(path, problems=problems)
    out = resample(wav, sr, SAMPLE_RATE)
    if num_samples != len(wav) and abs(num_samples - len(out)) > 1:  # resampling may round by one
        msg = (f"{where}: the manifest says {num_samples} samples but {path} has {len(wav)} ({len(wav) / sr:.3f} s "
               f"at {sr} Hz); using the file's length (re-run `w2vu manifest` to refresh the counts)")
        if problems is None:
            log.warning("%s", msg)
        else:
            problems.append(msg)
    return out


def manifest_paths(path: str | Path) -> list[Path]:
    root, entries = read_manifest(path)
    return [root / rel for rel, _ in entries]


class ManifestAudio(Sequence):
    """The utterances of a fairseq manifest as 16 kHz float32 arrays, read when indexed.

    ``num_samples`` comes from the manifest (batching needs no audio read). Every file is
    checked up front: a missing one is an error naming it and the manifest.
    """

    def __init__(self, manifest: str | Path):
        self.manifest = Path(manifest)
        root, entries, self.lines = _parse(self.manifest)
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
        return load_listed(self.paths[i], self.num_samples[i], f"{self.manifest}, line {self.lines[i]}")


def split_manifest(folder: str | Path, split: str) -> Path | None:
    """The manifest of ``split`` for a feature or corpus folder: ``{split}.tsv`` in it, else the
    manifest its ``meta.json`` records for the split (``w2vu extract``), else None."""

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


def split_manifests(path: Path, splits: list[str] | None) -> dict[str, Path]:
    """{split: manifest} from a manifest file or a folder of them, each checked (it is a manifest
    and lists audio; else an error naming the file and line) before anything is written."""
    from wav2vec_u.audio.manifest import require_manifest, scan_manifests

    if path.is_file():
        if splits and (len(splits) != 1 or splits[0] != path.stem):
            raise ValueError(f"--splits applies to a folder of manifests; {path} is one manifest (split '{path.stem}')")
        return {path.stem: require_manifest(path)}
    if not path.is_dir():
        raise FileNotFoundError(f"manifest or folder not found: {path}")
    if splits:  # named splits: each must be a manifest, a stray table is an error, not a warning
        missing = [s for s in splits if not (path / f"{s}.tsv").is_file()]
        if missing:
            found = [p.stem for p in scan_manifests(path)]
            raise FileNotFoundError(f"no {missing[0]}.tsv in {path} (manifests found: {', '.join(found) or 'none'})")
        return {s: require_manifest(path / f"{s}.tsv") for s in splits}
    found = {p.stem: require_manifest(p) for p in scan_manifests(path)}
    if not found:
        raise FileNotFoundError(f"no manifest in {path} (a .tsv whose first line is the audio root folder, then "
                                "path<TAB>num_samples lines; write one with `w2vu manifest`)")
    return found
