"""Fine-tuning a Hugging Face encoder with a CTC head (wav2vec_u/self_train/hf.py), offline.

The "pretrained" encoder is a tiny random Wav2Vec2 (2 blocks, 32 wide, 4-layer conv stack with
wav2vec 2.0's 320-sample stride, i.e. 50 frames/s) saved with save_pretrained. The toy audio is
a few tones per utterance, one frequency per "phone", so the labels are learnable from the
waveform alone.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from wav2vec_u.demo.baselines import most_frequent_phone_hyps  # noqa: E402
from wav2vec_u.models import hf_ctc  # noqa: E402
from wav2vec_u.models.hf_ctc import (HfCtcConfig, build_hf_ctc, hf_ctc_decode, hf_ctc_logits, load_hf_ctc,  # noqa: E402
                                     save_hf_ctc)
from wav2vec_u.audio.manifest import split_audio  # noqa: E402
from wav2vec_u.self_train.hf import make_batches, train_hf_ctc, tri_stage_lr  # noqa: E402
from wav2vec_u.metrics import error_rate  # noqa: E402

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            conv_dim=(32, 32, 32, 32), conv_stride=(5, 4, 4, 4), conv_kernel=(10, 4, 4, 4),
            num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4,
            layerdrop=0.0, mask_time_prob=0.0, mask_time_length=2)  # 2-frame masks: the toy utterances are short
PHONES = ["a", "b", "c", "d", "e"]
FREQ = {"a": 500, "b": 1100, "c": 2000, "d": 3300, "e": 5000}  # Hz
VOCAB = ["<SIL>", *PHONES]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf") / "tiny-w2v2"
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**TINY)).save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True, "sampling_rate": 16000}))
    return path


def tone_utterance(rng) -> tuple[np.ndarray, list[str]]:
    """3-5 phones, no two equal neighbours; each 50-100 ms of its tone (5 ms ramps), random phase."""
    seq = [str(rng.choice(PHONES))]
    while len(seq) < rng.integers(3, 6):
        q = str(rng.choice(PHONES))
        if q != seq[-1]:
            seq.append(q)
    parts = []
    for p in seq:
        n = int(rng.integers(800, 1600))
        env = np.minimum(1.0, np.minimum(np.arange(n), n - 1 - np.arange(n)) / 80)
        parts.append(0.5 * env * np.sin(2 * np.pi * FREQ[p] * np.arange(n) / 16000 + rng.uniform(0, 2 * np.pi)))
    wav = np.concatenate(parts)
    return (wav + 0.05 * rng.standard_normal(len(wav))).astype(np.float32), seq


def toy_set(n: int, seed: int) -> tuple[list[np.ndarray], list[list[str]]]:
    rng = np.random.default_rng(seed)
    wavs, labels = zip(*(tone_utterance(rng) for _ in range(n)))
    return list(wavs), list(labels)


# The conv stack trains too here: a *random* conv stack is a poor front end (frozen, the default,
# this toy reaches 58.7% PER after the same 300 updates; a pretrained stack is what makes freezing
# it work). SpecAugment (2-frame masks) against memorising 40 utterances. Measured with these
# settings: CTC loss 11.6 -> 1.25, valid PER 98.7% (untrained) -> 0.0%, most frequent phone 73.3%.
LEARN = dict(lr=2e-3, epochs=75, batch_seconds=4.0, mask_time_prob=0.2, freeze_feature_encoder=False, seed=1,
             blank_offset=0.0)


def test_fine_tuning_learns_the_toy_phones(tiny_model):
    train_w, train_l = toy_set(40, 0)
    valid_w, valid_l = toy_set(20, 1)
    # baselines: the most frequent training phone at the reference length, and the untrained model
    most_frequent = error_rate(valid_l, most_frequent_phone_hyps(valid_l, Counter(p for x in train_l for p in x))).rate
    cfg = HfCtcConfig(model=str(tiny_model), **LEARN)
    untrained = error_rate(valid_l, hf_ctc_decode(build_hf_ctc(cfg, VOCAB), valid_w)).rate
    losses = []
    model = train_hf_ctc(train_w, train_l, PHONES, cfg, on_update=lambda u, loss: losses.append(loss))
    per = error_rate(valid_l, hf_ctc_decode(model, valid_w)).rate
    first, last = np.mean(losses[:40]), np.mean(losses[-40:])
    print(f"updates {len(losses)}  CTC loss {first:.2f} -> {last:.2f}  valid PER untrained {untrained:.3f} "
          f"-> {per:.3f}  most-frequent-phone baseline {most_frequent:.3f}")
    assert len(losses) == 300  # 75 epochs x 4 batches of at most 4 s
    assert last < 0.25 * first
    assert most_frequent > 0.7 and untrained > 0.7  # both near chance
    assert per < 0.2 and per < most_frequent - 0.5, (per, most_frequent)


def test_forward_matches_transformers_and_checkpoint_round_trip(tiny_model, tmp_path):
    cfg = HfCtcConfig(model=str(tiny_model), seed=3)
    model = build_hf_ctc(cfg, VOCAB).eval()
    assert model.vocab == VOCAB and model.ctc.config.vocab_size == 6 and model.frame_rate == 50.0
    wav, _ = tone_utterance(np.random.default_rng(5))
    # our forward (normalise, encoder, dropout, lm_head) = the *ForCTC model's own forward
    x = torch.from_numpy((wav - wav.mean()) / np.sqrt(wav.var() + 1e-7))[None]
    with torch.no_grad():
        ref = model.ctc(x).logits[0].numpy()
    logits = hf_ctc_logits(model, wav)
    np.testing.assert_allclose(logits, ref, atol=1e-5, rtol=0)
    model.blank_offset = 1.25
    path = save_hf_ctc(tmp_path / "ctc.pt", model, cfg, {"history": [{"iteration": 1}]})
    assert hf_ctc.is_hf_ctc_checkpoint(path)
    loaded = load_hf_ctc(path)
    np.testing.assert_array_equal(hf_ctc_logits(loaded, wav), logits)
    assert loaded.vocab == VOCAB and loaded.blank_offset == 1.25 and loaded.normalize
    np.testing.assert_allclose(hf_ctc_logits(loaded, wav, with_blank_offset=True)[:, 0], logits[:, 0] - 1.25,
                               atol=1e-6)
    state = torch.load(path, weights_only=False)
    assert state["source"]["model"] == str(tiny_model) and len(state["source"]["weights_sha256"]) == 64
    assert state["config"]["seed"] == 3 and state["seed"] == 3 and "torch" in state["versions"]
    assert hf_ctc.hf_ctc_config_of(path) == cfg
    # not a checkpoint of the other CTC kind, and the other kind is not this one
    from wav2vec_u.models.ctc import CtcModel, CtcModelConfig, is_ctc_checkpoint, save_ctc_model

    assert not is_ctc_checkpoint(path)
    other = save_ctc_model(tmp_path / "small.pt", CtcModel(4, VOCAB, CtcModelConfig(hidden=8, layers=1)))
    assert not hf_ctc.is_hf_ctc_checkpoint(other)
    with pytest.raises(ValueError, match="not a wav2vec-u Hugging Face CTC model"):
        load_hf_ctc(other)


def test_freezing_and_head_only_updates(tiny_model):
    wavs, labels = toy_set(6, 2)
    ref = transformers.Wav2Vec2Model.from_pretrained(tiny_model, local_files_only=True)
    # default: the conv feature encoder is frozen, the transformer trains
    model = train_hf_ctc(wavs, labels, PHONES, HfCtcConfig(model=str(tiny_model), lr=1e-3, max_updates=3))
    conv = model.ctc.wav2vec2.feature_extractor.conv_layers
    assert all(torch.equal(a, b) for a, b in zip(conv.state_dict().values(),
                                                 ref.feature_extractor.conv_layers.state_dict().values()))
    assert not torch.equal(model.ctc.wav2vec2.encoder.layers[0].attention.q_proj.weight,
                           ref.encoder.layers[0].attention.q_proj.weight)
    cfg = HfCtcConfig(model=str(tiny_model), lr=1e-3, max_updates=3, head_only_updates=3, batch_seconds=1.0)
    model = train_hf_ctc(wavs, labels, PHONES, cfg)
    trained = model.ctc.wav2vec2.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in ref.state_dict().items())  # only the head moved
    cfg = HfCtcConfig(model=str(tiny_model), lr=1e-3, max_updates=3, freeze_layers=1, batch_seconds=1.0)
    model = train_hf_ctc(wavs, labels, PHONES, cfg)
    layers = model.ctc.wav2vec2.encoder.layers
    assert not any(p.requires_grad for p in layers[0].parameters())
    assert all(p.requires_grad for p in layers[1].parameters())
    assert torch.equal(layers[0].attention.q_proj.weight, ref.encoder.layers[0].attention.q_proj.weight)
    assert not torch.equal(layers[1].attention.q_proj.weight, ref.encoder.layers[1].attention.q_proj.weight)
    with pytest.raises(ValueError, match="freeze_layers=5"):
        train_hf_ctc(wavs, labels, PHONES, HfCtcConfig(model=str(tiny_model), freeze_layers=5))


def test_batches_and_schedule():
    # 16 000 samples = 1 s; shortest first, at most 2 s of padded audio (count x longest) a batch:
    # 3 x 0.5 s fit, a fourth of 1 s would make 4 x 1 s; the 2.5 s one gets a batch of its own
    assert make_batches([16000, 4000, 8000, 8000, 40000], 2.0) == [[1, 2, 3], [0], [4]]
    f = [tri_stage_lr(s, 100, (0.1, 0.4, 0.5), 0.05) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0 and f[10] == 1.0 and f[49] == 1.0
    assert f[50] == 1.0 and f[99] == pytest.approx(0.05 ** (49 / 50)) and all(a >= b for a, b in zip(f[10:], f[11:]))


def test_missing_model_and_audio_errors(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="w2vu-test/no-such-model.*hf download w2vu-test/no-such-model"):
        build_hf_ctc(HfCtcConfig(model="w2vu-test/no-such-model"), VOCAB)
    with pytest.raises(FileNotFoundError, match="not in the local Hugging Face cache"):
        hf_ctc.check_model("w2vu-test/no-such-model")  # what `w2vu self-train` calls first
    with pytest.raises(FileNotFoundError, match="folder not found"):
        build_hf_ctc(HfCtcConfig(model=str(tmp_path / "nowhere")), VOCAB)
    with pytest.raises(ValueError, match="no Hugging Face model"):
        build_hf_ctc(HfCtcConfig(), VOCAB)
    (tmp_path / "corpus").mkdir()
    with pytest.raises(FileNotFoundError, match="no audio manifest for split 'train'"):
        split_audio(tmp_path / "corpus", "train")
    (tmp_path / "corpus" / "train.tsv").write_text(f"{tmp_path / 'corpus'}\ngone.wav\t16000\n")
    with pytest.raises(FileNotFoundError, match="gone.wav"):
        split_audio(tmp_path / "corpus", "train")


def _write_corpus(root, n_train, n_valid):
    from wav2vec_u.audio.io import write_wav
    from wav2vec_u.audio.manifest import write_manifest

    for split, n, seed in (("train", n_train, 0), ("valid", n_valid, 1)):
        wavs, labels = toy_set(n, seed)
        entries = []
        for i, w in enumerate(wavs):
            write_wav(root / "wav" / f"{split}{i}.wav", w)
            entries.append((f"wav/{split}{i}.wav", len(w)))
        write_manifest(root / f"{split}.tsv", root, entries)
        (root / f"{split}.phn").write_text("".join(" ".join(x) + "\n" for x in labels))
    return root


def test_self_train_and_decode_commands_with_hf_model(tmp_path, tiny_model, capsys):
    from wav2vec_u.cli import main
    from wav2vec_u.decode.decode import load_acoustic_model

    corpus = _write_corpus(tmp_path / "corpus", 12, 6)
    pseudo = tmp_path / "pseudo.phn"
    pseudo.write_text((corpus / "train.phn").read_text())
    out = tmp_path / "st"
    rc = main(["self-train", str(corpus), str(out), f"hf.model={tiny_model}", "hf.max_updates=6", "hf.lr=0.002",
               "hf.batch_seconds=2.0", "hf.iterations=2", "--labels", str(pseudo), "--no-wandb"])
    assert rc == 0
    summary = json.loads((out / "history.json").read_text())
    assert [r["iteration"] for r in summary["history"]] == [1, 2]
    row = summary["history"][0]
    assert row["pseudo_label_per"] == 0.0 and row["updates"] == 6 and "valid_per" in row and "train_per" in row
    for name in ("ctc.pt", "ctc_iter1.pt", "ctc_iter2.pt", "train.st.phn", "valid.st.phn", "meta.json",
                 "self-train.log", "self-train.yaml"):
        assert (out / name).is_file(), name
    assert len((out / "valid.st.phn").read_text().splitlines()) == 6
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["hf"]["model"] == str(tiny_model) and str(corpus / "train.tsv") in meta["inputs"]

    am = load_acoustic_model(out / "ctc.pt")
    assert am.kind == "hf-ctc" and am.phones == VOCAB and am.frame_rate == 50.0
    assert main(["decode", str(out / "ctc.pt"), str(corpus), str(tmp_path / "dec"), "words=false"]) == 0
    dec = tmp_path / "dec"
    assert len((dec / "valid.viterbi.phn").read_text().splitlines()) == 6
    first = json.loads((dec / "valid.timestamps.jsonl").read_text().splitlines()[0])
    assert first["unit"] == "seconds"
    assert all(0 <= s <= e <= 0.6 for _, s, e in first["phones"])  # within the utterance (< 0.5 s)
    scores = json.loads((dec / "valid.scores.json").read_text())
    assert scores["model"] == "hf-ctc" and "per" in scores["viterbi"]

    # audio gone: a clear error (exit 2 from the CLI), naming the file
    (corpus / "wav" / "train3.wav").unlink()
    capsys.readouterr()
    assert main(["self-train", str(corpus), str(tmp_path / "st2"), f"hf.model={tiny_model}",
                 "--labels", str(pseudo), "--no-wandb"]) == 2
    err = capsys.readouterr().err
    assert "train3.wav" in err and "train.tsv" in err, err
