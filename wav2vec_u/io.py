"""Small file utilities every stage shares: atomic writes, hashing, JSON.

A killed job must never leave a half-written artifact that a later stage trusts, so every
output goes to a temporary file in the same directory and is renamed into place::

    with atomic_path(out / "train.npy") as tmp:
        np.save(tmp, feats)          # written to out/.train.npy.tmp-XXXX, renamed on success
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


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
