"""One run per output folder: a lock file that names its holder (PID, host, command).

Two runs writing one folder corrupt it (last.pt from one seed, config.yaml from the other,
interleaved metrics), so every stage that writes a folder holds its lock while it runs::

    with run_lock(outdir, "train-gan"):
        train(...)          # a second run on outdir raises RunLocked, naming this one

The lock is ``<folder>/.w2vu.lock``. Exclusion comes from ``flock`` on that file, which the
kernel drops when the holder dies, however it dies; the file's content (holder PID, host,
command, start time) is what the refusal message shows. A file left behind by a run that
died is stale: when its PID is no longer running on this host it is taken over with a warning.
A file from another host is never taken over (its PID cannot be checked from here); the
message says to delete it once that run is known to be gone.

Holding is re-entrant within one thread, so a stage function that locks its folder can run
inside a caller (the demo's stage runner) that already holds it; another thread of the same
process is refused like another process.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger("wav2vec_u.lock")

LOCK_FILE = ".w2vu.lock"

# folders this process holds -> [open lock file descriptor, nesting depth, holding thread]
_held: dict[Path, list[int]] = {}


class RunLocked(RuntimeError):
    """Another run holds the folder's lock."""


def _describe(holder: dict[str, Any]) -> str:
    what = holder.get("what") or "a run"
    parts = [f"{what} (pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"]
    if holder.get("since"):
        parts.append(f", since {holder['since']}")
    parts.append(")")
    if holder.get("command"):
        parts.append(f": {holder['command']}")
    return "".join(parts)


def _read_holder(fd: int) -> dict[str, Any] | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
    try:
        holder = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None  # empty or cut short: a run that died while writing it
    return holder if isinstance(holder, dict) else None


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _refusal(folder: Path, lock: Path, holder: dict[str, Any] | None, extra: str = "") -> RunLocked:
    who = _describe(holder) if holder else "another run"
    return RunLocked(f"{folder} is in use by {who}{extra}. Wait for it to finish or use another output folder; "
                     f"if that run is gone, delete {lock}")


def _claim(fd: int, lock: Path, folder: Path, what: str, locked_by_kernel: bool) -> None:
    """Decide whether the previous content of the lock file may be replaced, then write ours."""
    host = socket.gethostname()
    holder = _read_holder(fd)
    if holder and holder.get("pid") != os.getpid():
        pid, their_host = holder.get("pid"), holder.get("host")
        if their_host != host:
            # flock may not reach across machines (NFS mounted with nolock): never guess
            raise _refusal(folder, lock, holder, " on another machine, which cannot be checked from here")
        if isinstance(pid, int) and _pid_running(pid) and not locked_by_kernel:
            raise _refusal(folder, lock, holder)
        why = "no longer running" if not (isinstance(pid, int) and _pid_running(pid)) else \
            "its PID now belongs to another process"
        log.warning("taking over the stale lock %s of %s: %s", lock, _describe(holder), why)
    record = {"pid": os.getpid(), "host": host, "what": what, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": " ".join(sys.argv)}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(record) + "\n").encode("utf-8"))
    os.fsync(fd)


def _acquire(folder: Path, what: str) -> int:
    lock = folder / LOCK_FILE
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked_by_kernel = True
            except BlockingIOError:
                raise _refusal(folder, lock, _read_holder(fd)) from None
            except OSError as exc:  # a filesystem without flock: the PID check alone decides
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL):
                    raise
                locked_by_kernel = False
            # the holder before us may have deleted the file as it let go: lock the file now at the path
            try:
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            _claim(fd, lock, folder, what, locked_by_kernel)
            return fd
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise


def _release(folder: Path, fd: int) -> None:
    lock = folder / LOCK_FILE
    with contextlib.suppress(OSError):
        if os.fstat(fd).st_ino == os.stat(lock).st_ino:  # still ours (a stage may have emptied the folder)
            lock.unlink()
    os.close(fd)  # drops the flock


@contextlib.contextmanager
def run_lock(folder: str | Path, what: str = "") -> Iterator[Path]:
    """Hold ``folder``'s lock for the block (creating the folder); RunLocked if another run holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _held and _held[key][2] != threading.get_ident():
        raise _refusal(folder, folder / LOCK_FILE, {"what": "another thread of this process", "pid": os.getpid(),
                                                    "host": socket.gethostname()})
    if key in _held:  # this thread holds it already (a stage inside the demo's stage runner)
        _held[key][1] += 1
        try:
            yield folder / LOCK_FILE
        finally:
            _held[key][1] -= 1
        return
    fd = _acquire(folder, what)
    _held[key] = [fd, 1, threading.get_ident()]
    try:
        yield folder / LOCK_FILE
    finally:
        del _held[key]
        _release(folder, fd)


def holds_lock(folder: str | Path) -> bool:
    """Whether this process holds ``folder``'s lock (in any thread)."""
    return Path(folder).resolve() in _held
