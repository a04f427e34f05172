"""Reference-parity options of the GAN trainer (issue 14): each pinned against a value worked out by hand.

The defaults keep our behaviour; ``configs/gan/w2vu.yaml`` sets the reference's. docs/gan.md,
"Reference parity options", lists them.
"""

import math

import pytest
import torch

from wav2vec_u.config import apply_overrides, from_dict
from wav2vec_u.models.join import reference_runs
from wav2vec_u.models.losses import code_penalty, smoothness_penalty
from wav2vec_u.train.config import GanConfig, OptimConfig
from wav2vec_u.train.data import EpochSampler, FeatureSet, LengthBatchSampler, ReplacementSampler, TextSet
from wav2vec_u.train.stacked import StackedTrainer, build_members
from wav2vec_u.train.trainer import GanTrainer, make_optimizer, scale_and_clip
from toys import make_toy

BATCH = 4


def _cfg(*overrides: str) -> GanConfig:
    return from_dict(GanConfig, apply_overrides({}, ["discriminator.dim=8", f"data.batch_size={BATCH}",
                                                     "trainer.progress=false", *overrides]))


@pytest.fixture(scope="module")
def toy_sets():
    toy = make_toy(num_phones=6, dim=8, noise=0.5, num_train=40, num_valid=4, num_text=80, seed=0)
    phones = toy.phones + ["<SIL>"]
    return FeatureSet(toy.train.feats, toy.train.lengths), TextSet(toy.text, phones), phones


def _trainer(toy_sets, *overrides: str) -> GanTrainer:
    torch.set_num_threads(1)
    train, text, phones = toy_sets
    return GanTrainer(_cfg(*overrides), "/nonexistent/parity", train, text, phones)


def _both_step(a: GanTrainer, b: GanTrainer) -> tuple[dict, dict]:
    """One update of each with the same random draws (dropout, join, penalty: torch's global stream)."""
    state = torch.get_rng_state()
    sa = a.train_step()
    torch.set_rng_state(state)
    return sa, b.train_step()


def _grads(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in module.parameters()]


def _norm(*grad_lists: list[torch.Tensor | None]) -> float:
    return math.sqrt(sum(float((g.double() ** 2).sum()) for gl in grad_lists for g in gl if g is not None))


# -- 1. gradient scaling before clipping ---------------------------------------------------------
def test_scale_and_clip_by_hand():
    """grad (3, 4): norm 5. Clip at 3: unscaled it is clipped to 3/5 of itself, (1.8, 2.4); divided by
    2 utterances first it is (1.5, 2.0), norm 2.5 < 3, so left alone. The norm returned is after scaling."""
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([3.0, 4.0])
    assert float(scale_and_clip([p], 3.0)) == pytest.approx(5.0)
    assert torch.allclose(p.grad, torch.tensor([1.8, 2.4]))
    p.grad = torch.tensor([3.0, 4.0])
    assert float(scale_and_clip([p], 3.0, scale=1 / 2)) == pytest.approx(2.5)
    assert torch.allclose(p.grad, torch.tensor([1.5, 2.0]))


def test_grad_scale_per_utterance_divides_by_the_batch(toy_sets):
    """optim.grad_scale=per_utterance: the same first G and D updates' gradient norms are those of the
    summed loss divided by the batch (4 utterances), exactly; the default (sum) keeps them whole."""
    ours = _trainer(toy_sets, "optim.clip_norm=1e9")
    ref = _trainer(toy_sets, "optim.clip_norm=1e9", "optim.grad_scale=per_utterance")
    assert ours.cfg.optim.grad_scale == "sum" and OptimConfig().grad_scale == "sum"
    for key in ("grad_norm_g", "grad_norm_d"):  # update 0 is G's, update 1 D's (no clipping: the same weights)
        sa, sb = _both_step(ours, ref)
        a, b = float(sa[key]), float(sb[key])
        assert a > 0 and b == pytest.approx(a / BATCH, rel=1e-5), key
    # and with clipping on, the reference clips far less often: the summed norm is BATCH x larger
    clipped = _trainer(toy_sets, "optim.grad_scale=per_utterance", "optim.clip_norm=1e-3")
    clipped.train_step()
    assert _norm(_grads(clipped.gan.generator)) == pytest.approx(1e-3, rel=1e-3)


# -- 2. clip-norm scope ----------------------------------------------------------------------------
def test_clip_scope_both_by_hand():
    """Stepped model's grad (3, 4), the other model's (12): joint norm 13; clip at 6.5 halves both."""
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0, 4.0]), torch.tensor([12.0])
    assert float(scale_and_clip([a, b], 6.5)) == pytest.approx(13.0)
    assert torch.allclose(a.grad, torch.tensor([1.5, 2.0])) and torch.allclose(b.grad, torch.tensor([6.0]))


