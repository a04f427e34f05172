"""Reference-parity options of the GAN trainer (issue 14): each pinned against a value worked out by hand.

The defaults keep our behaviour; ``configs/gan/w2vu.yaml`` sets the reference's. docs/gan.md,
"Reference parity options", lists them.
"""

import math

import pytest
import torch

from wav2vec_u.config import ConfigError, apply_overrides, from_dict
from wav2vec_u.models.gan import fake_distributions, real_distributions, reference_length
from wav2vec_u.models.join import reference_runs
from wav2vec_u.models.losses import code_penalty, smoothness_penalty
from wav2vec_u.tokens import PAD_INDEX, output_symbols
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
    sampler = LengthBatchSampler(torch.tensor([5, 2, 9, 2, 7]), batch_size=2, seed=1, sort_by_length=True)
    first = [set(b.tolist()) for b in sampler.batches]
    assert first[0] == {2, 4} and 0 in first[1] and len(first[1]) == 2 and len(first[2]) == 1
    assert first[1] | first[2] == {0, 1, 3}
    orders = []
    for _ in range(8):  # 8 epochs
        epoch = [tuple(sorted(sampler.next().tolist())) for _ in range(3)]
        assert sorted(epoch) == sorted(tuple(sorted(b)) for b in first)
        orders.append(epoch)
    assert len(set(map(tuple, orders))) > 1  # the order is shuffled per epoch
    again = LengthBatchSampler(torch.tensor([5, 2, 9, 2, 7]), batch_size=2, seed=1, sort_by_length=True)
    again.load_state_dict({**sampler.state_dict()})
    assert again.next().tolist() == sampler.next().tolist()  # resume continues the order


def test_reference_batches_unsorted_are_a_seeded_permutation_cut_once():
    """The reference's w2vu.yaml sets task.sort_by_length false: the batches are consecutive slices of one
    seeded permutation (not grouped by length), fixed for the run; another seed cuts other batches."""
    lengths = torch.tensor([5, 2, 9, 2, 7, 3, 8, 1, 6, 4])
    sampler = LengthBatchSampler(lengths, batch_size=3, seed=1)
    batches = [b.tolist() for b in sampler.batches]
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(10))                     # each utterance once: a permutation
    assert flat != sorted(flat, key=lambda i: -int(lengths[i]))  # not the length order
    for _ in range(3):                                         # three epochs: the same four batches
        seen = sorted(tuple(sampler.next().tolist()) for _ in range(4))
        assert seen == sorted(tuple(b) for b in batches)
    other = [b.tolist() for b in LengthBatchSampler(lengths, batch_size=3, seed=2).batches]
    assert other != batches


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
    """data.sampling=reference with data.sort_by_length=true, 40 utterances in batches of 6: six full
    batches and one of 4, each of utterances of adjacent lengths; the text batch has one sentence per
    utterance; 14 updates (two epochs) run, and the default keeps a fresh permutation of fixed-size
    batches. Unsorted (the reference's w2vu.yaml) the trainer cuts the same sizes from a permutation."""
    assert _trainer(toy_sets, "data.sampling=reference", "data.batch_size=6").feat_sampler.batches[0].tolist() \
        != _trainer(toy_sets, "data.sampling=reference", "data.batch_size=6",
                    "data.sort_by_length=true").feat_sampler.batches[0].tolist()
    t = _trainer(toy_sets, "data.sampling=reference", "data.batch_size=6", "data.sort_by_length=true")
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
def _assert_each_member_equals_its_run_alone(settings, members, toy_sets, updates: int) -> None:
    """Each (unstacked) member's weights equal those of its settings trained alone by GanTrainer."""
    train, text, phones = toy_sets
    for s, member in zip(settings, members):
        alone = GanTrainer(_cfg(*s), "/nonexistent/alone", train, text, phones)
        for _ in range(updates):
            alone.train_step()
        for (name, p), q in zip(alone.gan.named_parameters(), member.gan.parameters()):
            assert torch.allclose(p, q, rtol=0, atol=1e-5), (s, name, float((p - q).abs().max()))


