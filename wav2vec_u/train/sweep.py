"""``w2vu sweep`` as functions: expand a grid into runs, train them as stacks, pick one without labels.

    runs = expand_grid(base_cfg, sweep_cfg)              # [SweepRun(name, cfg, settings)], seeds x grid
    summary = run_sweep(base_cfg, sweep_cfg, "runs/sweep")

Each run writes its own folder ``<outdir>/<name>/`` exactly as ``w2vu train-gan <outdir>/<name>``
would (``last.pt``, ``best.pt``, ``config.yaml``, ``metrics.jsonl``, ``train-gan.log``,
``train-gan.run.json``), so every later command (``decode``, ``select``, ``self-train``, resuming
with ``train-gan``) reads it as a single run. Runs that can share a stacked model
(:func:`~wav2vec_u.train.stacked.stack_key`) train together in one process
(:class:`~wav2vec_u.train.stacked.StackedTrainer`); a run that diverges (NaN, an exploding loss)
is dropped from its stack and the others go on. At the end the runs' ``best.pt`` are compared by
paper Eqs. 5-6 (:func:`~wav2vec_u.train.selection.select_checkpoints`, as ``w2vu select``), and
``sweep.json`` / ``selection.json`` record every run and the choice.

With ``launcher: local`` or ``slurm`` each stack is one submitit job (local: subprocesses on this
machine; slurm: a job array), and the selection runs here once every job has finished.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from wav2vec_u.config import ConfigError, from_dict, save_config, to_dict
from wav2vec_u.io import write_json
from wav2vec_u.lock import run_lock
from wav2vec_u.tracking import Tracker
from wav2vec_u.train.config import GanConfig, SweepConfig
from wav2vec_u.train.stacked import PER_MEMBER, StackedTrainer, build_members, stack_key
from wav2vec_u.train.trainer import install_stop_handlers, restore_handlers

log = logging.getLogger("wav2vec_u.train")


@dataclass
class SweepRun:
    name: str  # its folder inside the sweep's output folder
    cfg: GanConfig
    settings: dict[str, Any]  # the grid values and seed that make it


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    *path, last = key.split(".")
    for p in path:
        sub = data.get(p)
        if not isinstance(sub, dict):
            raise ConfigError(f"sweep grid key {key}: {p} is not a section of the GAN config", key=key)
        data = sub
    if last not in data:
        raise ConfigError(f"sweep grid key {key} is not a GAN config key", key=key)
    data[last] = value


def _fmt(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "-".join(_fmt(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v).replace("/", "-")


def expand_grid(base: GanConfig, sweep: SweepConfig) -> list[SweepRun]:
    """Every combination of the grid's values, for every seed; folder names from the settings
    (``gradient_penalty1.5_lr_g0.001_seed3``: the last part of each key, the full key where two clash)."""
    if "trainer.seed" in sweep.grid:
        raise ConfigError("set the seeds with sweep seeds, not in the grid", key="grid.trainer.seed")
    if not sweep.seeds:
        raise ConfigError("the sweep needs at least one seed", key="seeds")
    keys = list(sweep.grid)
    for k in keys:
        if not isinstance(sweep.grid[k], list) or not sweep.grid[k]:
            raise ConfigError(f"sweep grid {k}: expected a non-empty list of values", key=f"grid.{k}")
    short = [k.split(".")[-1] for k in keys]
    labels = [s if short.count(s) == 1 else k for s, k in zip(short, keys)]
    runs = []
    for combo in itertools.product(*(sweep.grid[k] for k in keys)):
        for seed in sweep.seeds:
            data = to_dict(base)
            settings = {**dict(zip(keys, combo)), "trainer.seed": seed}
            for k, v in settings.items():
                _set(data, k, v)
            try:
                cfg = from_dict(GanConfig, data)
            except ConfigError as exc:
                raise ConfigError(f"sweep run {settings}: {exc}", key=exc.key) from None
            name = "_".join([*(f"{lab}{_fmt(v)}" for lab, v in zip(labels, combo)), f"seed{seed}"])
            runs.append(SweepRun(name, cfg, settings))
    if len({r.name for r in runs}) != len(runs):
        raise ConfigError("two runs of the sweep would share a folder name: repeat values in the grid or seeds?")
    return runs


def plan_stacks(runs: Sequence[SweepRun], stack_size: int = 0) -> list[list[SweepRun]]:
    """Runs grouped by :func:`stack_key` (in grid order), each group cut into stacks of ``stack_size``."""
    groups: dict[str, list[SweepRun]] = {}
    for r in runs:
        groups.setdefault(stack_key(r.cfg), []).append(r)
    stacks = []
    for group in groups.values():
        n = stack_size or len(group)
        stacks.extend(group[i:i + n] for i in range(0, len(group), n))
    return stacks


# -- one stack, in this process --------------------------------------------------------------

_member: contextvars.ContextVar[str | None] = contextvars.ContextVar("sweep_member", default=None)


class _TagMember(logging.Filter):
    """On the train logger: prefixes a record made while a member acts with ``[name]`` and tags it."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = _member.get()
        if name is not None and not hasattr(record, "sweep_member"):
            record.sweep_member = name
            record.msg = f"[{name}] {record.msg}"
        return True


