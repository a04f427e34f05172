"""The GAN training loop: alternating D/G updates, validation, selection, checkpoints, resume.

One *update* is one optimiser step of either the discriminator or the generator (the
reference alternates: G on even updates, D on odd ones; ``optim.d_steps`` D updates per G
update generalises this). Every update draws a new batch of segment features and one of
unpaired phone text from in-memory sets::

    trainer = GanTrainer(cfg, outdir, train_feats, text, phones, valid=valid_feats, lm=lm)
    result = trainer.train()      # "done", "preempted"; raises TrainingDiverged when it explodes

Checkpoints: ``last.pt`` every ``trainer.save_every`` updates and at the end, ``best.pt``
when the unsupervised metric (``weighted_lm_ppl``, lower is better) improves. Never by PER.
SIGTERM / SIGUSR1 save ``last.pt`` and stop cleanly (cluster pre-emption); SIGINT (Ctrl-C) saves
``last.pt`` too, then raises KeyboardInterrupt as Ctrl-C always does.

Divergence guard: a NaN/inf loss, an update whose |loss| exceeds ``trainer.max_loss``, or
``trainer.max_nonfinite_grads`` updates in a row with an inf/NaN gradient norm stop training
with :class:`TrainingDiverged`. It is checked before every log row, validation and save, so
neither ``last.pt`` nor ``best.pt`` ever holds a diverged model. The checks accumulate on the
device and are read at those points only (no host synchronisation per update).

Resume: the optimiser settings of the current config (lr, betas, eps, weight decay) replace
those stored in ``last.pt`` and the change is logged and kept in the checkpoint's
``lineage["resumed"]``; inputs that differ from the hashes the checkpoint records are refused.

Multi-process (``torchrun``): each rank draws its slice of the global batch; gradients are
summed over ranks with one all-reduce per update (the losses are sums over utterances, so
this equals the single-process gradient of the global batch). We all-reduce by hand rather
than wrapping in ``DistributedDataParallel`` because the gradient penalty needs a double
backward through the discriminator, which DDP's reducer does not support.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from wav2vec_u.config import to_dict
from wav2vec_u.models.gan import Gan, discriminator_step_loss, generator_step_loss
from wav2vec_u.train.checkpoint import load_checkpoint, save_checkpoint
from wav2vec_u.train.config import GanConfig, OptimConfig
from wav2vec_u.train.data import EpochSampler, FeatureSet, LengthBatchSampler, ReplacementSampler, TextSet
from wav2vec_u.tokens import drop_special, output_symbols
from wav2vec_u.train.selection import decode_ids, label_free_metrics, vocab_usage
from wav2vec_u.train.warm_start import apply_generator_init
from wav2vec_u.io import sha256_file
from wav2vec_u.metrics import error_rate

log = logging.getLogger("wav2vec_u.train")


def make_optimizer(params: Any, lr: float, weight_decay: float, o: OptimConfig) -> torch.optim.Optimizer:
    """Adam with L2 weight decay (ours), or AdamW when ``optim.decoupled_weight_decay`` (the reference's)."""
    cls = torch.optim.AdamW if o.decoupled_weight_decay else torch.optim.Adam
    return cls(params, lr=lr, betas=o.betas, eps=o.eps, weight_decay=weight_decay)


def scale_and_clip(params: list[torch.nn.Parameter], clip_norm: float, scale: float = 1.0) -> torch.Tensor:
    """Multiply every gradient by ``scale``, then clip their joint 2-norm at ``clip_norm`` (in place).

    Returns the norm after scaling, before clipping (what the reference logs as gnorm). Parameters
    without a gradient are skipped.
    """
    params = [p for p in params if p.grad is not None]
    if scale != 1.0:
        for p in params:
            p.grad.mul_(scale)
    return torch.nn.utils.clip_grad_norm_(params, clip_norm)


class TrainingDiverged(RuntimeError):
    """A loss became NaN, infinite or larger than trainer.max_loss, or gradient norms stayed non-finite."""


# what the divergence record's first entry means (0 = nothing went wrong)
_NONFINITE_LOSS, _LOSS_TOO_LARGE, _NONFINITE_GRADS = 1, 2, 3


@dataclass
class TrainResult:
    status: str  # "done" | "preempted"
    step: int
    best_metric: float
    last_metrics: dict[str, Any]


STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)  # pre-emption (SLURM), and Ctrl-C likewise