def test_clip_scope_both_counts_the_other_models_gradients(toy_sets):
    """optim.clip_scope=both: on a G update D's weights get the G loss's gradients too, on a D update G's
    get the D loss's (the reference detaches neither); the logged norm covers both. The stepped model's
    own gradients are the same as with the default scope."""
    ours = _trainer(toy_sets, "optim.clip_norm=1e9")
    ref = _trainer(toy_sets, "optim.clip_norm=1e9", "optim.clip_scope=both")
    for key, stepped, other in (("grad_norm_g", "generator", "discriminator"),
                                ("grad_norm_d", "discriminator", "generator")):
        sa, sb = _both_step(ours, ref)
        a, b = float(sa[key]), float(sb[key])
        own_a, own_b = _grads(getattr(ours.gan, stepped)), _grads(getattr(ref.gan, stepped))
        for x, y in zip(own_a, own_b):
            assert torch.allclose(x, y, rtol=1e-5, atol=1e-7), key
        assert all(g is None for g in _grads(getattr(ours.gan, other)))  # default: the other has none
        others = _grads(getattr(ref.gan, other))
        assert all(g is not None for g in others) and _norm(others) > 0
        assert a == pytest.approx(_norm(own_a), rel=1e-5)
        assert b == pytest.approx(_norm(own_b, others), rel=1e-5) and b > a


# -- 7. weight decay ---------------------------------------------------------------------------------
@pytest.mark.parametrize("decoupled, expected", [
    # coupled (Adam + L2): g = wd * p = 0.5, Adam's first step moves p by lr * g / (|g| + eps)
    (False, 1 - 0.1 * 0.5 / (0.5 + 1e-6)),
    # decoupled (AdamW): p *= 1 - lr * wd = 0.95; the Adam step of g = 0 is 0
    (True, 1 - 0.1 * 0.5),
])
def test_weight_decay_coupled_or_decoupled_by_hand(decoupled, expected):
    p = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = make_optimizer([p], lr=0.1, weight_decay=0.5, o=OptimConfig(decoupled_weight_decay=decoupled))
    p.grad = torch.zeros_like(p)
    opt.step()
    assert float(p.detach()) == pytest.approx(expected, rel=0, abs=1e-9)


def test_resume_applies_the_configs_weight_decay_kind(toy_sets):
    """torch keeps the decoupled flag in Adam's param groups, so loading an AdamW run's state into a run
    configured for L2 decay would silently stay decoupled; resume's optimiser settings apply the config's
    choice and record the change."""
    old = _trainer(toy_sets, "optim.decoupled_weight_decay=true")
    new = _trainer(toy_sets)
    new.opt_d.load_state_dict(old.opt_d.state_dict())
    if "decoupled_weight_decay" not in new.opt_d.param_groups[0]:
        pytest.skip("this torch keeps the kind of decay in the optimiser's class only")
    assert new.opt_d.param_groups[0]["decoupled_weight_decay"]  # what the load left
    changed = new._apply_optim_settings()
    assert not any(g["decoupled_weight_decay"] for g in new.opt_d.param_groups + new.opt_g.param_groups)
    assert changed["optim.decoupled_weight_decay"] == (True, False)


# -- 3. where the smoothness and code penalties are computed -----------------------------------------
def test_reference_runs_by_hand():
    """Utterance 0: 3 frames of 4 (padded), runs (a)(b)(c) = 3; utterance 1: 4 frames, runs (a a)(b b) = 2. Ours pads the joined logits to 3; the reference marks utterance 0's
    padded tail as one more run before dropping it, so pads to 3 + 1 = 4."""
    joined_mask = torch.tensor([[False, False, False], [False, False, True]])
    padding_mask = torch.tensor([[False, False, False, True], [False, False, False, False]])
    assert int(reference_runs(joined_mask, padding_mask)) == 4
    # no utterance padded: R is the most runs
    assert int(reference_runs(joined_mask, torch.zeros(2, 4, dtype=torch.bool))) == 3
    # the longest utterance has the most runs: no extra position
    assert int(reference_runs(torch.tensor([[False, False, True], [False, False, False]]), padding_mask)) == 3


