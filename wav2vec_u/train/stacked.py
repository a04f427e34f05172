"""N GAN runs of the same shapes trained as one stacked model, each run still its own :class:`GanTrainer`.

Every member is a full :class:`~wav2vec_u.train.trainer.GanTrainer` (its config, output folder,
data order, crop generator, best metric, history, checkpoints). The stack only takes over the
update: the members' weights and Adam moments are stacked along a leading axis and one update
runs every member's forward, backward, gradient clipping and Adam step together
(:mod:`wav2vec_u.models.stacked`: one grouped convolution per layer for all members)::

    members = build_members(cfgs, outdirs, inputs)    # GanTrainers, each with its own RNG stream
    stack = StackedTrainer(members)
    stats = stack.train_step()                          # every value (N,): one per member
    stack.unstack()                                     # weights, optimisers, step back into the members

What stays each member's own, so a member equals the same run trained alone (to float rounding):
the batches (its samplers and crop generator), its stream of random draws (dropout, the join's
random pick, the penalty's interpolation: ``member.torch_rng``, seeded as the run alone seeds
torch), its learning rates, betas, weight decay, clip norm and loss weights. Settings that change
shapes or the update schedule (batch size, model sizes, ``d_steps``, ``max_updates`` ...) must be
equal in a stack: :func:`stack_key` groups runs by them.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from wav2vec_u.config import to_dict
from wav2vec_u.models.gan import fake_distributions, real_distributions, reference_length
from wav2vec_u.models.join import reference_runs
from wav2vec_u.models.losses import code_penalty, smoothness_penalty
from wav2vec_u.models.stacked import (StackedParams, check_stackable, stacked_discriminator, stacked_generator,
                                      stacked_gradient_penalty, stacked_join)
from wav2vec_u.train.config import GanConfig
from wav2vec_u.train.trainer import _LOSS_TOO_LARGE, _NONFINITE_GRADS, _NONFINITE_LOSS, GanTrainer, TrainingDiverged


# settings that may differ between the members of one stack (each member's own value is used)
PER_MEMBER = ("trainer.seed", "trainer.init_generator", "optim.lr_g", "optim.lr_d", "optim.betas", "optim.eps",
              "optim.weight_decay_g", "optim.weight_decay_d", "optim.clip_norm", "loss.gradient_penalty",
              "loss.smoothness", "loss.code_penalty", "loss.code_penalty_final", "loss.code_penalty_anneal",
              "loss.real_label_smoothing")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def stack_key(cfg: GanConfig) -> str:
    """Runs with equal keys can share one stack: every setting except the :data:`PER_MEMBER` ones."""
    flat = _flat(to_dict(cfg))
    return repr(sorted((k, repr(v)) for k, v in flat.items() if k not in PER_MEMBER))


def build_members(cfgs: Sequence[GanConfig], outdirs: Sequence[Any], train, text, phones: list[str], valid=None,
                  lm: Any = None, lineage: dict[str, Any] | None = None) -> list[GanTrainer]:
    """One :class:`GanTrainer` per config, each with its own RNG stream: torch's global state right after
    that trainer seeded it and initialised its weights, i.e. where the run alone would continue from."""
    members = []
    for cfg, out in zip(cfgs, outdirs):
        m = GanTrainer(cfg, out, train, text, phones, valid=valid, lm=lm, lineage=dict(lineage or {}))
        rng = torch.Generator(m.device)
        if m.device.type == "cpu":
            rng.set_state(torch.get_rng_state())
        else:  # CUDA draws come from another generator than the single run's: same seed, no equality claimed
            rng.manual_seed(cfg.trainer.seed)
        m.torch_rng = rng
        members.append(m)
    return members


def _same(values: list[float], device: torch.device) -> float | torch.Tensor:
    """A Python number when every member has the same value (the single run's exact arithmetic), else (N,)."""
    if all(v == values[0] for v in values):
        return values[0]
    return torch.tensor(values, dtype=torch.float32, device=device)


def _bc(x: float | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
    """Broadcast a per-member (N,) value against a stacked tensor (N, ...)."""
    return x.view(-1, *([1] * (like.dim() - 1))) if isinstance(x, torch.Tensor) else x


class StackedTrainer:
    """The update of N :class:`GanTrainer` members as one stacked model (see the module docstring)."""

    def __init__(self, members: list[GanTrainer]):
        if not members:
            raise ValueError("no runs to stack")
        first = members[0]
        key = stack_key(first.cfg)
        for m in members:
            if stack_key(m.cfg) != key:
                raise ValueError(f"{m.outdir}: its settings differ from {first.outdir}'s in more than "
                                 f"{', '.join(PER_MEMBER)}; such runs cannot share a stack")
            if m.world_size != 1:
                raise ValueError("a stacked sweep runs in one process (no torchrun)")
            if m.train_set is not first.train_set or m.text is not first.text or m.phones != first.phones:
                raise ValueError("the members of a stack must share their feature and text sets")
            if m.torch_rng is None:
                raise ValueError(f"{m.outdir}: a member needs its own RNG stream (build it with build_members)")
        if len({m.step for m in members}) != 1:
            raise ValueError("the members of a stack must be at the same update: "
                             + ", ".join(f"{m.outdir}: {m.step}" for m in members))
        c = first.cfg
        check_stackable(c.generator, c.discriminator)
        if c.data.sampling == "reference" and len(members) > 1 and len(first.train_set) % c.data.batch_size:
            raise ValueError(
                f"w2vu sweep cannot stack data.sampling=reference when data.batch_size ({c.data.batch_size}) does "
                f"not divide the {len(first.train_set)} training utterances: each member's smaller last batch falls "
                "at another update. Set data.sampling=epoch, a batch size that divides the set, or --stack-size 1")
        if c.loss.aux_weight > 0:
            raise ValueError("w2vu sweep does not stack wav2vec-U 2.0's auxiliary loss (loss.aux_weight > 0)")
        self.cfg = c  # the shared settings
        self.members = list(members)
        self.device = first.device
        self.step = first.step
        self.stack()

    # -- stacking --------------------------------------------------------------------------
    def stack(self) -> None:
        """Take weights, Adam moments and update counts from the members."""
        ms = self.members
        self.params = StackedParams.from_gans([m.gan for m in ms])
        self.moments: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.adam_steps: dict[str, int] = {}
        for which, params in (("g", self.params.generator), ("d", self.params.discriminator)):
            opts = [m.opt_g if which == "g" else m.opt_d for m in ms]
            own = [list(m.gan.generator.parameters() if which == "g" else m.gan.discriminator.parameters())
                   for m in ms]
            steps = {int(o.state[ps[0]]["step"]) if ps[0] in o.state else 0 for o, ps in zip(opts, own)}
            if len(steps) != 1:
                raise ValueError("the members' optimisers are at different steps")
            self.adam_steps[which] = steps.pop()
            moments = []
            for i, p in enumerate(params):
                if self.adam_steps[which]:
                    ea = torch.stack([o.state[ps[i]]["exp_avg"] for o, ps in zip(opts, own)])
                    eas = torch.stack([o.state[ps[i]]["exp_avg_sq"] for o, ps in zip(opts, own)])
                else:
                    ea, eas = torch.zeros_like(p), torch.zeros_like(p)
                moments.append((ea.detach().clone(), eas.detach().clone()))
            self.moments[which] = moments
        self._diverged = torch.stack([m._diverged for m in ms]).clone()  # (N, 4)
        self._bad_grads_in_a_row = torch.stack([m._bad_grads_in_a_row for m in ms]).clone()  # (N, 2)
        self._hyper()

    def _hyper(self) -> None:
        """Per-member settings as numbers (all equal) or (N,) tensors."""
        cfgs = [m.cfg for m in self.members]
        dev = self.device
        o = [c.optim for c in cfgs]
        self.h = {
            "lr_g": [x.lr_g for x in o], "lr_d": [x.lr_d for x in o], "beta1": [x.betas[0] for x in o],
            "beta2": [x.betas[1] for x in o], "eps": [x.eps for x in o], "wd_g": [x.weight_decay_g for x in o],
            "wd_d": [x.weight_decay_d for x in o], "clip": [x.clip_norm for x in o],
        }
        loss = [c.loss for c in cfgs]
        self.gp_weight = [x.gradient_penalty for x in loss]
        self.smoothing = _same([x.real_label_smoothing for x in loss], dev)
        self.max_loss = torch.tensor([c.trainer.max_loss for c in cfgs], dtype=torch.float64, device=dev)
        self.max_bad = torch.tensor([c.trainer.max_nonfinite_grads for c in cfgs], device=dev)

    def unstack(self) -> None:
        """Write weights, Adam state, update count and divergence records back into the members."""
        for i, m in enumerate(self.members):
            self.params.write_to(i, m.gan)
            for which, opt, mod in (("g", m.opt_g, m.gan.generator), ("d", m.opt_d, m.gan.discriminator)):
                steps = self.adam_steps[which]
                for p, (ea, eas) in zip(mod.parameters(), self.moments[which]):
                    if steps:
                        opt.state[p] = {"step": torch.tensor(float(steps)), "exp_avg": ea[i].clone(),
                                        "exp_avg_sq": eas[i].clone()}
            m.step = self.step
            m._diverged = self._diverged[i].clone()
            m._bad_grads_in_a_row = self._bad_grads_in_a_row[i].clone()

    def keep(self, indices: Sequence[int]) -> None:
        """Go on with the members at ``indices`` only (the others diverged)."""
        self.members = [self.members[i] for i in indices]
        if not self.members:  # every run diverged: nothing left to update
            return
        idx = torch.tensor(list(indices), dtype=torch.long, device=self.device)
        self.params = self.params.select(idx)
        self.moments = {w: [(a[idx].clone(), b[idx].clone()) for a, b in ms] for w, ms in self.moments.items()}
        self._diverged = self._diverged[idx]
        self._bad_grads_in_a_row = self._bad_grads_in_a_row[idx]
        self._hyper()

    # -- one update --------------------------------------------------------------------------
    def _features(self) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Each member's next feature batch, padded to the longest: (N, B, L, D), (N, B, L), each member's L."""
        c = self.cfg
        rows, masks = [], []
        for m in self.members:
            r, mk = m.train_set._rows(m.feat_sampler.next(), c.data.max_segments, m.crop_gen,
                                      c.trainer.static_shapes)
            rows.append(r)
            masks.append(mk)
        lengths = [r.shape[1] for r in rows]
        L = max(lengths)
        R = torch.zeros(len(rows), rows[0].shape[0], L, dtype=torch.long, device=rows[0].device)
        M = torch.ones(len(rows), rows[0].shape[0], L, dtype=torch.bool, device=rows[0].device)
        for i, (r, mk) in enumerate(zip(rows, masks)):
            R[i, :, :r.shape[1]] = r
            M[i, :, :r.shape[1]] = mk
        feats = self.members[0].train_set.feats
        return feats[R].masked_fill(M[..., None], 0.0), M.to(feats.device), lengths

    def _text(self) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        toks = [m.text.batch(m.text_sampler.next(), self.cfg.trainer.static_shapes) for m in self.members]
        lengths = [t.shape[1] for t, _ in toks]
        T = max(lengths)
        B = toks[0][0].shape[0]
        tokens = torch.full((len(toks), B, T), -1, dtype=torch.long, device=toks[0][0].device)
        mask = torch.ones(len(toks), B, T, dtype=torch.bool, device=toks[0][0].device)
        for i, (t, mk) in enumerate(toks):
            tokens[i, :, :t.shape[1]] = t
            mask[i, :, :t.shape[1]] = mk
        return tokens, mask, lengths

    def _noise(self, shape: tuple[int, ...], lengths: list[int]) -> torch.Tensor | None:
        """Each member's dropout multipliers for its own (B, L_m, D) input, drawn from its stream as
        ``F.dropout`` draws them (Bernoulli(1 - p) / (1 - p)); 1 past a member's length (padding)."""
        p = self.cfg.generator.dropout
        if p <= 0:
            return None  # F.dropout with p = 0 draws nothing
        noise = torch.ones(shape, device=self.device)
        N, B, _, D = shape
        for i, m in enumerate(self.members):
            noise[i, :, :lengths[i]] = torch.empty(B, lengths[i], D, device=self.device).bernoulli_(
                1 - p, generator=m.torch_rng).div_(1 - p)
        return noise

    def _uniforms(self, B: int) -> Any:
        def draw(runs: list[int]) -> list[torch.Tensor]:
            return [torch.rand(B * r + 1, device=self.device, generator=m.torch_rng)
                    for r, m in zip(runs, self.members)]

        return draw

    def _fake(self, joined: torch.Tensor, joined_mask: torch.Tensor, padding_mask: torch.Tensor,
              runs: list[int]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """:func:`~wav2vec_u.models.gan.discriminator_input` of every member: (fake (N, B, R', V), its mask,
        each member's own length, which cuts its gradient penalty). Positions past a member's own length are
        masked and, D being causal (check_stackable), never reach its unpadded outputs."""
        c = self.cfg
        padding = c.discriminator.padding
        fake = fake_distributions(joined, joined_mask, c.generator, padding)
        lengths = list(runs)
        if padding == "reference":
            if not c.trainer.static_shapes:  # each member's reference length (join.reference_runs)
                lengths = [max(r, x) for r, x in zip(runs, reference_runs(joined_mask, padding_mask).tolist())]
                fake, joined_mask = reference_length(fake, joined_mask, max(lengths))
        return fake, joined_mask, lengths

    def _real(self, tokens: torch.Tensor, mask: torch.Tensor, V: int) -> torch.Tensor:
        """:func:`~wav2vec_u.models.gan.real_distributions` of every member (N, B, T, V)."""
        s = self.smoothing
        gan = self.members[0].gan
        return real_distributions(tokens, mask, V, s.view(-1, 1, 1, 1) if isinstance(s, torch.Tensor) else s,
                                  gan.first_phone, gan.pad_index)

    def _d_loss(self, x, xmask, lengths, tokens, tmask, text_lengths) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.cfg
        B = x.shape[1]
        fake_grad = c.optim.clip_scope == "both"  # G stays in the graph: its gradients count in the clip norm
        with torch.set_grad_enabled(fake_grad):
            logits, lmask = stacked_generator(self.params, c.generator, x, xmask, self._noise(x.shape, lengths))
            joined, jmask, runs = stacked_join(logits, lmask, self._uniforms(B), c.trainer.static_shapes)
        V = logits.shape[-1]
        fake, fmask, runs = self._fake(joined, jmask, lmask, runs)
        real = self._real(tokens, tmask, V)
        d_fake = stacked_discriminator(self.params, c.discriminator, fake, fmask)
        d_real = stacked_discriminator(self.params, c.discriminator, real, tmask)
        loss_fake = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake), reduction="none").sum(1)
        loss_real = F.binary_cross_entropy_with_logits(d_real, torch.zeros_like(d_real), reduction="none").sum(1)
        loss = loss_fake + loss_real
        stats = {"loss_dense_d": loss_fake.detach(), "loss_token_d": loss_real.detach()}
        if any(w > 0 for w in self.gp_weight):
            b = min(real.shape[1], fake.shape[1])
            alpha = torch.zeros(len(self.members), b, device=self.device)
            for i, (m, w) in enumerate(zip(self.members, self.gp_weight)):
                if w > 0:  # a run alone draws its alphas only when its penalty is on
                    alpha[i] = torch.rand(b, device=self.device, generator=m.torch_rng)
            cut = [min(t, r) for t, r in zip(text_lengths, runs)]
            gp = stacked_gradient_penalty(self.params, c.discriminator, real, fake, cut, alpha, norm=c.loss.gp_norm,
                                          detach=not fake_grad)
            w = _same(self.gp_weight, self.device)
            loss = loss + w * gp if not isinstance(w, torch.Tensor) else loss + torch.where(w > 0, w * gp, 0.0)
            stats["grad_pen"] = gp.detach()
        stats["loss_d"] = loss.detach()
        return loss, stats

    def _g_loss(self, x, xmask, lengths) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.cfg
        N, B = x.shape[:2]
        logits, lmask = stacked_generator(self.params, c.generator, x, xmask, self._noise(x.shape, lengths))
        joined, jmask, runs = stacked_join(logits, lmask, self._uniforms(B), c.trainer.static_shapes)
        V = logits.shape[-1]
        fake, fmask, _ = self._fake(joined, jmask, lmask, runs)
        d_fake = stacked_discriminator(self.params, c.discriminator, fake, fmask)
        loss_g = F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake), reduction="none").sum(1)
        if c.loss.penalty_input == "joined":  # the reference's form, one value per member
            R = reference_runs(jmask, lmask).to(torch.float32)  # (N,) each member's joined length
            smooth = smoothness_penalty(joined.float(), jmask, length=R)
            code, ppl = code_penalty(joined, jmask, uniform_to=R)
        else:
            # smoothness: each member's mean over its own B x (T'_m - 1) x V differences
            diff = ((logits[:, :, 1:] - logits[:, :, :-1]) ** 2).masked_fill(lmask[:, :, 1:, None], 0.0)
            k, s, pad = c.generator.kernel, c.generator.stride, c.generator.kernel // 2
            out_len = [(n + 2 * pad - k) // s + 1 for n in lengths]
            smooth = diff.float().sum((1, 2, 3)) / torch.tensor([B * (t - 1) * V for t in out_len], device=self.device)
            # code penalty: (V - perplexity of each member's batch-averaged softmax) / V
            probs = torch.softmax(logits.float(), dim=-1)
            valid = (~lmask).to(probs.dtype)[..., None]
            avg = (probs * valid).sum((1, 2)) / valid.sum((1, 2)).clamp(min=1)
            ppl = torch.exp(-(avg * torch.log(avg + 1e-7)).sum(-1))
            code = (V - ppl) / V
        ws = _same([B * m.cfg.loss.smoothness for m in self.members], self.device)
        wc = _same([B * m.code_weight() for m in self.members], self.device)
        loss = loss_g + ws * smooth + wc * code
        stats = {"loss_dense_g": loss_g.detach(), "smoothness": smooth.detach(), "code_pen": code.detach(),
                 "code_ppl": ppl.detach(), "loss_g": loss.detach()}
        return loss, stats

    def train_step(self) -> dict[str, torch.Tensor]:
        """One update of every member (D or G, as the schedule says); stats (N,) per name."""
        for m in self.members:
            m.step = self.step  # each member's code_weight() reads its step
        d_turn = self.members[0].is_d_step(self.step)
        x, xmask, lengths = self._features()
        tokens, tmask, text_lengths = self._text()
        o = self.cfg.optim
        if d_turn:
            loss, stats = self._d_loss(x, xmask, lengths, tokens, tmask, text_lengths)
            params, others, which = self.params.discriminator, self.params.generator, "d"
        else:
            loss, stats = self._g_loss(x, xmask, lengths)
            params, others, which = self.params.generator, self.params.discriminator, "g"
        # clip_scope=both: the other model's gradients of the same loss count in the norm (never stepped)
        wrt = params + (others if o.clip_scope == "both" else [])
        grads = [g if g is not None else torch.zeros_like(p)
                 for g, p in zip(torch.autograd.grad(loss.sum(), wrt, allow_unused=True), wrt)]
        if o.grad_scale == "per_utterance":  # the reference: divide by the batch's utterances before clipping
            grads = [g / x.shape[1] for g in grads]
        gnorm = self._clip(grads)
        self._adam(which, params, grads[:len(params)])
        self.step += 1
        self._watch_divergence(loss.detach(), gnorm, d_turn)
        stats["grad_norm_d" if d_turn else "grad_norm_g"] = gnorm
        return stats

    def _clip(self, grads: list[torch.Tensor]) -> torch.Tensor:
        """``clip_grad_norm_`` of each member's gradients (in place); each member's total norm (N,)."""
        norms = torch.stack([g.flatten(1).norm(2, dim=1) for g in grads])  # (P, N)
        total = norms.norm(2, dim=0)
        clip = _same(self.h["clip"], self.device)
        coef = (clip / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(_bc(coef, g))
        return total

    @torch.no_grad()
    def _adam(self, which: str, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        """torch.optim.Adam's (or AdamW's, optim.decoupled_weight_decay) single-tensor step (what it runs on a CPU),
        per member's settings."""
        self.adam_steps[which] += 1
        step = self.adam_steps[which]
        h = self.h
        lr, wd = h[f"lr_{which}"], h[f"wd_{which}"]
        bc1 = [1 - b ** step for b in h["beta1"]]
        bc2_sqrt = [(1 - b ** step) ** 0.5 for b in h["beta2"]]
        dev = self.device
        step_size = _same([-a / b for a, b in zip(lr, bc1)], dev)
        bc2_sqrt_t = _same(bc2_sqrt, dev)
        eps = _same(h["eps"], dev)
        one_minus_b1 = _same([1 - b for b in h["beta1"]], dev)
        b2 = _same(h["beta2"], dev)
        one_minus_b2 = _same([1 - b for b in h["beta2"]], dev)
        wd_t = _same(wd, dev)
        decoupled = self.cfg.optim.decoupled_weight_decay
        for p, g, (ea, eas) in zip(params, grads, self.moments[which]):
            if decoupled:  # torch AdamW: p *= 1 - lr * wd before the Adam step
                lr_t = _same(lr, dev)
                if isinstance(wd_t, torch.Tensor) or isinstance(lr_t, torch.Tensor) or wd_t != 0:
                    p.mul_(1 - _bc(lr_t, p) * _bc(wd_t, p))
            elif isinstance(wd_t, torch.Tensor):
                g = g + _bc(wd_t, g) * p
            elif wd_t != 0:
                g = g.add(p, alpha=wd_t)
            ea.lerp_(g, _bc(one_minus_b1, g) if isinstance(one_minus_b1, torch.Tensor) else one_minus_b1)
            if isinstance(b2, torch.Tensor):
                eas.mul_(_bc(b2, g)).add_(g * g * _bc(one_minus_b2, g))
            else:
                eas.mul_(b2).addcmul_(g, g, value=one_minus_b2)
            denom = (eas.sqrt() / _bc(bc2_sqrt_t, g)).add_(_bc(eps, g))
            if isinstance(step_size, torch.Tensor):
                p.add_(_bc(step_size, g) * (ea / denom))
            else:
                p.addcdiv_(ea, denom, value=step_size)

    def _watch_divergence(self, loss: torch.Tensor, gnorm: torch.Tensor, d_turn: bool) -> None:
        """:meth:`GanTrainer._watch_divergence` for every member: (N, 4) records on the device."""
        loss = loss.double()
        i = int(d_turn)
        in_a_row = torch.where(torch.isfinite(gnorm), 0, self._bad_grads_in_a_row[:, i] + 1)
        self._bad_grads_in_a_row[:, i] = in_a_row
        what = torch.where(~torch.isfinite(loss), _NONFINITE_LOSS,
                           torch.where(loss.abs() > self.max_loss, _LOSS_TOO_LARGE,
                                       torch.where(in_a_row >= self.max_bad, _NONFINITE_GRADS, 0)))
        value = torch.where(what == _NONFINITE_GRADS, gnorm.double(), loss)
        now = torch.stack([what.double(), torch.full_like(loss, self.step), value,
                           torch.full_like(loss, float(d_turn))], 1)
        self._diverged = torch.where(self._diverged[:, :1] > 0, self._diverged, now)

    def diverged(self) -> list[tuple[int, str]]:
        """(index, message) of every member whose guard tripped (one host synchronisation)."""
        out = []
        for i, bad in enumerate(self._diverged[:, 0].tolist()):
            if bad:
                m = self.members[i]
                m._diverged = self._diverged[i].clone()
                try:
                    m.check_finite()
                except TrainingDiverged as exc:
                    out.append((i, str(exc)))
        return out