def test_stacked_member_equals_the_run_alone_with_reference_options(toy_sets):
    """w2vu sweep's stacked update with every option above at the reference's value, clipping biting
    (clip norm 0.05) and weight decay on both models: each member equals its run alone (40 updates)."""
    torch.set_num_threads(1)
    train, text, phones = toy_sets
    ref = ("optim.grad_scale=per_utterance", "optim.clip_scope=both", "optim.decoupled_weight_decay=true",
           "loss.penalty_input=joined", "data.sampling=reference", "generator.special_outputs=4",
           "discriminator.padding=reference", "optim.clip_norm=0.05", "optim.weight_decay_g=0.01",
           "optim.weight_decay_d=0.1")
    settings = [(*ref, "trainer.seed=1"), (*ref, "trainer.seed=2", "optim.lr_g=0.001", "optim.weight_decay_d=0.3")]
    members = build_members([_cfg(*s) for s in settings], ["/nonexistent/a", "/nonexistent/b"], train, text, phones)
    stack = StackedTrainer(members)
    norms = []
    for _ in range(40):
        norms.append(stack.train_step().get("grad_norm_d"))
    stack.unstack()
    assert any(n is not None and float(n.max()) > 0.05 for n in norms)  # clipping bit
    _assert_each_member_equals_its_run_alone(settings, members, toy_sets, 40)


# -- 4. vocabulary: fairseq's specials as extra outputs ---------------------------------------------------
def test_output_symbols_by_hand():
    """fairseq's Dictionary order: <s> <pad> </s> <unk> first, then dict.phn.txt's symbols; pad is output 1."""
    assert output_symbols(["a", "<SIL>"]) == ["a", "<SIL>"]
    assert output_symbols(["a", "<SIL>"], 4) == ["<s>", "<pad>", "</s>", "<unk>", "a", "<SIL>"]
    assert output_symbols(["a"], 2)[PAD_INDEX] == "<pad>"
    with pytest.raises(ValueError, match="special_outputs"):
        output_symbols(["a"], 5)
    with pytest.raises(ValueError, match="<unk>"):
        output_symbols(["a", "<unk>"], 4)