def test_code_penalty_counts_padding_as_uniform_by_hand():
    """One valid position with softmax (1/4, 3/4) (logits 0, ln 3), counted over 2 positions: the padded
    one is uniform (1/2, 1/2), so the mean is (3/8, 5/8); unpadded only it is (1/4, 3/4)."""
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0]]])
    mask = torch.tensor([[False, True]])

    def expected(p):
        ppl = math.exp(-sum(q * math.log(q + 1e-7) for q in p))
        return (2 - ppl) / 2, ppl

    for kwargs, p in (({}, (0.25, 0.75)), ({"uniform_to": 2}, (0.375, 0.625)),
                      ({"uniform_to": 3}, ((0.25 + 1.0) / 3, (0.75 + 1.0) / 3))):
        code, ppl = code_penalty(logits, mask, **kwargs)
        want_code, want_ppl = expected(p)
        assert float(code) == pytest.approx(want_code, rel=1e-5) and float(ppl) == pytest.approx(want_ppl, rel=1e-5)


def test_smoothness_over_the_reference_length_by_hand():
    """Joined logits (0, 0), (1, 2), padding: squared differences 1 + 4 = 5 (the padded one is zeroed);
    mean over B x (T - 1) x V = 1 x 2 x 2 -> 5/4; over the reference's length 4: 1 x 3 x 2 -> 5/6."""
    logits = torch.tensor([[[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]]])
    mask = torch.tensor([[False, False, True]])
    assert float(smoothness_penalty(logits, mask)) == pytest.approx(5 / 4)
    assert float(smoothness_penalty(logits, mask, length=torch.tensor(4))) == pytest.approx(5 / 6)


@pytest.mark.parametrize("static", [False, True])
def test_penalty_input_joined_uses_the_joined_logits(toy_sets, static):
    """loss.penalty_input=joined: the G step's penalties are the hand-checked functions above on the
    joined logits, over the reference's length (with static shapes too, where the tensors are longer)."""
    from wav2vec_u.models.gan import Gan, generate, generator_step_loss
    torch.set_num_threads(1)
    train, _, _ = toy_sets
    cfg = _cfg("loss.penalty_input=joined")
    assert _cfg().loss.penalty_input == "segments"
    torch.manual_seed(0)
    gan = Gan(train.dim, 7, cfg.generator, cfg.discriminator)
    x, xmask = train.batch(torch.arange(BATCH), static=static)
    torch.manual_seed(1)
    _, stats = generator_step_loss(gan, x, xmask, cfg.loss, static_shape=static)
    torch.manual_seed(1)
    with torch.no_grad():
        gen = generate(gan.generator, x, xmask, static)
        R = reference_runs(gen.joined_mask, gen.padding_mask)
        code, _ = code_penalty(gen.joined, gen.joined_mask, uniform_to=R)
        smooth = smoothness_penalty(gen.joined, gen.joined_mask, length=R)
    if static:  # the tensors run past the reference's length: their padding must not be counted
        assert int(R) < gen.joined.shape[1]
    assert float(stats["code_pen"]) == pytest.approx(float(code), rel=1e-5)
    assert float(stats["smoothness"]) == pytest.approx(float(smooth), rel=1e-5)
    before, _ = code_penalty(gen.logits.detach(), gen.padding_mask)  # the test can fail: the two forms differ here
    assert float(stats["code_pen"]) != pytest.approx(float(before), rel=1e-3)


# -- 6. data sampling -------------------------------------------------------------------------------
def test_length_batches_are_built_once_and_only_reordered_by_hand():
    """Lengths 5 2 9 2 7, batch 2: longest first 9 (#2), 7 (#4), 5 (#0), then the two 2s (#1, #3) in a
    seeded order, so the batches are {2, 4}, {0, one of 1/3}, {the other} (the last one smaller). Every
    epoch visits exactly these batches; only their order changes."""
    sampler = LengthBatchSampler(torch.tensor([5, 2, 9, 2, 7]), batch_size=2, seed=1)
    first = [set(b.tolist()) for b in sampler.batches]
    assert first[0] == {2, 4} and 0 in first[1] and len(first[1]) == 2 and len(first[2]) == 1
    assert first[1] | first[2] == {0, 1, 3}
    orders = []
    for _ in range(8):  # 8 epochs
        epoch = [tuple(sorted(sampler.next().tolist())) for _ in range(3)]
        assert sorted(epoch) == sorted(tuple(sorted(b)) for b in first)
        orders.append(epoch)
    assert len(set(map(tuple, orders))) > 1  # the order is shuffled per epoch
    again = LengthBatchSampler(torch.tensor([5, 2, 9, 2, 7]), batch_size=2, seed=1)
    again.load_state_dict({**sampler.state_dict()})
    assert again.next().tolist() == sampler.next().tolist()  # resume continues the order


