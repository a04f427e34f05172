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


def load_tagged_state(path: str | Path, fmt: str, what: str, map_location: Any = "cpu") -> dict:
    """A ``torch.save``d dict whose ``format`` key is ``fmt``; errors name the file and what it is not.

    Our checkpoints carry configs and lineage as plain Python objects, so they are loaded with
    ``weights_only=False``: load only checkpoints you made or trust.
    """
    import torch  # noqa: PLC0415 - torch is imported only by the stages that load models

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing {what} {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ValueError(f"{path} is not a readable checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise ValueError(f"{path} is not a wav2vec-u {what} (format {fmt})")
    return state