class _OnlyMember(logging.Filter):
    """On a member's log file: only its own records and the sweep's (untagged) ones."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def filter(self, record: logging.LogRecord) -> bool:
        return (getattr(record, "sweep_member", None) or _member.get()) in (None, self.name)


@contextlib.contextmanager
def _as_member(name: str) -> Iterator[None]:
    token = _member.set(name)
    try:
        yield
    finally:
        _member.reset(token)


class SweepLoop:
    """:meth:`GanTrainer.train` for a stack: the same log, validation and save points for every member."""

    def __init__(self, stack: StackedTrainer, names: Sequence[str]):
        self.stack = stack
        self.names = {id(m): n for m, n in zip(stack.members, names)}
        self.results: dict[str, dict[str, Any]] = {}
        self._stop_signal: str | None = None
        self._acc: dict[str, torch.Tensor] = {}
        self._acc_n: dict[str, int] = {}
        self._last: dict[str, dict[str, Any]] = {}

    def name(self, m: Any) -> str:
        return self.names[id(m)]

    def _on_signal(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if name == "SIGINT" and self._stop_signal == "SIGINT":
            raise KeyboardInterrupt
        self._stop_signal = name

    def drop_diverged(self) -> None:
        bad = self.stack.diverged()
        if not bad:
            return
        for i, msg in bad:
            m = self.stack.members[i]
            with _as_member(self.name(m)):
                log.error("%s; dropped from the sweep, the other runs go on", msg)
            self.results[self.name(m)] = {"status": "diverged", "step": self.stack.step, "error": msg,
                                          "best_weighted_lm_ppl": m.best_metric}
        dropped = {i for i, _ in bad}
        keep = [i for i in range(len(self.stack.members)) if i not in dropped]
        idx = torch.tensor(keep, dtype=torch.long)
        self._acc = {k: v[idx.to(v.device)] for k, v in self._acc.items()}
        self.stack.keep(keep)

    def validate(self) -> None:
        for m in self.stack.members:
            with _as_member(self.name(m)):
                self._last[self.name(m)] = m._validate_and_select()

    def save(self) -> None:
        for m in self.stack.members:
            with _as_member(self.name(m)):
                m.save("last.pt")

    def train(self) -> dict[str, dict[str, Any]]:
        st = self.stack
        t = st.cfg.trainer
        handlers = install_stop_handlers(self._on_signal)
        bar = None
        if t.progress:
            from tqdm import tqdm  # noqa: PLC0415

            bar = tqdm(total=t.max_updates, initial=st.step, unit="upd", dynamic_ncols=True, leave=False,
                       desc=f"{len(st.members)} runs")
        t0, s0 = time.perf_counter(), st.step
        status = "done"
        if st.step == 0:
            self.validate()
        try:
            while st.step < t.max_updates and st.members:
                if self._stop_signal:
                    self.drop_diverged()
                    st.unstack()
                    self.save()
                    log.warning("%s received: saved last.pt of %d runs at update %d and stopped", self._stop_signal,
                                len(st.members), st.step)
                    status = "interrupted" if self._stop_signal == "SIGINT" else "preempted"
                    break
                stats = st.train_step()
                for k, v in stats.items():
                    self._acc[k] = self._acc.get(k, 0.0) + v.float()
                    self._acc_n[k] = self._acc_n.get(k, 0) + 1
                if bar is not None:
                    bar.update(1)
                step = st.step
                if step % t.log_every == 0 or step == t.max_updates:
                    self.drop_diverged()
                    rate = (step - s0) / max(time.perf_counter() - t0, 1e-9)
                    acc = {k: v.tolist() for k, v in self._acc.items()}
                    for i, m in enumerate(st.members):
                        rec = {k: acc[k][i] / self._acc_n[k] for k in acc}
                        rec["updates_per_s"] = rate  # each run's own updates per second
                        rec["code_weight"] = m.code_weight()
                        if m.tracker is not None:
                            m.tracker.log(rec, step=step)
                    self._acc, self._acc_n = {}, {}
                    if bar is not None:
                        bar.set_postfix(runs=len(st.members), refresh=False)
                if step % t.validate_every == 0 or step == t.max_updates:
                    self.drop_diverged()
                    st.unstack()
                    self.validate()
                if step % t.save_every == 0 or step == t.max_updates:
                    self.drop_diverged()
                    st.unstack()
                    self.save()
        finally:
            if bar is not None:
                bar.close()
            restore_handlers(handlers)
        st.unstack()
        for m in st.members:
            checksum = float(sum(p.detach().double().sum() for p in m.gan.parameters()))
            last = self._last.get(self.name(m), {})
            self.results[self.name(m)] = {"status": status, "step": st.step, "best_weighted_lm_ppl": m.best_metric,
                                          "param_checksum": checksum,
                                          **{k: v for k, v in last.items() if isinstance(v, (int, float))}}
        if status == "interrupted":
            raise KeyboardInterrupt
        return self.results


def train_stack(cfgs: Sequence[GanConfig], outdirs: Sequence[str | Path], wandb: bool = False) -> dict[str, dict]:
    """Train runs that can share a stack, in this process; {folder name: summary} (a submitit job's body)."""
    from wav2vec_u.train.run import load_inputs  # noqa: PLC0415

    outdirs = [Path(o) for o in outdirs]
    cfg0 = cfgs[0]
    if not cfg0.data.features or not cfg0.data.text:
        raise ValueError("set the inputs: --features DIR --text DIR (or data.features=... data.text=...)")
    tag = _TagMember()
    train_log = logging.getLogger("wav2vec_u.train")
    train_log.addFilter(tag)
    with contextlib.ExitStack() as stack_ctx:
        for o in outdirs:
            stack_ctx.enter_context(run_lock(o, "train-gan"))
        data = load_inputs(cfg0, cfg0.trainer.device)
        members = build_members(cfgs, outdirs, data.train, data.text, data.phones, valid=data.valid, lm=data.lm,
                                lineage=data.lineage)
        resumed = []
        for m, o in zip(members, outdirs):
            with _as_member(o.name):
                resumed.append(m.maybe_resume())  # a refused resume changes nothing in any folder
        for m, o, cfg in zip(members, outdirs, cfgs):
            o.mkdir(parents=True, exist_ok=True)
            save_config(cfg, o / "config.yaml")
        if wandb and len(members) > 1:
            # the Tracker starts W&B runs with reinit=True, which finishes the previous run of the process
            log.warning("W&B logs one run per process: the %d runs of this stack log to their metrics.jsonl only "
                        "(stack size 1, --stack-size 1, gives each run its W&B run)", len(members))
            wandb = False
        try:
            for m, o, cfg, was in zip(members, outdirs, cfgs, resumed):
                with _as_member(o.name):
                    tr = stack_ctx.enter_context(Tracker(o, "train-gan", config=cfg, seed=cfg.trainer.seed,
                                                         inputs=data.inputs, wandb=wandb))
                    if tr._handler is not None:
                        tr._handler.addFilter(_OnlyMember(o.name))
                    m.lineage["provenance"] = {k: v for k, v in tr.info.items() if k != "config"}
                    m.lineage["sweep"] = {"folder": str(o.parent), "members": [p.name for p in outdirs]}
                    m.tracker = tr
                    for level, note in m._resume_notes:
                        log.log(level, "%s", note)
                    tr.forget_steps_after(m.step if was else -1)
            # runs resumed at different updates (a diverged run starts again from 0) train as separate stacks
            by_step: dict[int, list[int]] = {}
            for i, m in enumerate(members):
                by_step.setdefault(m.step, []).append(i)
            results: dict[str, dict] = {}
            for step, idx in sorted(by_step.items()):
                names = [outdirs[i].name for i in idx]
                log.info("training %d runs as one stacked model%s: %s", len(idx),
                         f" from update {step}" if step else "", ", ".join(names))
                results.update(SweepLoop(StackedTrainer([members[i] for i in idx]), names).train())
            return results
        finally:
            train_log.removeFilter(tag)


def _run_stack_job(cfgs: list[GanConfig], outdirs: list[str], wandb: bool, threads: int) -> dict[str, dict]:
    """A submitit job: one stack (console logging and the caller's CPU thread count set in the job's process)."""
    from wav2vec_u.tracking import setup_logging  # noqa: PLC0415

    setup_logging()
    torch.set_num_threads(threads)
    return train_stack(cfgs, outdirs, wandb)


class _Job:
    """A submitit job that requeues itself when pre-empted or out of time (it resumes from last.pt)."""

    def __call__(self, cfgs: list[GanConfig], outdirs: list[str], wandb: bool, threads: int) -> dict[str, dict]:
        return _run_stack_job(cfgs, outdirs, wandb, threads)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit  # noqa: PLC0415

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def run_stacks(stacks: list[list[SweepRun]], outdir: Path, sweep: SweepConfig, wandb: bool) -> dict[str, dict]:
    """Every stack: in this process (launcher none) or as submitit jobs, waiting for all of them."""
    results: dict[str, dict] = {}
    if sweep.launcher == "none":
        for i, runs in enumerate(stacks):
            log.info("stack %d/%d", i + 1, len(stacks))
            results.update(train_stack([r.cfg for r in runs], [outdir / r.name for r in runs], wandb))
            if any(results[r.name]["status"] == "preempted" for r in runs):
                log.warning("stopped by a signal after stack %d of %d; run the same command again to resume", i + 1,
                            len(stacks))
                break
        return results
    from wav2vec_u.launch import make_executor, submit_jobs  # noqa: PLC0415

    ex = make_executor(sweep.launcher, sweep.slurm, outdir / "submitit", "w2vu-sweep")
    threads = torch.get_num_threads()
    args = [([r.cfg for r in runs], [str(outdir / r.name) for r in runs], wandb, threads) for runs in stacks]
    jobs = submit_jobs(ex, sweep.launcher, _Job(), args)
    log.info("submitted %d %s jobs (logs in %s): %s", len(jobs), sweep.launcher, outdir / "submitit",
             ", ".join(str(j.job_id) for j in jobs))
    for runs, job in zip(stacks, jobs):
        try:
            results.update(job.result())
        except Exception as exc:  # noqa: BLE001 - one failed job must not hide the others' runs
            log.error("job %s (%s) failed: %s", job.job_id, ", ".join(r.name for r in runs), exc)
            for r in runs:
                results[r.name] = {"status": "failed", "error": str(exc)}
    return results


def select_members(outdir: Path, results: dict[str, dict], tolerance: float) -> dict[str, Any] | None:
    """Paper Eqs. 5-6 over the runs that finished with a best.pt (not the diverged or failed ones)."""
    from wav2vec_u.train.selection import select_checkpoints, selection_record  # noqa: PLC0415

    ckpts = [outdir / name / "best.pt" for name, r in results.items()
             if r.get("status") == "done" and (outdir / name / "best.pt").is_file()]
    if not ckpts:
        log.warning("no run wrote a best.pt (no validation split or no phone LM?): nothing to select")
        return None
    return selection_record(select_checkpoints(ckpts, tolerance=tolerance))


def selection_table(runs: Sequence[SweepRun], results: dict[str, dict], report: dict[str, Any] | None) -> str:
    """One line per run: status, label-free scores of its best.pt, and which run Eqs. 5-6 chose."""
    scores = {Path(s["checkpoint"]).parent.name: s for s in (report or {}).get("runs", [])}
    chosen = Path(report["chosen"]).parent.name if report else None
    anchor = Path(report["anchor"]).parent.name if report else None
    kept = {Path(k).parent.name for k in (report or {}).get("kept", [])}
    width = max([len(r.name) for r in runs] + [3])
    head = (f"{'run':<{width}}  {'status':<9} {'update':>6} {'lm_nll':>7} {'U':>5} {'log_prob':>9} "
            f"{'w_lm_ppl':>9} {'PER*':>6}  pick")
    lines = [head, "-" * len(head)]
    for r in runs:
        res = results.get(r.name, {})
        s = scores.get(r.name)
        num = lambda x, f: format(x, f) if isinstance(x, (int, float)) and math.isfinite(x) else "-"  # noqa: E731
        mark = ", ".join(w for w, on in (("chosen", r.name == chosen), ("anchor", r.name == anchor),
                                           ("kept", r.name in kept and r.name != chosen)) if on)
        lines.append(f"{r.name:<{width}}  {res.get('status', '-'):<9} {num(res.get('step'), 'd'):>6} "
                     f"{num(s and s['lm_nll'], '.4f'):>7} {num(s and s['vocab_usage'], '.3f'):>5} "
                     f"{num(s and s['lm_log_prob'], '.1f'):>9} {num(s and s['weighted_lm_ppl'], '.3f'):>9} "
                     f"{num(s and s.get('per_not_used_for_selection'), '.3f'):>6}  {mark}")
    lines.append("* PER needs labels: shown for reference, never used to choose (paper Eqs. 5-6 choose).")
    return "\n".join(lines)


def run_sweep(base: GanConfig, sweep: SweepConfig, outdir: str | Path, wandb: bool = False) -> dict[str, Any]:
    """The whole command: expand, train every stack, select; writes sweep.json and selection.json."""
    outdir = Path(outdir)
    runs = expand_grid(base, sweep)
    stacks = plan_stacks(runs, sweep.stack_size)
    outdir.mkdir(parents=True, exist_ok=True)
    with run_lock(outdir, "sweep"):
        save_config(sweep, outdir / "sweep.yaml")
        log.info("sweep: %d runs in %d stacked model(s) (per-run settings that can share one: %s)", len(runs),
                 len(stacks), ", ".join(PER_MEMBER))
        results = run_stacks(stacks, outdir, sweep, wandb)
        unfinished = [r.name for r in runs if results.get(r.name, {}).get("status") in (None, "preempted")]
        report = None
        if unfinished:  # the choice is made once every run has finished (or diverged, or failed)
            log.warning("%d runs have not finished (%s): no selection yet", len(unfinished), ", ".join(unfinished))
        else:
            report = select_members(outdir, results, sweep.tolerance)
        if report is not None:
            write_json(outdir / "selection.json", report)
        summary = {"runs": [{"name": r.name, "settings": r.settings, "folder": str(outdir / r.name),
                             **results.get(r.name, {"status": "missing"})} for r in runs],
                   "stacks": [[r.name for r in s] for s in stacks],
                   "chosen": report["run"] if report else None}
        write_json(outdir / "sweep.json", summary)
        summary["table"] = selection_table(runs, results, report)
    return summary
