"""Skip a stage only when its recorded inputs and options match (a stale ``.done`` is no proof).

A stage computes a fingerprint from its options and the hashes of its inputs; after it
finishes it records that fingerprint in ``<outdir>/.stage.json``. A rerun with the same
fingerprint and all listed outputs present does nothing; anything else recomputes. Every
stage goes through :func:`run_stage`, which forgets the old record before the work starts (a
killed rerun is never trusted), removes the temporaries a killed run left in the folder, and
writes the new record only when the work finished. It holds the folder's run lock
(:mod:`wav2vec_u.lock`) from the check to the record, so two runs of a stage on one folder
never interleave::

    fp = fingerprint({"k": 128, "seed": 1}, inputs=[manifest])
    ran, result = run_stage(outdir, fp, ["train.npy"], lambda: make_segments(...))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from wav2vec_u.io import read_json, remove_stale_temporaries, sha256_file, sha256_json, write_json
from wav2vec_u.lock import run_lock

STAGE_FILE = ".stage.json"
T = TypeVar("T")


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


def run_stage(outdir: str | Path, fp: str, outputs: Iterable[str] | Callable[[T], Iterable[str]], work: Callable[[], T],
              *, force: bool = False, name: str = STAGE_FILE,
              extra: Callable[[T], dict] | None = None, what: str = "") -> tuple[bool, T | None]:
    """Run ``work()`` unless ``outdir``'s record matches ``fp`` and ``outputs`` exist; (ran, result).

    ``outputs`` may be a function of the result when the stage learns them as it runs;
    ``extra(result)`` adds fields to the record (e.g. the seconds it took). ``what`` names the
    stage in the message another run gets while this one holds the folder.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    with run_lock(outdir, what or f"stage {outdir.name}"):
        # outputs learnt as the stage runs are checked against the ones its record lists
        if not force and is_current(outdir, fp, () if callable(outputs) else outputs, name=name):
            return False, None
        invalidate(outdir, name=name)
        remove_stale_temporaries(outdir)  # a killed earlier run's .tmp files and .work-* folders (maybe GBs)
        result = work()
        names = list(outputs(result) if callable(outputs) else outputs)
        mark_done(outdir, fp, names, name=name, **(extra(result) if extra else {}))
    return True, result
