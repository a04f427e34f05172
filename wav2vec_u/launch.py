"""submitit executors for the commands that fan out: ``w2vu sweep`` (one job per stacked model) and
``w2vu extract --shards N --launcher ...`` (one job per shard).

``local`` runs each job in a subprocess of this machine (what the tests use); ``slurm`` submits to
the cluster with :class:`~wav2vec_u.train.config.SlurmConfig`'s parameters. A job whose body is
a ``w2vu`` command line (:func:`cli_job`) behaves exactly as that command typed by hand.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from wav2vec_u.train.config import SlurmConfig

log = logging.getLogger(__name__)

LAUNCHERS = ("none", "local", "slurm")


def make_executor(launcher: str, slurm: SlurmConfig, folder: str | Path, name: str) -> Any:
    """A submitit executor writing its logs and pickles under ``folder``."""
    try:
        import submitit  # noqa: PLC0415
    except ImportError:
        raise RuntimeError("--launcher local/slurm needs submitit: pip install submitit") from None
    if launcher == "local":
        return submitit.LocalExecutor(folder=str(folder))
    if launcher != "slurm":
        raise ValueError(f"launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    ex = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
    params: dict[str, Any] = {"timeout_min": slurm.timeout_min, "gpus_per_node": slurm.gpus_per_node,
                              "cpus_per_task": slurm.cpus_per_task, "mem_gb": slurm.mem_gb,
                              "slurm_array_parallelism": slurm.array_parallelism, "name": name}
    if slurm.partition:
        params["slurm_partition"] = slurm.partition
    if slurm.account:
        params["slurm_account"] = slurm.account
    if slurm.qos:
        params["slurm_qos"] = slurm.qos
    ex.update_parameters(**params)
    return ex


def submit_jobs(ex: Any, launcher: str, fn: Any, args: Sequence[Sequence[Any]]) -> list[Any]:
    """``fn(*a)`` for each ``a`` of ``args`` as one job each: one job array on SLURM, subprocesses locally."""
    if launcher == "slurm":
        with ex.batch():
            return [ex.submit(fn, *a) for a in args]
    return [ex.submit(fn, *a) for a in args]


def cli_job(argv: Sequence[str], threads: int) -> int:
    """A submitit job's body: ``w2vu *argv`` in the job's process, with ``threads`` CPU threads."""
    import torch  # noqa: PLC0415

    from wav2vec_u.cli import main  # noqa: PLC0415

    torch.set_num_threads(threads)
    rc = main(list(argv))
    if rc:
        raise RuntimeError(f"w2vu {' '.join(argv)} exited with {rc}")
    return rc


def run_cli_jobs(argvs: Sequence[Sequence[str]], launcher: str, slurm: SlurmConfig, folder: str | Path,
                 name: str, threads: int) -> list[str]:
    """Each command line as one job (a job array on SLURM); waits for all. Returns the failures' messages."""
    ex = make_executor(launcher, slurm, folder, name)
    jobs = submit_jobs(ex, launcher, cli_job, [(list(a), threads) for a in argvs])
    log.info("submitted %d %s jobs (logs in %s): %s", len(jobs), launcher, folder,
             ", ".join(str(j.job_id) for j in jobs))
    failures = []
    for argv, job in zip(argvs, jobs):
        try:
            job.result()
        except Exception as exc:  # noqa: BLE001 - report every failed job, not only the first
            failures.append(f"job {job.job_id} (w2vu {' '.join(argv)}): {exc}")
    return failures