def install_stop_handlers(handler: Any) -> dict[int, Any]:
    """``handler`` for the stop signals (main thread only); the previous handlers, for :func:`restore_handlers`."""
    previous = {}
    for sig in STOP_SIGNALS:
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread
            pass
    return previous


def restore_handlers(previous: dict[int, Any]) -> None:
    for sig, h in previous.items():
        signal.signal(sig, h)


class GanTrainer:
    def __init__(self, cfg: GanConfig, outdir: str | Path, train: FeatureSet, text: TextSet, phones: list[str],
                 valid: FeatureSet | None = None, lm: Any = None, tracker: Any = None,
                 lineage: dict[str, Any] | None = None, rank: int = 0, world_size: int = 1):
        self.cfg = cfg
        self.outdir = Path(outdir)
        self.train_set, self.text, self.valid, self.lm = train, text, valid, lm
        # the generator's outputs: dict.phn.txt's symbols after generator.special_outputs of fairseq's specials
        # (validation, decoding and checkpoints read output i as self.phones[i]; a predicted special is dropped)
        self.phones = output_symbols(phones, cfg.generator.special_outputs)
        self.tracker = tracker
        self.lineage = lineage or {}
        self.rank, self.world_size = rank, world_size
        self.device = torch.device(cfg.trainer.device)
        torch.manual_seed(cfg.trainer.seed)
        self.gan = Gan(train.dim, len(self.phones), cfg.generator, cfg.discriminator)
        if cfg.trainer.init_generator:
            counts = apply_generator_init(self.gan.generator, cfg.trainer.init_generator, self.phones)
            self.lineage = {**self.lineage, "init_generator": {"path": cfg.trainer.init_generator,
                                                               "sha256": sha256_file(cfg.trainer.init_generator),
                                                               **counts}}
        self.gan = self.gan.to(self.device)
        o = cfg.optim
        self.opt_g = make_optimizer(self.gan.generator.parameters(), o.lr_g, o.weight_decay_g, o)
        self.opt_d = make_optimizer(self.gan.discriminator.parameters(), o.lr_d, o.weight_decay_d, o)
        if world_size > 1:  # identical start on every rank
            for p in self.gan.parameters():
                dist.broadcast(p.data, src=0)
        d = cfg.data
        text_bs = d.text_batch_size or d.batch_size
        self.feat_sampler: EpochSampler | LengthBatchSampler
        self.text_sampler: EpochSampler | ReplacementSampler
        if d.sampling == "reference":
            self.feat_sampler = LengthBatchSampler(train.lengths, d.batch_size, cfg.trainer.seed, rank, world_size,
                                                  d.sort_by_length)
            self.text_sampler = ReplacementSampler(len(text), text_bs, cfg.trainer.seed + 7919, rank, world_size)
        else:
            self.feat_sampler = EpochSampler(len(train), d.batch_size, cfg.trainer.seed, rank, world_size)
            self.text_sampler = EpochSampler(len(text), text_bs, cfg.trainer.seed + 7919, rank, world_size)
        self.crop_gen = torch.Generator().manual_seed(cfg.trainer.seed + 104729)
        # the stream of dropout, join and penalty draws: None = torch's global one (a run alone);
        # ``w2vu sweep`` gives each of its runs its own generator, saved under the same key
        self.torch_rng: torch.Generator | None = None
        self.step = 0
        self.best_metric = math.inf
        self.history: list[dict[str, Any]] = []
        self._stop_signal: str | None = None
        # divergence record on the device: [what, update, value, was a D step]; what == 0: healthy
        self._diverged = torch.zeros(4, dtype=torch.float64, device=self.device)
        # per model (0: G, 1: D): its own updates in a row with an inf/NaN gradient norm (they alternate)
        self._bad_grads_in_a_row = torch.zeros(2, dtype=torch.long, device=self.device)
        self._last_saved: tuple[int, Path] | None = None  # the last good checkpoint, for the message
        self._resumed: bool | None = None  # None: maybe_resume has not run yet
        self._resume_notes: list[tuple[int, str]] = []  # (level, message), logged when training starts

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        torch_state = self.torch_rng.get_state() if self.torch_rng is not None else torch.get_rng_state()
        rng = {"torch": torch_state, "crop": self.crop_gen.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "generator": self.gan.generator.state_dict(), "discriminator": self.gan.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "step": self.step,
            "best_metric": self.best_metric, "rng": rng,
            "data": {"features": self.feat_sampler.state_dict(), "text": self.text_sampler.state_dict()},
            "config": to_dict(self.cfg), "phones": self.phones, "input_dim": self.train_set.dim,
            "lineage": self.lineage, "history": self.history[-50:], "world_size": self.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["phones"]) != self.phones:
            raise ValueError("checkpoint output symbols differ from the current dict.phn.txt with "
                             f"generator.special_outputs = {self.cfg.generator.special_outputs}; use a new output dir")
        if int(state["input_dim"]) != self.train_set.dim:
            raise ValueError(f"checkpoint input dim {state['input_dim']} != features {self.train_set.dim}")
        self.gan.generator.load_state_dict(state["generator"])
        self.gan.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        self.best_metric = float(state["best_metric"])
        self.history = list(state.get("history", []))
        if self.torch_rng is not None:
            self.torch_rng.set_state(state["rng"]["torch"])
        else:
            torch.set_rng_state(state["rng"]["torch"])
        self.crop_gen.set_state(state["rng"]["crop"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.feat_sampler.load_state_dict(state["data"]["features"])
        self.text_sampler.load_state_dict(state["data"]["text"])

    def save(self, name: str) -> Path | None:
        if self.rank != 0:
            return None
        path = save_checkpoint(self.outdir / name, self.state_dict())
        if name == "last.pt":
            self._last_saved = (self.step, path)
        return path

    def maybe_resume(self) -> bool:
        """Load ``last.pt`` when resuming is on and it exists; refuses a checkpoint of other inputs."""
        if self._resumed is not None:
            return self._resumed
        path = self.outdir / "last.pt"
        self._resumed = False
        if not (self.cfg.trainer.resume and path.is_file()):
            return False
        state = load_checkpoint(path, map_location=self.device)
        self._refuse_changed_inputs(path, state)
        self.load_state_dict(state)
        changed = self._apply_optim_settings()
        history = list(state.get("lineage", {}).get("resumed", []))
        self._resume_notes.append((logging.INFO, f"resumed from {path} at update {self.step}"))
        if changed:
            # the run record: the log says it, and every later checkpoint carries it in its lineage
            self._resume_notes.append((logging.WARNING, "new optimiser settings, applied to the loaded optimisers: "
                                       + ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changed.items())))
            history.append({"step": self.step,
                            "optim_changed": {k: {"old": old, "new": new} for k, (old, new) in changed.items()}})
        self.lineage = {**self.lineage, "resumed": history}
        self._last_saved = (self.step, path)
        self._resumed = True
        return True

    def _refuse_changed_inputs(self, path: Path, state: dict[str, Any]) -> None:
        """Resuming on other data than the checkpoint was trained on is refused, naming the file."""
        then = state.get("lineage", {}).get("inputs", {}) or {}
        now = self.lineage.get("inputs", {}) or {}
        shared = sorted(set(then) & set(now))
        if then and not shared:
            log.warning("%s records no input hashes this version can compare; resuming without checking inputs", path)
        changed = [k for k in shared if then[k] != now[k]]
        gone = [k for k in sorted(set(then) - set(now)) if "/" in k]
        if changed or gone:
            key = (changed or gone)[0]
            where = self.lineage.get("files", {}).get(key, key)
            what = "changed" if changed else "is missing"
            raise ValueError(
                f"cannot resume {path} (update {state.get('step')}): its input {key} ({where}) {what} since the "
                f"checkpoint was written. Train into a new output folder, or set trainer.resume=false to start "
                f"this folder afresh (its checkpoints are then overwritten)")

    def _apply_optim_settings(self) -> dict[str, tuple[Any, Any]]:
        """Put the config's optimiser settings into the loaded param groups; {"optim.key": (old, new)} changed.

        Adam keeps lr, betas, eps and weight decay in its param groups and ``load_state_dict``
        restores them from the checkpoint, so without this a new ``optim.lr_g`` given on resume
        was silently ignored while config.yaml recorded it.
        """
        o = self.cfg.optim
        changed: dict[str, tuple[Any, Any]] = {}
        for opt, lr, weight_decay, which in ((self.opt_g, o.lr_g, o.weight_decay_g, "g"),
                                             (self.opt_d, o.lr_d, o.weight_decay_d, "d")):
            wanted = {f"optim.lr_{which}": ("lr", lr), f"optim.weight_decay_{which}": ("weight_decay", weight_decay),
                      "optim.betas": ("betas", tuple(o.betas)), "optim.eps": ("eps", o.eps),
                      # torch >= 2.x's AdamW keeps the flag in its groups: a loaded Adam state would turn it off
                      "optim.decoupled_weight_decay": ("decoupled_weight_decay", o.decoupled_weight_decay)}
            for key, (name, value) in wanted.items():
                for group in opt.param_groups:
                    if name == "decoupled_weight_decay" and name not in group:
                        continue  # older torch: the optimiser's class says it
                    old = tuple(group[name]) if name == "betas" else group[name]
                    if old != value:
                        changed.setdefault(key, (old, value))
                    group[name] = value
        return changed

    # -- one update ------------------------------------------------------------------------
    def code_weight(self) -> float:
        c = self.cfg.loss
        if c.code_penalty_final < 0 or c.code_penalty_anneal <= 0:
            return c.code_penalty
        f = min(1.0, self.step / c.code_penalty_anneal)
        return c.code_penalty + (c.code_penalty_final - c.code_penalty) * f

    def is_d_step(self, step: int) -> bool:
        # reference: D on odd updates, G on even; with d_steps=k, G once every k+1 updates
        return step % (self.cfg.optim.d_steps + 1) != 0

    def _all_reduce_grads(self, params: list[torch.nn.Parameter]) -> None:
        if self.world_size <= 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        off = 0
        for p in params:
            n = p.numel()
            p.grad = flat[off:off + n].view_as(p).clone()
            off += n

    def _text_indices(self, n_local: int) -> torch.Tensor:
        """This update's sentences. data.sampling=reference (text_batch_size 0): one per utterance of the
        feature batch, which may be the smaller last one."""
        if isinstance(self.text_sampler, ReplacementSampler) and self.cfg.data.text_batch_size == 0:
            return self.text_sampler.next(n_local * self.world_size)
        return self.text_sampler.next()

    def train_step(self) -> dict[str, torch.Tensor]:
        d_turn = self.is_d_step(self.step)
        static = self.cfg.trainer.static_shapes
        aux = None  # 2.0's auxiliary targets of the same rows, when the loss uses them
        idx = self.feat_sampler.next()
        if self.cfg.loss.aux_weight > 0 and self.train_set.targets is not None:
            x, xmask, aux = self.train_set.batch_with_targets(idx, self.cfg.data.max_segments, self.crop_gen, static)
        else:
            x, xmask = self.train_set.batch(idx, self.cfg.data.max_segments, self.crop_gen, static)
        tokens, tmask = self.text.batch(self._text_indices(len(idx)), static)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cfg.trainer.amp and self.device.type == "cuda")
        o = self.cfg.optim
        both = o.clip_scope == "both"  # the reference: the other model's gradients count in the clip norm
        if d_turn:
            model, other, opt = self.gan.discriminator, self.gan.generator, self.opt_d
            with autocast:
                loss, stats = discriminator_step_loss(self.gan, x, xmask, tokens, tmask, self.cfg.loss, static,
                                                      fake_grad=both)
        else:
            model, other, opt = self.gan.generator, self.gan.discriminator, self.opt_g
            if not both:
                self.gan.discriminator.requires_grad_(False)  # G step: no gradients for D's weights
            with autocast:
                loss, stats = generator_step_loss(self.gan, x, xmask, self.cfg.loss, code_weight=self.code_weight(),
                                                  static_shape=static, aux_targets=aux)
        opt.zero_grad(set_to_none=True)
        self.gan.zero_grad(set_to_none=True)  # the other model's grads are never stepped
        loss.backward()
        self.gan.discriminator.requires_grad_(True)
        params = [p for p in model.parameters() if p.requires_grad]
        if both:
            params += [p for p in other.parameters() if p.grad is not None]
        self._all_reduce_grads(params)
        # per_utterance: the reference divides by the (global) number of utterances before clipping
        scale = 1.0 / (x.shape[0] * self.world_size) if o.grad_scale == "per_utterance" else 1.0
        gnorm = scale_and_clip(params, o.clip_norm, scale)
        opt.step()
        self.step += 1
        self._watch_divergence(loss.detach(), gnorm.detach(), d_turn)
        stats["grad_norm_d" if d_turn else "grad_norm_g"] = gnorm.detach()
        return stats

    def _watch_divergence(self, loss: torch.Tensor, gnorm: torch.Tensor, d_turn: bool) -> None:
        """Record the first sign of divergence on the device; :meth:`check_finite` reads it."""
        t = self.cfg.trainer
        loss = loss.double()
        i = int(d_turn)
        in_a_row = torch.where(torch.isfinite(gnorm), 0, self._bad_grads_in_a_row[i] + 1)
        self._bad_grads_in_a_row[i] = in_a_row
        what = torch.where(~torch.isfinite(loss), _NONFINITE_LOSS,
                           torch.where(loss.abs() > t.max_loss, _LOSS_TOO_LARGE,
                                       torch.where(in_a_row >= t.max_nonfinite_grads, _NONFINITE_GRADS, 0)))
        value = torch.where(what == _NONFINITE_GRADS, gnorm.double(), loss)
        now = torch.stack([what.double(), torch.full_like(loss, self.step), value,
                           torch.full_like(loss, float(d_turn))])
        self._diverged = torch.where(self._diverged[0] > 0, self._diverged, now)

    def check_finite(self) -> None:
        """Raise TrainingDiverged if the guard saw a NaN/inf or exploding loss, or non-finite gradients."""
        what, step, value, d_turn = self._diverged.tolist()  # one host sync, at log/validate/save points only
        if what == 0:
            return
        t = self.cfg.trainer
        loss_name, model = ("loss_d", "discriminator") if d_turn else ("loss_g", "generator")
        if what == _NONFINITE_LOSS:
            cause = f"{loss_name} became NaN or inf at update {int(step)}"
        elif what == _LOSS_TOO_LARGE:
            cause = (f"{loss_name} exploded to {value:.3g} at update {int(step)} "
                     f"(above trainer.max_loss = {t.max_loss:g})")
        else:
            cause = (f"the {model}'s gradient norm was {value} for {t.max_nonfinite_grads} of its updates in a row, "
                     f"up to update {int(step)} (trainer.max_nonfinite_grads = {t.max_nonfinite_grads})")
        if self._last_saved is not None:
            kept = f"The last good checkpoint is {self._last_saved[1]} (update {self._last_saved[0]})"
        else:
            kept = "No checkpoint had been saved yet"
        best = self.outdir / "best.pt"
        if best.is_file():
            kept += f"; {best} is kept as it was"
        raise TrainingDiverged(
            f"training diverged: {cause}; stopped without saving the diverged model. {kept}. Lower optim.lr_g / "
            "optim.lr_d, check the features for NaN, or raise loss.gradient_penalty.")

    # -- validation ------------------------------------------------------------------------
    def validate(self) -> dict[str, Any]:
        if self.valid is None:
            return {}

        ids = decode_ids(self.gan.generator, self.valid)
        hyps = [drop_special(self.phones[i] for i in row) for row in ids]
        out: dict[str, Any] = {"valid_num_pred": sum(map(len, hyps)), "valid_vocab_usage": vocab_usage(hyps, self.phones)}
        if self.valid.refs is not None:
            out["valid_per"] = error_rate([drop_special(r) for r in self.valid.refs], hyps).rate
        if self.lm is not None:
            out.update({f"valid_{k}": v for k, v in label_free_metrics(hyps, self.lm, self.phones).items()})
        if self.tracker is not None and self.cfg.trainer.num_samples > 0:
            rows = []
            for i in range(min(self.cfg.trainer.num_samples, len(hyps))):
                ref = " ".join(self.valid.refs[i]) if self.valid.refs is not None else ""
                rows.append([i, ref, " ".join(hyps[i])])
            self.tracker.log_text("valid_samples", rows, ["utt", "reference", "hypothesis"], step=self.step)
        return out

    # -- loop ------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if name == "SIGINT" and self._stop_signal == "SIGINT":
            raise KeyboardInterrupt  # a second Ctrl-C: do not wait for the save
        self._stop_signal = name

    def train(self) -> TrainResult:
        t = self.cfg.trainer
        resumed = self.maybe_resume()
        for level, note in self._resume_notes:
            log.log(level, "%s", note)
        if self.tracker is not None:
            # the updates after the resumed checkpoint are done again: their old rows go, so each
            # update has one row in metrics.jsonl (a fresh start forgets every row of an old run)
            self.tracker.forget_steps_after(self.step if resumed else -1)
        handlers = install_stop_handlers(self._on_signal)
        bar = None
        if t.progress and self.rank == 0:
            from tqdm import tqdm  # noqa: PLC0415

            bar = tqdm(total=t.max_updates, initial=self.step, unit="upd", dynamic_ncols=True, leave=False)
        last_metrics: dict[str, Any] = {}
        acc: dict[str, float] = {}
        acc_n: dict[str, int] = {}
        t0, s0 = time.perf_counter(), self.step
        status = "done"
        if self.step == 0:  # the untrained model's metrics: the baseline every later one is compared with
            last_metrics = self._validate_and_select()
        try:
            while self.step < t.max_updates:
                if self._stop_signal:
                    self.check_finite()
                    self.save("last.pt")
                    log.warning("%s received: saved %s at update %d and stopped", self._stop_signal,
                                self.outdir / "last.pt", self.step)
                    status = "interrupted" if self._stop_signal == "SIGINT" else "preempted"
                    break
                stats = self.train_step()
                for k, v in stats.items():
                    acc[k] = acc.get(k, 0.0) + v.float()  # stays on the device: no sync per step
                    acc_n[k] = acc_n.get(k, 0) + 1
                if bar is not None:
                    bar.update(1)
                if self.step % t.log_every == 0 or self.step == t.max_updates:
                    self.check_finite()
                    rate = (self.step - s0) / max(time.perf_counter() - t0, 1e-9)
                    rec = {k: float(acc[k]) / acc_n[k] for k in acc}
                    rec["updates_per_s"] = rate
                    rec["code_weight"] = self.code_weight()
                    acc, acc_n = {}, {}
                    if self.tracker is not None:
                        self.tracker.log(rec, step=self.step)
                    if bar is not None:
                        bar.set_postfix(d=f"{rec.get('loss_d', float('nan')):.3f}",
                                        g=f"{rec.get('loss_g', float('nan')):.3f}", refresh=False)
                if self.step % t.validate_every == 0 or self.step == t.max_updates:
                    self.check_finite()
                    last_metrics = self._validate_and_select()
                if self.step % t.save_every == 0 or self.step == t.max_updates:
                    self.check_finite()
                    self.save("last.pt")
        finally:
            if bar is not None:
                bar.close()
            restore_handlers(handlers)
        if status == "interrupted":  # saved; now stop the caller as Ctrl-C does (the CLI exits 130)
            raise KeyboardInterrupt
        return TrainResult(status, self.step, self.best_metric, last_metrics)

    def _validate_and_select(self) -> dict[str, Any]:
        if self.rank != 0:
            return {}
        m = self.validate()
        if not m:
            return m
        metric = m.get("valid_weighted_lm_ppl")
        # Update 0 is logged as the baseline but never becomes best.pt: the untrained generator
        # spreads its argmax over every phone (U = 1), which the metric rewards, and on the demo
        # corpus it "won" against every trained checkpoint. The reference first validates after
        # validate_interval_updates, so it never considers the untrained model either.
        if metric is not None and self.step > 0 and metric < self.best_metric:
            self.best_metric = metric
            m["new_best"] = True
            self.save("best.pt")
        m["best_weighted_lm_ppl"] = self.best_metric
        self.history.append({"step": self.step, **{k: v for k, v in m.items() if isinstance(v, (int, float))}})
        if self.tracker is not None:
            self.tracker.log(m, step=self.step)
        log.info("update %d: %s", self.step, ", ".join(f"{k}={v:.4g}" for k, v in m.items()
                                                          if isinstance(v, float)))
        return m
