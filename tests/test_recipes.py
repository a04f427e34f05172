"""The public-corpus recipes run as written: each run.sh end to end on a fabricated tree in its
corpus's exact layout, on CPU with MFCC and a tiny GAN (slow: about a minute each), and the
pieces the recipes lean on (the TIMIT text config, the demo's GAN settings as a plain config,
train-gan --threads, the results table)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from toys import librispeech_tree, mls_tree, timit_tree
from wav2vec_u.cli import main
from wav2vec_u.config import load_config, to_dict
from wav2vec_u.io import read_json
from wav2vec_u.tokens import read_token_lines
from wav2vec_u.train.config import GanConfig

REPO = Path(__file__).resolve().parents[1]
TINY = ["--extractor", "mfcc", "--device", "cpu", "--seeds", "0",
        "--segments-args", "pca.dim=0 kmeans.k=12 kmeans.niter=5 kmeans.nredo=1",
        "--gan-config", "configs/gan/cpu.yaml",
        "--gan-args", "trainer.max_updates=20 trainer.validate_every=10 trainer.save_every=10 trainer.progress=false"]


def run_recipe(name: str, args: list[str], tmp_path: Path) -> str:
    env = {**os.environ, "W2VU": f"{sys.executable} -m wav2vec_u.cli", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run(["bash", str(REPO / "recipes" / name / "run.sh"), *args], env=env, capture_output=True,
                       text=True, timeout=900)
    log = p.stdout + p.stderr
    (tmp_path / f"{name}.log").write_text(log)
    assert p.returncode == 0, log[-4000:]
    stages = [int(s) for s in re.findall(r"\] stage (\d+):", log)]
    assert stages == sorted(stages) and stages, log[-2000:]
    return log


def table_rows(results: Path) -> dict[str, float]:
    r = read_json(results / "results.json")
    return {row["system"]: row["rate"] for row in r["per"] + r["wer"]}


@pytest.mark.slow
def test_timit_recipe_end_to_end(tmp_path):
    root = tmp_path / "TIMIT"
    timit_tree(root, {"TRAIN": [("DR1", "FCJF0"), ("DR2", "MDPK0"), ("DR3", "FAEM0"), ("DR4", "MABC0")],
                      "TEST": [("DR1", "FELC0"), ("DR1", "FADG0"), ("DR3", "MXYZ0")]}, utts=4)
    (root / ".DS_Store").write_bytes(b"x")
    out = tmp_path / "run"
    log = run_recipe("timit", ["--timit", str(root), "--out", str(out), *TINY,
                               "--baselines-args", "supervised_epochs=2"], tmp_path)
    assert "stage 8" in log
    for split in ("valid", "test", "test_full"):
        rows = table_rows(out / "results" / split)
        assert {"chance: most frequent phone", "GAN (Viterbi)"} <= set(rows) and all(v is not None for v in rows.values())
    assert "## Phone error rate (test)" in (out / "results" / "test" / "results.md").read_text()
    # the phone text kept TIMIT's own "sil" and inserted no <SIL>
    phones = (out / "text" / "phones.txt").read_text()
    assert "sil" in phones and "<SIL>" not in phones
    assert len(phones.splitlines()) == 16  # every training utterance (matched), none deduplicated


@pytest.mark.slow
def test_librispeech_recipe_end_to_end(tmp_path):
    root = tmp_path / "LibriSpeech"
    librispeech_tree(root, {"train-clean-100": 12, "dev-other": 4, "test-other": 4})
    lm_text = tmp_path / "lm.txt"
    lm_text.write_text("\n".join((REPO / "data" / "sentences" / "en.txt").read_text().splitlines()[:400]) + "\n")
    out = tmp_path / "run"
    run_recipe("librispeech", ["--librispeech", str(root), "--lm-text", str(lm_text), "--out", str(out),
                               "--train", "train-clean-100", "--text-config", "configs/text/w2vu.yaml", *TINY,
                               "--st-args", "ctc.epochs=1 ctc.min_updates=0",
                               "--decode-args", "tune.lm_weights=[0.0,1.0] tune.word_scores=[0.0]"], tmp_path)
    rows = table_rows(out / "results")
    assert {"GAN (Viterbi)", "GAN + LM (lexicon + word 4-gram)", "self-trained + LM (lexicon + word 4-gram)",
            "chance: k-means clusters -> phones by frequency rank"} <= set(rows)
    scores = read_json(out / "decode" / "test.scores.json")
    assert scores["words"]["tune"]["split"] == "valid" and scores["words"]["ref_oov"]["tokens"] > 0


@pytest.mark.slow
def test_mls_recipe_end_to_end_in_spanish(tmp_path):
    sentences = (REPO / "data" / "sentences" / "es.txt").read_text().splitlines()[:400]
    from wav2vec_u.text.normalize import normalize_line

    vocab = sorted({w for s in sentences[:40] for w in normalize_line(s).split() if w.isalpha()})[:40]
    root = mls_tree(tmp_path / "mls_spanish", {"train": 12, "dev": 4, "test": 4}, vocab=vocab, voice="es")
    lm_text = tmp_path / "lm.txt"
    lm_text.write_text("\n".join(sentences) + "\n")
    out = tmp_path / "run"
    run_recipe("mls", ["--mls", str(root), "--lang", "es", "--lm-text", str(lm_text), "--out", str(out),
                       "--text-config", "configs/text/w2vu.yaml", *TINY, "--stop-stage", "10",
                       "--st-args", "ctc.epochs=1 ctc.min_updates=0",
                       "--decode-args", "tune.lm_weights=[0.0,1.0] tune.word_scores=[0.0]"], tmp_path)
    assert "ɾ" in (out / "text" / "phones.txt").read_text()  # espeak-ng's Spanish tap: phonemised as Spanish
    refs = read_token_lines(out / "corpus" / "test.phn")
    assert len(refs) == 4 and all(refs)
    assert "GAN (Viterbi)" in table_rows(out / "results")


def test_recipes_call_only_w2vu():
    """STYLE.md "Recipes": no logic beyond calling w2vu (no python, awk or perl in a run.sh)."""
    for name in ("timit", "librispeech", "mls"):
        text = (REPO / "recipes" / name / "run.sh").read_text()
        assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
        assert "--stage)" in text and "--stop-stage)" in text
        for tool in ("python", "awk", "perl", "sox ", "ffmpeg"):
            assert tool not in text, (name, tool)
        readme = (REPO / "recipes" / name / "README.md").read_text()
        assert "| stage | command | output |" in readme and "paper" in readme.lower()


def test_gan_cpu_config_is_the_demo_section():
    """configs/gan/cpu.yaml is the demo's train.gan section as a plain GanConfig: the same values."""
    plain = load_config(GanConfig, REPO / "configs" / "gan" / "cpu.yaml")
    demo = load_config(GanConfig, f"{REPO / 'configs' / 'demo' / 'en.yaml'}#train.gan")
    assert to_dict(plain) == to_dict(demo)


def test_train_gan_threads(tmp_path, monkeypatch):
    import torch

    import wav2vec_u.train.run as train_run

    seen = {}

    def fake_train(cfg, outdir, wandb=None):
        seen["threads"] = torch.get_num_threads()
        return {"status": "done", "step": 0, "best_weighted_lm_ppl": float("nan")}

    monkeypatch.setattr(train_run, "train_gan", fake_train)
    before = torch.get_num_threads()
    try:
        assert main(["train-gan", str(tmp_path / "g"), "--features", "f", "--text", "t", "--threads", "1"]) == 0
        assert seen["threads"] == 1
        assert main(["train-gan", str(tmp_path / "g"), "--features", "f", "--text", "t", "--threads", "0"]) == 2
    finally:
        torch.set_num_threads(before)
