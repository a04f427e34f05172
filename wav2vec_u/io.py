"""Small file utilities every stage shares: atomic writes, hashing, JSON.

A killed job must never leave a half-written artifact that a later stage trusts, so every
output goes to a temporary file in the same directory and is renamed into place::

    with atomic_path(out / "train.npy") as tmp:
        np.save(tmp, feats)          # written to out/.train.npy.XXXXXXXX.tmp.npy, renamed on success

A ``kill -9`` skips that cleanup and leaves the temporary behind (hundreds of MB for features);
the next run of the stage removes it (:func:`remove_stale_temporaries`, called by
``stage.run_stage``). A stage whose outputs must change together builds them in a work folder
and moves them in at the end (:func:`install_outputs`); readers refuse a folder a kill left
half-moved (:func:`check_installed`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

log = logging.getLogger(__name__)

# What atomic_path and work folders are called: tempfile's names end in 8 characters of
# [a-z0-9_] (tempfile._RandomNameSequence), ".<name>.<8>.tmp<suffix>" and ".work-<8>".
_TEMP_FILE = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp(\.[^/]*)?")
_WORK_DIR = re.compile(r"\.work-[a-z0-9_]{8}")
INSTALLING = ".installing"


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    ``suffix`` is kept on the temporary name for writers that insist on an extension
    (``np.save`` appends ``.npy`` otherwise: pass ``suffix=".npy"``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def work_folder(outdir: str | Path) -> Path:
    """A fresh hidden folder inside ``outdir`` for outputs that must appear together (see install_outputs)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".work-", dir=outdir))


def install_outputs(work: str | Path, outdir: str | Path, stale: Iterable[str] = ()) -> list[str]:
    """Move every file of the finished folder ``work`` into ``outdir`` (renames) and remove ``work``.

    Until the last file is moved ``outdir/.installing`` lists them, so a kill during the moves
    leaves a folder that :func:`check_installed` refuses instead of a silent mix of old and new
    files. ``stale``: outputs of an earlier run to delete if this one did not make them (e.g.
    ``pca_A.npy`` after a rerun without PCA). Returns the relative names installed.
    """
    work, outdir = Path(work), Path(outdir)
    names = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
    marker = outdir / INSTALLING
    atomic_write_text(marker, "".join(n + "\n" for n in names))
    for name in stale:
        if name not in names:
            (outdir / name).unlink(missing_ok=True)
    for name in names:
        (outdir / name).parent.mkdir(parents=True, exist_ok=True)
        _move(work / name, outdir / name)
    marker.unlink()
    shutil.rmtree(work, ignore_errors=True)
    return names


def _move(src: Path, dst: Path) -> None:
    os.replace(src, dst)  # same file system (work is inside outdir): a rename, never a copy


def check_installed(folder: str | Path) -> None:
    """An error naming ``folder`` if a kill stopped :func:`install_outputs` while it moved files in."""
    marker = Path(folder) / INSTALLING
    if marker.exists():
        raise ValueError(f"{folder} was being rewritten when its job stopped ({marker} is still there): it mixes "
                         "files of two runs, so it is not used; rerun the stage that writes it")


def remove_stale_temporaries(folder: str | Path, names: Iterable[str] | None = None, recursive: bool = True) -> int:
    """Delete what killed runs left in their output folder: atomic_path temporaries and work folders.

    Called when a stage starts (``stage.run_stage``): only one run works on a folder at a time
    (the run lock), so every such file belongs to a run that died before its cleanup. ``names``
    limits it to the temporaries of those outputs (for folders several jobs share, such as
    extraction shards). Returns the bytes freed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    wanted = set(names) if names is not None else None
    freed, removed = 0, []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        for d in list(dirnames):
            if wanted is None and _WORK_DIR.fullmatch(d):
                dirnames.remove(d)  # do not walk into what is about to go
                freed += sum(f.stat().st_size for f in (here / d).rglob("*") if f.is_file() and not f.is_symlink())
                shutil.rmtree(here / d, ignore_errors=True)
                removed.append(here / d)
        for f in filenames:
            m = _TEMP_FILE.fullmatch(f)
            if m and (wanted is None or m.group("name") in wanted):
                path = here / f
                with contextlib.suppress(FileNotFoundError):
                    freed += path.lstat().st_size
                    path.unlink()
                    removed.append(path)
        if not recursive:
            break
    if removed:
        log.info("removed %d temporaries left by an interrupted run in %s (%.1f MB): %s%s", len(removed), folder,
                 freed / 1e6, ", ".join(p.name for p in removed[:5]), " ..." if len(removed) > 5 else "")
    return freed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"missing file: {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_json(obj: Any) -> str:
    """Stable hash of plain data (sorted keys), used as a stage fingerprint."""
    return sha256_text(json.dumps(obj, sort_keys=True, default=str))


# Opt-in for checkpoints that hold more than tensors and plain data (unsafe: unpickling can run code).
UNSAFE_LOAD_ENV = "W2VU_UNSAFE_LOAD"


def save_state(path: str | Path, state: dict) -> Path:
    """``torch.save`` a checkpoint dict atomically (a temporary file, then rename): never half-written."""
    import torch  # noqa: PLC0415 - torch is imported only by the stages that save models

    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_state(path: str | Path, what: str = "checkpoint", map_location: Any = "cpu") -> dict:
    """A ``torch.save``d dict, read with ``weights_only=True``: tensors and plain data only.

    Our checkpoints hold nothing else (weights, optimiser states, RNG states, configs as plain
    dicts), so a file that needs more is refused: unpickling arbitrary objects can run code, and
    checkpoints are shared between researchers. ``W2VU_UNSAFE_LOAD=1`` loads such a file anyway,
    for one you made or trust (docs/checkpoints.md).
    """
    import pickle  # noqa: PLC0415

    import torch  # noqa: PLC0415 - torch is imported only by the stages that load models

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing {what} {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = [line.strip() for line in str(exc).splitlines() if "GLOBAL" in line]
        if not refused:  # not a pickle we could read at all
            raise ValueError(f"{path} is not a readable checkpoint ({_first_line(exc)})") from None
        if os.environ.get(UNSAFE_LOAD_ENV) != "1":
            raise ValueError(
                f"{path} holds objects beyond tensors and plain data, so it was not loaded: unpickling them could "
                f"run code ({refused[0]}). Checkpoints written by wav2vec-u never need this. If you made this "
                f"file or trust it, rerun with {UNSAFE_LOAD_ENV}=1 (unsafe for files from others)") from None
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any other reading failure means a bad file
        raise ValueError(f"{path} is not a readable checkpoint ({_first_line(exc)})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a wav2vec-u {what}: it holds a {type(state).__name__}, not a dict")
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def load_tagged_state(path: str | Path, fmt: str, what: str, map_location: Any = "cpu") -> dict:
    """:func:`load_state` of a file whose ``format`` key is ``fmt``; errors name the file and what it is not."""
    state = load_state(path, what, map_location)
    if state.get("format") != fmt:
        raise ValueError(f"{path} is not a wav2vec-u {what} (format {fmt})")
    return state


RESOURCES = Path(__file__).resolve().parent / "resources"


def resource_path(*parts: str) -> Path:
    """A file shipped inside the package (``wav2vec_u/resources/``): configs and sentences.

    The same path in a source checkout (where ``configs/`` and ``data/`` link here) and in an
    installed wheel, so commands find their defaults wherever they run from.
    """
    return RESOURCES.joinpath(*parts)