def test_code_penalty_counts_the_special_outputs_by_hand(toy_sets):
    """Weights 0 and bias (-1e4 x 4 specials, 0 x 7 phones): every softmax is uniform over the 7 phones and 0 on
    the specials, so the perplexity is 7 and the code penalty (11 - 7) / 11 = 4/11 (num_vars 11, as the
    reference's 64); without the specials the same phones give (7 - 7) / 7 = 0. D sees 11 inputs."""
    t = _trainer(toy_sets, "generator.special_outputs=4", "generator.bias=true")
    assert t.phones[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and t.phones[4:] == toy_sets[2]
    assert t.gan.generator.proj.weight.shape[0] == 11 and t.gan.discriminator.num_phones == 11
    assert _trainer(toy_sets).gan.generator.proj.weight.shape[0] == 7  # the default: dict.phn.txt only
    for special, want in ((True, 4 / 11), (False, 0.0)):
        t = _trainer(toy_sets, "generator.bias=true", *(["generator.special_outputs=4"] if special else []))
        with torch.no_grad():
            t.gan.generator.proj.weight.zero_()
            t.gan.generator.proj.bias.copy_(torch.tensor([-1e4] * 4 * special + [0.0] * 7))
        stats = t.train_step()  # update 0: a G step
        assert float(stats["code_ppl"]) == pytest.approx(7.0, rel=1e-5)
        assert float(stats["code_pen"]) == pytest.approx(want, abs=1e-6)


def _special_run(tmp_path):
    """A 1-utterance corpus (segments e0 e1 e2, reference "a b") and a kernel-1 generator with 4 specials that
    maps e0 -> <pad> (output 1), e1 -> a (output 4), e2 -> b (output 5), saved as best.pt."""
    import numpy as np

    from toys import write_bigram_arpa

    feats, text = tmp_path / "feats", tmp_path / "text"
    feats.mkdir()
    text.mkdir()
    for split in ("train", "valid"):
        np.save(feats / f"{split}.npy", np.eye(3, dtype=np.float32))
        (feats / f"{split}.lengths").write_text("3\n")
        (feats / f"{split}.phn").write_text("a b\n")
    (text / "dict.phn.txt").write_text("a 2\nb 2\n<SIL> 2\n")
    sentences = [["<SIL>", "a", "b", "<SIL>"], ["a", "b"]]
    (text / "phones.txt").write_text("".join(" ".join(x) + "\n" for x in sentences))
    write_bigram_arpa(text / "lm.phones.4.arpa", sentences)
    cfg = _cfg("generator.special_outputs=4", "generator.kernel=1", "data.batch_size=1",
               f"data.features={feats}", f"data.text={text}")
    phones = ["a", "b", "<SIL>"]
    t = GanTrainer(cfg, tmp_path / "run", FeatureSet.from_dir(feats, "train"), TextSet(sentences, phones), phones,
                   valid=FeatureSet.from_dir(feats, "valid"),
                   lineage={"features": str(feats), "text": str(text)})
    w = torch.zeros(7, 3, 1)  # outputs <s> <pad> </s> <unk> a b <SIL>
    w[1, 0, 0] = w[4, 1, 0] = w[5, 2, 0] = 1.0
    with torch.no_grad():
        t.gan.generator.proj.weight.copy_(w)
    t.save("best.pt")
    return t, feats, text


def test_a_predicted_special_is_dropped_like_silence(tmp_path):
    """Output ids 1 4 5 (<pad> a b): validation drops the <pad> as it drops <SIL> (the reference's valid_step
    keeps only ids >= nspecial), so the hypothesis is "a b": 2 phones, PER 0, both phones used."""
    from wav2vec_u.train.selection import decode_ids

    t, _, _ = _special_run(tmp_path)
    assert decode_ids(t.gan.generator, t.valid) == [[1, 4, 5]]
    m = t.validate()
    assert m["valid_num_pred"] == 2 and m["valid_per"] == 0.0 and m["valid_vocab_usage"] == 1.0


def test_decode_and_select_read_a_checkpoint_with_special_outputs(tmp_path):
    """w2vu decode and w2vu select on that checkpoint: the generator is rebuilt with 7 outputs from the
    checkpoint alone, the Viterbi output is "a b" (the <pad> dropped) with PER 0."""
    import json

    from wav2vec_u.cli import main
    from wav2vec_u.train.checkpoint import load_generator
    from wav2vec_u.tokens import read_token_lines

    t, feats, text = _special_run(tmp_path)
    gen, symbols, cfg = load_generator(tmp_path / "run" / "best.pt")
    assert symbols == t.phones and gen.proj.weight.shape[0] == 7 and cfg.generator.special_outputs == 4
    out = tmp_path / "dec"
    assert main(["decode", str(tmp_path / "run" / "best.pt"), str(feats), str(out), "--text-dir", str(text),
                 "words=false", "--no-wandb"]) == 0
    assert read_token_lines(out / "valid.viterbi.phn") == [["a", "b"]]
    sel = tmp_path / "selection.json"
    assert main(["select", str(tmp_path / "run"), "--out", str(sel)]) == 0
    run = json.loads(sel.read_text())["runs"][0]
    assert run["per_not_used_for_selection"] == 0.0 and run["vocab_usage"] == 1.0


# -- 5. padding as D sees it -------------------------------------------------------------------------------
def test_real_text_is_one_hot_at_the_pad_output_by_hand():
    """Outputs <s> <pad> a b c (2 specials): tokens a b + padding -> rows e2, e3 and, at the padded position,
    e1 (the pad output; reference) or 0 (ours)."""
    tokens, mask = torch.tensor([[0, 1, -1]]), torch.tensor([[False, False, True]])
    e = torch.eye(5)
    ref = real_distributions(tokens, mask, 5, first_phone=2, pad_index=PAD_INDEX)
    assert torch.equal(ref[0], torch.stack([e[2], e[3], e[1]]))
    ours = real_distributions(tokens, mask, 5, first_phone=2)
    assert torch.equal(ours[0], torch.stack([e[2], e[3], torch.zeros(5)]))


@pytest.mark.parametrize("output", ["softmax", "straight_through"])
def test_generated_output_is_uniform_at_padding_by_hand(output):
    """Joined logits (ln 3, 0, 0) then padding: softmax (3/5, 1/5, 1/5) (or its one-hot argmax), then 1/3 each
    at the padded position (the softmax of the reference's zero logits there) or 0 (ours). The reference's
    joined length 3 adds one more uniform, padded position."""
    from wav2vec_u.models.config import GeneratorConfig

    joined = torch.tensor([[[math.log(3.0), 0.0, 0.0], [0.0, 0.0, 0.0]]])
    mask = torch.tensor([[False, True]])
    first = torch.tensor([0.6, 0.2, 0.2]) if output == "softmax" else torch.tensor([1.0, 0.0, 0.0])
    cfg = GeneratorConfig(output=output)
    ref = fake_distributions(joined, mask, cfg, "reference")
    assert torch.allclose(ref[0], torch.stack([first, torch.full((3,), 1 / 3)]))
    assert torch.allclose(fake_distributions(joined, mask, cfg)[0], torch.stack([first, torch.zeros(3)]))
    longer, longer_mask = reference_length(ref, mask, 3)
    assert torch.allclose(longer[0, 2], torch.full((3,), 1 / 3)) and longer_mask.tolist() == [[False, True, True]]
    assert reference_length(ref, mask, 2)[0] is ref


def test_padding_reference_needs_the_pad_output(toy_sets):
    with pytest.raises(ConfigError, match="special_outputs >= 2") as err:
        _trainer(toy_sets, "discriminator.padding=reference", "generator.special_outputs=1")
    assert err.value.key == "discriminator.padding"
    _trainer(toy_sets, "discriminator.padding=reference", "generator.special_outputs=2")


@pytest.mark.parametrize("static", [False, True])
def test_padding_reference_is_seen_by_the_gradient_penalty_only(toy_sets, static):
    """The D step with discriminator.padding=reference: D's scores (causal D, output masked at padding) equal the
    zero-padded ones exactly; the gradient penalty is the hand-checked function above on the one-hot-at-pad real
    text and the uniform-padded generated output, extended to the reference's joined length; and it differs from
    the zero-padded penalty."""
    from wav2vec_u.models.gan import Gan, discriminator_step_loss, generate
    from wav2vec_u.models.losses import gradient_penalty
    torch.set_num_threads(1)
    train, text, _ = toy_sets
    stats = {}
    # four short utterances where the one with the most runs is padded, so the reference's joined length is one
    # more than ours (asserted below); the 4 longest sentences: longer still, so the penalty's cut includes it
    feat_idx, text_idx = torch.tensor([6, 13, 12, 35]), torch.argsort(text.lengths, descending=True)[:BATCH]
    for padding in ("zeros", "reference"):
        cfg = _cfg("generator.special_outputs=4", f"discriminator.padding={padding}")
        torch.manual_seed(0)
        gan = Gan(train.dim, 11, cfg.generator, cfg.discriminator)
        with torch.no_grad():  # D's GELU well away from linear, where its input gradient depends on the input
            for p in gan.discriminator.parameters():
                p.mul_(8.0)
        x, xmask = train.batch(feat_idx, static=static)
        tokens, tmask = text.batch(text_idx, static=static)
        torch.manual_seed(1)
        _, stats[padding] = discriminator_step_loss(gan, x, xmask, tokens, tmask, cfg.loss, static_shape=static)
    for key in ("loss_dense_d", "loss_token_d"):
        assert float(stats["reference"][key]) == float(stats["zeros"][key]), key
    assert float(stats["reference"]["grad_pen"]) != pytest.approx(float(stats["zeros"]["grad_pen"]), rel=1e-4)
    torch.manual_seed(1)  # the same draws: dropout and join, then the penalty's alpha
    gen = generate(gan.generator, x, xmask, static)
    V = 11
    real = torch.eye(V)[(tokens + 4).masked_fill(tmask, PAD_INDEX)]  # one-hot, at <pad> where padded
    fake = torch.softmax(gen.joined.detach(), -1).masked_fill(gen.joined_mask[..., None], 1 / V)
    R = int(reference_runs(gen.joined_mask, gen.padding_mask))
    if not static:
        assert R == fake.shape[1] + 1 and tokens.shape[1] > R
        fake = torch.cat([fake, torch.full((BATCH, 1, V), 1 / V)], 1)
    gp = gradient_penalty(gan.discriminator, real, fake)
    assert float(stats["reference"]["grad_pen"]) == pytest.approx(float(gp.detach()), rel=1e-6)


def test_trainer_with_the_reference_vocabulary_and_padding(toy_sets):
    """Both options through the trainer, with straight-through outputs and label smoothing too: 6 updates."""
    t = _trainer(toy_sets, "generator.special_outputs=4", "discriminator.padding=reference",
                 "generator.output=straight_through", "loss.real_label_smoothing=0.1", "loss.penalty_input=joined")
    for _ in range(6):
        stats = t.train_step()
        assert all(torch.isfinite(v).all() for v in stats.values())


def test_stacked_member_equals_the_run_alone_with_reference_padding(toy_sets):
    """w2vu sweep with generator.special_outputs=4 and discriminator.padding=reference, members whose batches
    have different lengths (data.sampling=epoch, so each member's reference joined length and gradient-penalty
    cut are its own): each member equals its run alone after 30 updates."""
    torch.set_num_threads(1)
    train, text, phones = toy_sets
    both = ("generator.special_outputs=4", "discriminator.padding=reference")
    settings = [(*both, "trainer.seed=1"), (*both, "trainer.seed=2", "loss.gradient_penalty=2.0")]
    members = build_members([_cfg(*s) for s in settings], ["/nonexistent/a", "/nonexistent/b"], train, text, phones)
    stack = StackedTrainer(members)
    for _ in range(30):
        stack.train_step()
    stack.unstack()
    _assert_each_member_equals_its_run_alone(settings, members, toy_sets, 30)


def test_stacked_refuses_a_non_causal_discriminator(toy_sets):
    """The stack pads every member to the longest member's batch; a non-causal D's second layer reads the first
    layer's outputs there, where the run alone reads zeros (measured: 30 updates off by up to 6e-3)."""
    train, text, phones = toy_sets
    members = build_members([_cfg("discriminator.causal=false", f"trainer.seed={i}") for i in (1, 2)],
                            ["/nonexistent/a", "/nonexistent/b"], train, text, phones)
    with pytest.raises(ValueError, match="causal=false"):
        StackedTrainer(members)


def test_w2vu_yaml_sets_the_reference_behaviour():
    """configs/gan/w2vu.yaml claims the reference's settings: it sets each option to the reference's value."""
    from wav2vec_u.config import load_config
    from wav2vec_u.train.train_command import DEFAULT_CONFIG

    cfg = load_config(GanConfig, DEFAULT_CONFIG, [])
    o = cfg.optim
    assert (o.grad_scale, o.clip_scope, o.decoupled_weight_decay) == ("per_utterance", "both", True)
    assert cfg.loss.penalty_input == "joined"
    assert cfg.generator.special_outputs == 4 and cfg.discriminator.padding == "reference"
