"""``w2vu decipher``: frame features + unpaired phone text -> a phone recogniser, without labels.

A toy language (tests/toys.py: 12 phones, a sparse bigram) spoken as frames (4-8 noisy frames per
phone, noise as large as the phone means' spread, silence at both ends): change-point segments, k-means units, statistics matching, the
decipherment HMM, labels, the label-free choice of seed, and the model through ``w2vu decode``.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from toys import make_toy, write_frame_toy
from wav2vec_u.cli import main
from wav2vec_u.decode.decode import load_acoustic_model
from wav2vec_u.decipher.model import load_decipher_model
from wav2vec_u.metrics import error_rate
from wav2vec_u.tokens import read_token_lines

# min_gap=2: the toy's phones last 4-8 frames (the demo's default of 1 is for 7-8-frame phones with fast onsets)
OVERRIDES = ["seeds=[1,2,3]", "refine=2", "workers=1", "units.k=24", "units.segmenter.min_gap=2", "match.steps=200",
             "match.restarts=4", "hmm.iters=4", "hmm.self_loop=0.3", "units.min_gap_candidates=[]",
             "units.self_loop_candidates=[]"]  # one segmentation (the candidates' tests set their own)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("decipher")
    toy = make_toy(num_phones=12, dim=8, num_train=200, num_valid=60, num_text=3000, seed=5)
    write_frame_toy(toy, root / "feats", root / "text", noise=1.0)
    t0 = time.time()
    rc = main(["decipher", str(root / "feats"), str(root / "out"), "--text-dir", str(root / "text"),
               "--ref-dir", str(root / "feats"), *OVERRIDES, "--no-wandb"])
    return root, rc, time.time() - t0


def test_decipher_learns_the_toy_language_without_labels(toy_run):
    root, rc, seconds = toy_run
    assert rc == 0
    refs = read_token_lines(root / "feats" / "valid.phn")
    learned = error_rate(refs, read_token_lines(root / "out" / "valid.hyp")).rate
    # baseline: the text's most frequent phone repeated to the reference length
    # (measured, one seed alone: 4.6% after EM, its table before EM 10.7%; baseline 84.6%)
    text = [p for s in read_token_lines(root / "text" / "phones.txt") for p in s if p != "<SIL>"]
    top = max(set(text), key=text.count)
    base = error_rate(refs, [[top] * len(r) for r in refs]).rate
    print(f"decipher valid PER {learned:.3f}, most frequent phone {base:.3f} ({seconds:.0f} s)")
    assert base > 0.8
    assert learned < base - 0.5, (learned, base)


def test_outputs_describe_the_seeds_and_the_model(toy_run):
    root, _, _ = toy_run
    out = root / "out"
    sel = json.loads((out / "selection.json").read_text())
    assert sorted(r["seed"] for r in sel["seeds"]) == [1, 2, 3]
    assert sel["refined_by"] == "match_loss" and sel["members_by"] == "weighted_lm_ppl"
    losses = [r["match_loss"] for r in sel["seeds"]]
    assert losses == sorted(losses)     # rows in the order of the label-free criterion
    # refine=2: the two lowest matching losses get EM; members are those within 1.2x the best LM metric
    assert [r["refined"] for r in sel["seeds"]] == [True, True, False]
    refined = sel["seeds"][:2]
    best = min(refined, key=lambda r: r["weighted_lm_ppl"])
    assert best["member"] and sel["members"] == [r["seed"] for r in refined if r["member"]]
    assert all(r["member"] == (r["weighted_lm_ppl"] <= 1.2 * best["weighted_lm_ppl"]) for r in refined)
    # references reach the record only after the model is made: every table, each refined seed, the model
    assert all("valid_table_per" in r for r in sel["seeds"]) and all("valid_per" in r for r in refined)
    assert "valid_per" in sel["model"] and "weighted_lm_ppl" in sel["model"]
    for name in ("decipher.pt", "train.hyp", "valid.table.hyp", "decipher.yaml", "meta.json", "decipher.log"):
        assert (out / name).is_file(), name
    model = load_decipher_model(out / "decipher.pt")
    assert len(model.members) == len(sel["members"])
    assert model.members[0].centroids.shape == (24, 8) and model.members[0].hmm.emissions.shape == (13, 24)
    # the model's own labels are the run's labels: one segmentation, the members' posteriors combined
    feats = np.load(root / "feats" / "valid.npy")
    n = int((root / "feats" / "valid.lengths").read_text().split()[0])
    assert model.labels([feats[:n]])[0] == read_token_lines(out / "valid.hyp")[0]


def test_the_model_is_no_worse_than_its_seeds_on_average(toy_run):
    root, _, _ = toy_run
    sel = json.loads((root / "out" / "selection.json").read_text())
    alone = [r["valid_per"] for r in sel["seeds"] if r["member"]]
    print(f"members alone {alone}, together {sel['model']['valid_per']:.3f}")
    assert sel["model"]["valid_per"] <= sum(alone) / len(alone) + 0.01


def test_decode_reads_a_decipher_model_with_segment_times(toy_run, tmp_path):
    root, _, _ = toy_run
    out = root / "out"
    am = load_acoustic_model(out / "decipher.pt")
    assert am.kind == "decipher" and am.segmented is not None
    assert main(["decode", str(out / "decipher.pt"), str(root / "feats"), str(tmp_path / "dec"), "--no-wandb"]) == 0
    # decode's phones are the decipher run's own labels (the same max-posterior read-out)
    assert (tmp_path / "dec" / "valid.viterbi.phn").read_text() == (out / "valid.hyp").read_text()
    lengths = [int(x) for x in (root / "feats" / "valid.lengths").read_text().split()]
    for line, n in zip((tmp_path / "dec" / "valid.timestamps.jsonl").read_text().splitlines(), lengths):
        times = [t for _, a, b in json.loads(line)["phones"] for t in (a, b)]
        assert times == sorted(times) and (not times or (times[0] >= 0 and times[-1] <= n))


def test_rerun_is_cached_and_a_changed_option_recomputes(toy_run):
    root, _, _ = toy_run
    args = ["decipher", str(root / "feats"), str(root / "out"), "--text-dir", str(root / "text"), *OVERRIDES,
            "--no-wandb"]
    before = (root / "out" / "decipher.pt").stat().st_mtime_ns
    t0 = time.time()
    assert main(args) == 0
    assert time.time() - t0 < 5 and (root / "out" / "decipher.pt").stat().st_mtime_ns == before


def test_missing_inputs_name_the_file_and_the_command(tmp_path, capsys):
    toy = make_toy(num_phones=6, dim=4, num_train=10, num_valid=4, num_text=50, seed=1)
    write_frame_toy(toy, tmp_path / "feats", tmp_path / "text")
    (tmp_path / "text" / "phones.txt").unlink()
    args = ["decipher", str(tmp_path / "feats"), str(tmp_path / "out"), "--text-dir", str(tmp_path / "text"),
            "--no-wandb"]
    assert main(args) == 2
    assert "phones.txt (w2vu prepare-text writes it)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()   # nothing is written before the inputs are checked
    (tmp_path / "feats" / "valid.npy").unlink()
    assert main(args) == 2
    assert "valid.npy (w2vu extract" in capsys.readouterr().err


def test_min_gap_candidates_each_get_the_seeds_and_the_lower_metric_is_kept(toy_run, tmp_path):
    """``units.min_gap_candidates``: each segmentation gets every seed; with ``units.segmentation_by=match_loss``
    the model is the one whose seeds reach the lowest matching loss, recorded in selection.json; the model
    segments as it did."""
    root, _, _ = toy_run
    args = ["decipher", str(root / "feats"), str(tmp_path / "out"), "--text-dir", str(root / "text"),
            *OVERRIDES, "seeds=[1]", "refine=1", "units.min_gap_candidates=[1,3]", "units.self_loop_candidates=[0.3,0.1]",
            "units.segmentation_by=match_loss", "--no-wandb"]
    assert main(args) == 0
    sel = json.loads((tmp_path / "out" / "selection.json").read_text())
    tried = sel["segmentations"]
    assert [(t["min_gap"], t["self_loop"]) for t in tried] == [(1, 0.3), (3, 0.1)]
    assert tried[0]["segments"] > tried[1]["segments"]          # a smaller min_gap cuts more segments
    assert sel["segmentation_by"] == "match_loss"
    assert sel["self_train_dir"] is None and not (tmp_path / "out" / "segmentations").exists()
    best = min(tried, key=lambda t: t["best_match_loss"])
    assert all(t["best_weighted_lm_ppl"] > 0 for t in tried)    # both criteria are recorded
    assert [t["chosen"] for t in tried] == [t is best for t in tried]
    assert sel["min_gap"] == best["min_gap"]
    model = load_decipher_model(tmp_path / "out" / "decipher.pt")
    assert model.segmenter.min_gap == best["min_gap"]
    assert all(m.hmm.self_loop == best["self_loop"] for m in model.members)
    assert [r["seed"] for r in sel["seeds"]] == [1] and sel["seeds"][0]["member"]


def test_segmentations_are_chosen_by_self_training_on_their_labels(toy_run, tmp_path):
    """The default rule (``units.segmentation_by=self_train``): a CTC model self-trained on each segmentation's
    labels reads the same frames, so their phone-LM metrics compare; the lower one is kept. On the toy the
    coarse segmentation (min_gap 8: phones last 4-8 frames, so most segments merge two phones) gives worse
    labels, and the rule must see it without references."""
    root, _, _ = toy_run
    out = tmp_path / "out"
    st_cfg = tmp_path / "st.yaml"   # --self-train-config: the scoring self-training, from a section of a file
    st_cfg.write_text("self_train:\n  decode_words: false\n  ctc:\n    epochs: 4\n    min_updates: 0\n")
    args = ["decipher", str(root / "feats"), str(out), "--text-dir", str(root / "text"), *OVERRIDES, "seeds=[1]",
            "refine=1", "units.min_gap_candidates=[2,8]", "units.self_loop_candidates=[0.3,0.1]",
            "--self-train-config", f"{st_cfg}#self_train", "--no-wandb"]
    assert main(args) == 0
    sel = json.loads((out / "selection.json").read_text())
    tried = sel["segmentations"]
    assert sel["segmentation_by"] == "self_train"
    scores = [t["self_train_weighted_lm_ppl"] for t in tried]
    assert all(s > 0 for s in scores), scores
    assert [t["chosen"] for t in tried] == [s == min(scores) for s in scores]
    # references read only now: each candidate's self-trained model's PER (its history prints nothing else)
    pers = []
    for t in tried:
        hist = json.loads((out / "segmentations" / f"min_gap-{t['min_gap']}" / "self_train" / "history.json").read_text())
        pers.append(hist["history"][-1]["valid_per"])
    print(f"self-trained valid PER {pers}, metric {scores}")
    assert tried[0]["chosen"] and pers[0] < pers[1] - 0.1, (pers, scores)
    assert sel["self_train_dir"] == tried[0]["self_train_dir"] == "segmentations/min_gap-2/self_train"
    assert "epochs: 4" in (out / "segmentations" / "min_gap-2" / "self_train" / "self-train.yaml").read_text()
    assert read_token_lines(out / "train.hyp") == read_token_lines(out / "segmentations" / "min_gap-2" / "train.hyp")


def test_self_loop_candidates_must_pair_with_the_min_gaps(toy_run, tmp_path, capsys):
    root, _, _ = toy_run
    args = ["decipher", str(root / "feats"), str(tmp_path / "out"), "--text-dir", str(root / "text"),
            "units.min_gap_candidates=[1,2]", "units.self_loop_candidates=[0.3]", "--no-wandb"]
    assert main(args) == 2
    assert "one value per units.min_gap_candidates" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
