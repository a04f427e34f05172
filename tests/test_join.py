"""The vectorised join against a naive per-utterance loop, in training and evaluation modes."""

import torch

from wav2vec_u.models.join import join_segments


def naive_runs(logits, length):
    """[(start, end)] of runs of equal argmax over the first ``length`` positions."""
    preds = logits[:length].argmax(-1).tolist()
    runs, s = [], 0
    for t in range(1, length + 1):
        if t == length or preds[t] != preds[s]:
            runs.append((s, t))
            s = t
    return runs


def random_batch(seed, B=7, T=13, V=3):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    mask = torch.arange(T)[None] >= lengths[:, None]
    return logits, mask, lengths


def test_eval_join_matches_naive_mean():
    for seed in range(20):
        logits, mask, lengths = random_batch(seed)
        joined, jmask = join_segments(logits, mask, training=False)
        for b in range(len(lengths)):
            runs = naive_runs(logits[b], int(lengths[b]))
            assert int((~jmask[b]).sum()) == len(runs)
            for r, (s, e) in enumerate(runs):
                assert torch.allclose(joined[b, r], logits[b, s:e].mean(0), atol=1e-6)
            assert torch.all(joined[b, len(runs):] == 0)
        assert joined.shape[1] == max(len(naive_runs(logits[b], int(lengths[b]))) for b in range(len(lengths)))


def test_train_join_keeps_one_member_of_each_run():
    for seed in range(20):
        logits, mask, lengths = random_batch(seed)
        joined, jmask = join_segments(logits, mask, training=True)
        for b in range(len(lengths)):
            runs = naive_runs(logits[b], int(lengths[b]))
            assert int((~jmask[b]).sum()) == len(runs)
            for r, (s, e) in enumerate(runs):
                members = logits[b, s:e]
                assert (members == joined[b, r]).all(-1).any(), (seed, b, r)


def test_train_join_picks_every_position_of_a_run():
    # one run of length 4: over many draws each position is chosen, roughly uniformly
    logits = torch.tensor([[[5.0, 0], [4.0, 0], [3.0, 0], [2.0, 0], [0, 1.0]]])
    mask = torch.zeros(1, 5, dtype=torch.bool)
    torch.manual_seed(0)
    counts = torch.zeros(4)
    for _ in range(800):
        joined, _ = join_segments(logits, mask, training=True)
        counts[int(4 - joined[0, 0, 0].item() + 1) - 1] += 1
        assert joined[0, 1].tolist() == [0.0, 1.0]
    assert (counts > 120).all(), counts


def test_join_gradients_and_static_shape():
    logits, mask, lengths = random_batch(3)
    logits.requires_grad_(True)
    joined, jmask = join_segments(logits, mask, training=False)
    joined.sum().backward()
    # eval join averages: every unpadded position gets gradient, padding none
    assert torch.all(logits.grad[mask] == 0)
    assert torch.all(logits.grad[~mask].abs() > 0)
    j2, m2 = join_segments(logits.detach(), mask, training=False, static_shape=True)
    assert j2.shape[1] == logits.shape[1]
    R = joined.shape[1]
    assert torch.allclose(j2[:, :R], joined.detach()) and torch.all(m2[:, :R] == jmask) and m2[:, R:].all()