def test_text_is_drawn_with_replacement_one_line_per_utterance():
    """3 sentences, 5 utterances: a batch drawn with replacement must repeat a sentence (pigeonhole);
    without replacement (ours) no batch of 3 repeats one. The size follows the feature batch."""
    draws = ReplacementSampler(3, batch_size=5, seed=1)
    for _ in range(20):
        b = draws.next()
        assert len(b) == 5 and len(set(b.tolist())) <= 3
    assert len(draws.next(2)) == 2
    ours = EpochSampler(3, batch_size=3, seed=1)
    assert all(sorted(ours.next().tolist()) == [0, 1, 2] for _ in range(5))
    with pytest.raises(ValueError, match="data.sampling"):
        draws.load_state_dict(ours.state_dict())


def test_trainer_with_reference_sampling(toy_sets):
    """data.sampling=reference, 40 utterances in batches of 6: six full batches and one of 4, each of
    utterances of adjacent lengths; the text batch has one sentence per utterance; 14 updates (two
    epochs) run, and the default keeps a fresh permutation of fixed-size batches."""
    t = _trainer(toy_sets, "data.sampling=reference", "data.batch_size=6")
    assert isinstance(_trainer(toy_sets).feat_sampler, EpochSampler)
    sizes = [len(b) for b in t.feat_sampler.batches]
    assert sizes == [6] * 6 + [4]
    lengths = t.train_set.lengths
    spans = [(int(lengths[b].min()), int(lengths[b].max())) for b in t.feat_sampler.batches]
    assert all(lo >= hi_next for (lo, _), (_, hi_next) in zip(spans, spans[1:]))  # sorted, no overlap
    assert len(t._text_indices(4)) == 4
    for _ in range(14):
        t.train_step()
    assert t.feat_sampler.epoch == 1 and t.feat_sampler.pos == 7


def test_stacked_refuses_reference_sampling_with_a_smaller_last_batch(toy_sets):
    train, text, phones = toy_sets
    cfgs = [_cfg("data.sampling=reference", "data.batch_size=6", f"trainer.seed={i}") for i in (1, 2)]
    members = build_members(cfgs, ["/nonexistent/a", "/nonexistent/b"], train, text, phones)
    with pytest.raises(ValueError, match="data.sampling=reference"):
        StackedTrainer(members)


# -- the stacked sweep model implements them identically ---------------------------------------------
def test_stacked_member_equals_the_run_alone_with_reference_options(toy_sets):
    """w2vu sweep's stacked update with every option above at the reference's value, clipping biting
    (clip norm 0.05) and weight decay on both models: each member equals its run alone (40 updates)."""
    torch.set_num_threads(1)
    train, text, phones = toy_sets
    ref = ("optim.grad_scale=per_utterance", "optim.clip_scope=both", "optim.decoupled_weight_decay=true",
           "loss.penalty_input=joined", "data.sampling=reference", "optim.clip_norm=0.05", "optim.weight_decay_g=0.01", "optim.weight_decay_d=0.1")
    settings = [(*ref, "trainer.seed=1"), (*ref, "trainer.seed=2", "optim.lr_g=0.001", "optim.weight_decay_d=0.3")]
    members = build_members([_cfg(*s) for s in settings], ["/nonexistent/a", "/nonexistent/b"], train, text, phones)
    stack = StackedTrainer(members)
    norms = []
    for _ in range(40):
        norms.append(stack.train_step().get("grad_norm_d"))
    stack.unstack()
    assert any(n is not None and float(n.max()) > 0.05 for n in norms)  # clipping bit
    for s, member in zip(settings, members):
        alone = GanTrainer(_cfg(*s), "/nonexistent/alone", train, text, phones)
        for _ in range(40):
            alone.train_step()
        for (name, p), q in zip(alone.gan.named_parameters(), member.gan.parameters()):
            assert torch.allclose(p, q, rtol=0, atol=1e-5), (s, name, float((p - q).abs().max()))


def test_w2vu_yaml_sets_the_reference_behaviour():
    """configs/gan/w2vu.yaml claims the reference's settings: it sets each option to the reference's value."""
    from wav2vec_u.config import load_config
    from wav2vec_u.train.train_command import DEFAULT_CONFIG

    cfg = load_config(GanConfig, DEFAULT_CONFIG, [])
    o = cfg.optim
    assert (o.grad_scale, o.clip_scope, o.decoupled_weight_decay) == ("per_utterance", "both", True)
    assert cfg.loss.penalty_input == "joined"
