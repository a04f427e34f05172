"""Skip a stage only when its recorded inputs and options match (a stale ``.done`` is no proof).

A stage computes a fingerprint from its options and the hashes of its inputs; after it
finishes it records that fingerprint in ``<outdir>/.stage.json``. A rerun with the same
fingerprint and all listed outputs present does nothing; anything else recomputes::

    fp = fingerprint({"k": 128, "seed": 1}, inputs=[manifest])
    if is_current(outdir, fp, outputs=["train.npy"]):
        return
    ...  # do the work, writing atomically
    mark_done(outdir, fp, outputs=["train.npy"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from wav2vec_u.io import read_json, sha256_file, sha256_json, write_json

STAGE_FILE = ".stage.json"


def fingerprint(options: Any, inputs: Iterable[str | Path] = ()) -> str:
    """Hash of plain-data options plus the content hash of every input file."""
    hashes = []
    for p in inputs:
        p = Path(p)
        if not p.is_file():
            raise FileNotFoundError(f"stage input not found: {p}")
        hashes.append([p.name, sha256_file(p)])
    return sha256_json({"options": options, "inputs": hashes})


def is_current(outdir: str | Path, fp: str, outputs: Iterable[str] = (), name: str = STAGE_FILE) -> bool:
    outdir = Path(outdir)
    record = outdir / name
    if not record.is_file():
        return False
    try:
        data = read_json(record)
    except ValueError:
        return False
    if data.get("fingerprint") != fp:
        return False
    return all((outdir / o).exists() for o in list(outputs) or data.get("outputs", []))


def mark_done(outdir: str | Path, fp: str, outputs: Iterable[str] = (), name: str = STAGE_FILE, **extra: Any) -> None:
    write_json(Path(outdir) / name, {"fingerprint": fp, "outputs": list(outputs), **extra})


def invalidate(outdir: str | Path, name: str = STAGE_FILE) -> None:
    """Forget a stage's record before rewriting its outputs, so a crash mid-way is not trusted."""
    record = Path(outdir) / name
    if record.exists():
        record.unlink()
