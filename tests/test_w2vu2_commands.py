"""wav2vec-U 2.0 end to end through the commands, on 24 synthesised utterances: ``prepare-audio`` in 2.0
mode, ``train-gan --config configs/gan/w2vu2.yaml`` (two seeds, a few updates), then ``select``,
``decode``, ``self-train`` and ``transcribe`` on the 2.0 checkpoints, unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wav2vec_u.audio.features_io import load_features
from wav2vec_u.cli import main
from wav2vec_u.io import atomic_write_text, read_json, resource_path
from wav2vec_u.tokens import read_token_lines
from toys import write_audio_corpus, write_bigram_arpa

PHONES = ["a", "b", "c", "d", "e", "f"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("w2vu2_e2e")
    (root / "corpus").mkdir()
    write_audio_corpus(root / "corpus", 24, num_valid=6)
    assert main(["prepare-audio", str(root / "corpus"), str(root / "prep"), "--config",
                 str(resource_path("configs", "features", "prepare_w2vu2_mfcc.yaml")),
                 "targets.k=8", "targets.niter=5", "targets.nredo=1", "--no-wandb", "--no-progress"]) == 0
    rng = np.random.default_rng(0)
    sents = [[str(p) for p in rng.choice(PHONES, size=int(rng.integers(4, 9)))] for _ in range(60)]
    text = root / "text"
    text.mkdir()
    atomic_write_text(text / "phones.txt", "".join(" ".join(s) + "\n" for s in sents))
    atomic_write_text(text / "dict.phn.txt", "".join(f"{p} 10\n" for p in PHONES))
    write_bigram_arpa(text / "lm.phones.4.arpa", sents)
    for seed in (1, 2):
        assert main(["train-gan", str(root / f"gan{seed}"), "generator.aux_classes=8", "data.batch_size=6",
                     "discriminator.dim=8", "trainer.max_updates=4", "trainer.validate_every=2",
                     "trainer.save_every=2", f"trainer.seed={seed}", "trainer.progress=false",
                     "--features", str(root / "prep" / "frames"), "--text", str(text),
                     "--config", str(resource_path("configs", "gan", "w2vu2.yaml")), "--no-wandb"]) == 0
    return root


def test_select_and_decode_a_2_0_checkpoint(prepared, tmp_path):
    root = prepared
    sel = tmp_path / "sel.json"
    assert main(["select", str(root / "gan1"), str(root / "gan2"), "--out", str(sel)]) == 0
    chosen = read_json(sel)["chosen"]
    assert chosen in (str(root / "gan1" / "best.pt"), str(root / "gan2" / "best.pt"))
    assert main(["decode", chosen, str(root / "prep" / "frames"), str(tmp_path / "dec"), "words=false"]) == 0
    hyps = read_token_lines(tmp_path / "dec" / "valid.viterbi.phn")
    assert len(hyps) == 6 and all(set(h) <= set(PHONES) for h in hyps)
    # timestamps: a strided generator's position t covers frames [3t, 3t + 3) at 50 Hz = 60 ms
    _, lengths = load_features(root / "prep" / "frames", "valid")
    rows = [json.loads(line) for line in (tmp_path / "dec" / "valid.timestamps.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    for row, n in zip(rows, lengths):
        ends = [p[2] for p in row["phones"]]
        assert all(e <= n / 50.0 + 1e-6 for e in ends)
        for _, start, end in row["phones"]:
            assert abs(round(start / 0.06) * 0.06 - start) < 1e-6 or abs(start - n / 50.0) < 1e-6


def test_self_train_and_transcribe_from_a_2_0_checkpoint(prepared, tmp_path):
    root = prepared
    ckpt = root / "gan1" / "best.pt"
    assert main(["self-train", str(root / "prep" / "frames"), str(tmp_path / "st"), "ctc.epochs=1",
                 "ctc.min_updates=0", "decode_words=false", "--checkpoint", str(ckpt),
                 "--text-dir", str(root / "text"), "--no-wandb"]) == 0
    assert (tmp_path / "st" / "ctc.pt").is_file()
    assert len(read_token_lines(tmp_path / "st" / "train.st.phn")) == 18
    # transcribe: the GAN's lineage names its frame folder, whose meta.json names the extractor
    wav = root / "corpus" / "utt020.wav"
    assert main(["transcribe", str(ckpt), str(wav), "--out", str(tmp_path / "tr"), "--no-progress"]) == 0
    assert (tmp_path / "tr" / "utt020.TextGrid").is_file() and (tmp_path / "tr" / "utt020.csv").is_file()
