"""Unsupervised selection: weighted_lm_ppl by hand, Eqs. 5-6 by hand, and `w2vu select` end to end."""

import json
import math

import numpy as np
import pytest
import torch

from wav2vec_u.cli import main
from wav2vec_u.config import apply_overrides, from_dict
from wav2vec_u.train.config import GanConfig
from wav2vec_u.train.data import FeatureSet, TextSet
from wav2vec_u.train.selection import RunScore, lm_score, load_lm, select_runs
from toys import make_toy, write_toy
from wav2vec_u.train.trainer import GanTrainer

UNIGRAM_ARPA = """
\\data\\
ngram 1=4
ngram 2=1

\\1-grams:
-99\t<s>
{a}\ta
{b}\tb\t0
{b}\t</s>

\\2-grams:
-1\tb b

\\end\\
""".format(a=math.log10(0.5), b=math.log10(0.25))


def test_weighted_lm_ppl_by_hand(tmp_path):
    (tmp_path / "lm.arpa").write_text(UNIGRAM_ARPA)
    lm = load_lm(tmp_path / "lm.arpa")
    s = lm_score([["a", "b"], ["a"]], lm, vocab=["a", "b", "c"])
    # (KenLM needs a bigram section; "b b" never occurs below) log10 p = log10(.5 .25 .25) + log10(.5 .25) = log10(1/256); 3 phones + 2 sentence ends
    assert s.log10_prob == pytest.approx(math.log10(1 / 256), abs=1e-4)
    assert s.ppl == pytest.approx(256 ** (1 / 5), rel=1e-4)
    assert s.vocab_usage == pytest.approx(2 / 3)
    assert s.weighted_ppl == pytest.approx(256 ** (1 / 5) / (2 / 3) ** 2, rel=1e-4)
    assert s.nll == pytest.approx(math.log(256) / 5, rel=1e-4)
    assert math.isinf(lm_score([[]], lm, vocab=["a"]).weighted_ppl)  # nothing predicted


def test_cross_run_selection_by_hand():
    a = RunScore("a", nll=2.0, vocab_usage=0.5, log_prob=-100)  # nll - log U = 2.693
    b = RunScore("b", nll=2.2, vocab_usage=1.0, log_prob=-120)  # 2.2: the anchor
    c = RunScore("c", nll=1.9, vocab_usage=0.3, log_prob=-50)   # 3.104
    chosen, anchor, kept = select_runs([a, b, c])
    assert anchor is b and kept == [b] and chosen is b  # a: 2.0 > 2.2 - log 2 + log 1.2 = 1.689
    d = RunScore("d", nll=2.3, vocab_usage=1.0, log_prob=-110)  # within log 1.2 of the anchor
    chosen, anchor, kept = select_runs([a, b, c, d])
    assert anchor is b and kept == [b, d] and chosen is d  # higher log-probability wins
    with pytest.raises(ValueError):
        select_runs([RunScore("e", nll=math.inf, vocab_usage=0.0, log_prob=0.0)])


def test_select_command_prefers_the_deciphering_run(tmp_path, capsys):
    toy = make_toy(num_phones=6, dim=16, noise=0.3, num_train=20, num_valid=30, num_text=300, seed=5)
    write_toy(toy, tmp_path / "feats", tmp_path / "text")
    cfg = from_dict(GanConfig, apply_overrides({}, [f"data.features={tmp_path / 'feats'}",
                                                    f"data.text={tmp_path / 'text'}", "discriminator.dim=8"]))
    train = FeatureSet.from_dir(tmp_path / "feats", "train")
    text = TextSet.from_file(tmp_path / "text" / "phones.txt", toy.phones)
    lineage = {"features": str(tmp_path / "feats"), "text": str(tmp_path / "text")}
    # a generator that deciphers by construction (each phone's mean feature as its weights on the
    # current-segment tap) and one at its random initialisation
    good = GanTrainer(cfg, tmp_path / "good", train, text, toy.phones, lineage=lineage)
    centroid = np.stack([toy.train.feats[toy.train.labels == k].mean(0) for k in range(len(toy.phones))])
    with torch.no_grad():
        w = torch.zeros_like(good.gan.generator.proj.weight)  # (V, D, kernel 4): tap 2 = segment t
        w[:, :, 2] = torch.from_numpy(centroid) * 3
        good.gan.generator.proj.weight.copy_(w)
    good.save("best.pt")
    bad = GanTrainer(cfg, tmp_path / "bad", train, text, toy.phones, lineage=lineage)
    bad.save("best.pt")
    out = tmp_path / "selection.json"
    assert main(["select", str(tmp_path / "bad"), str(tmp_path / "good"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["chosen"].endswith("good/best.pt"), report
    per = {r["checkpoint"]: r["per_not_used_for_selection"] for r in report["runs"]}
    assert per[str(tmp_path / "good" / "best.pt")] < 0.5 < per[str(tmp_path / "bad" / "best.pt")]
    assert "chosen:" in capsys.readouterr().out

