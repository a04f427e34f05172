"""One logging and tracking interface for every stage: Python logging, metrics.jsonl, W&B.

Usage::

    with Tracker(outdir, stage="train-gan", config=cfg, seed=1, wandb=True) as tr:
        tr.log({"loss_d": 0.7, "per": 0.41}, step=100)

``Tracker`` writes ``<outdir>/<stage>.log`` (all log lines of the run), appends metrics to
``<outdir>/metrics.jsonl`` and writes ``<outdir>/run.json`` with the resolved config,
package versions, git commit, seed and any input hashes the stage passes. W&B is used when
the package is installed and ``wandb=True``; without an API key it runs in offline mode
(``WANDB_MODE=offline``) so nothing is sent anywhere unexpectedly.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from wav2vec_u.config import to_dict
from wav2vec_u.io import atomic_write_text, write_json

log = logging.getLogger("wav2vec_u")

_VERSIONED = ("wav2vec-u", "torch", "numpy", "scipy", "soundfile", "phonemizer", "kenlm", "faiss-cpu", "transformers", "wandb")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    """Commit of the source tree this package runs from, with ``+dirty`` for local changes."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(config: Any = None, seed: int | None = None, inputs: dict[str, str] | None = None) -> dict[str, Any]:
    """What every artifact records about how it was made."""
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "seed": seed,
        "config": to_dict(config) if config is not None else None,
        "inputs": inputs or {},
    }


def setup_logging(level: int = logging.INFO) -> None:
    """Console logging for the CLI (idempotent)."""
    root = logging.getLogger("wav2vec_u")
    if any(getattr(h, "_w2vu_console", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    handler._w2vu_console = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


class Tracker:
    """Per-run logging: a log file, metrics.jsonl, run.json and optionally W&B."""

    def __init__(self, outdir: str | Path, stage: str, config: Any = None, seed: int | None = None,
                 inputs: dict[str, str] | None = None, wandb: bool = False, project: str = "wav2vec-u",
                 rank: int = 0):
        self.outdir = Path(outdir)
        self.stage = stage
        self.rank = rank
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.info = provenance(config, seed, inputs)
        self._handler: logging.Handler | None = None
        self._metrics = None
        self._wandb = None
        if rank != 0:
            return
        self._handler = logging.FileHandler(self.outdir / f"{stage}.log", encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("wav2vec_u").addHandler(self._handler)
        if logging.getLogger("wav2vec_u").level == logging.NOTSET:
            logging.getLogger("wav2vec_u").setLevel(logging.INFO)
        write_json(self.outdir / f"{stage}.run.json", self.info)
        self._metrics = open(self.outdir / "metrics.jsonl", "a", encoding="utf-8")
        if wandb:
            self._wandb = self._start_wandb(project, config)
        log.info("%s: output in %s (git %s)", stage, self.outdir, self.info["git_commit"])

    def _start_wandb(self, project: str, config: Any):
        try:
            import wandb  # noqa: PLC0415 - optional dependency
        except ImportError:
            log.info("wandb is not installed; tracking to metrics.jsonl only (pip install 'wav2vec-u[wandb]')")
            return None
        if not os.environ.get("WANDB_API_KEY") and "WANDB_MODE" not in os.environ:
            os.environ["WANDB_MODE"] = "offline"
        run = wandb.init(project=project, name=f"{self.stage}-{self.outdir.name}", dir=str(self.outdir),
                         config={"config": to_dict(config) if config is not None else None,
                                 "provenance": {k: v for k, v in self.info.items() if k != "config"}},
                         reinit=True)
        return run

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if self.rank != 0:
            return
        record = {"stage": self.stage, "time": round(time.time(), 3), **({"step": step} if step is not None else {}), **metrics}
        assert self._metrics is not None
        self._metrics.write(json.dumps(record, default=float) + "\n")
        self._metrics.flush()
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)

    def forget_steps_after(self, step: int) -> int:
        """Drop this stage's metrics rows of updates after ``step`` (a resumed run redoes them); how many.

        Rows without a step and rows of other stages are kept. The file is rewritten atomically.
        """
        if self.rank != 0 or self._metrics is None:
            return 0
        path = self.outdir / "metrics.jsonl"
        self._metrics.close()
        kept, dropped = [], 0
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill: not a row anyone can use
                dropped += 1
                continue
            if isinstance(row, dict) and row.get("stage") == self.stage and isinstance(row.get("step"), int) \
                    and row["step"] > step:
                dropped += 1
            else:
                kept.append(line if line.endswith("\n") else line + "\n")
        if dropped:
            atomic_write_text(path, "".join(kept))
            log.info("metrics.jsonl: dropped %d rows after update %d (they are recomputed)", dropped, step)
        self._metrics = open(path, "a", encoding="utf-8")
        return dropped

    def log_text(self, key: str, rows: list[list[str]], columns: list[str], step: int | None = None) -> None:
        """Sample decodings and the like: into metrics.jsonl as lists, into W&B as a table."""
        if self.rank != 0:
            return
        self.log({key: rows}, step=step)
        if self._wandb is not None:
            import wandb  # noqa: PLC0415

            self._wandb.log({key: wandb.Table(columns=columns, data=rows)}, step=step)

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self._handler is not None:
            logging.getLogger("wav2vec_u").removeHandler(self._handler)
            self._handler.close()
            self._handler = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
