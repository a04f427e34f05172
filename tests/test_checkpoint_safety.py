"""A crafted checkpoint never runs code: every command that loads checkpoints refuses it.

The file below unpickles to ``os.system("touch MARKER")`` when read with ``weights_only=False``
(what ``torch.load`` did for our checkpoints before). Each command must fail with a one-line
error that says why and how to opt in, and the marker file must not exist afterwards.
"""

from __future__ import annotations

import os

import pytest
import torch

from toys import make_toy, write_toy
from wav2vec_u.cli import main
from wav2vec_u.io import UNSAFE_LOAD_ENV, load_state


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted(path, marker, fmt="wav2vec-u-gan/1"):
    torch.save({"format": fmt, "payload": _Payload(marker), "state_dict": {}}, path)
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    t = make_toy(num_phones=5, dim=8, num_train=12, num_valid=6, num_text=40, seed=2)
    write_toy(t, root / "feats", root / "text")
    return root


def test_loader_refuses_and_names_the_opt_in(tmp_path, monkeypatch):
    monkeypatch.delenv(UNSAFE_LOAD_ENV, raising=False)
    marker = tmp_path / "ran"
    with pytest.raises(ValueError, match=UNSAFE_LOAD_ENV):
        load_state(crafted(tmp_path / "x.pt", marker))
    assert not marker.exists()
    # the opt-in really loads it (and so runs the payload): it is documented as unsafe
    monkeypatch.setenv(UNSAFE_LOAD_ENV, "1")
    load_state(tmp_path / "x.pt")
    assert marker.exists()


@pytest.mark.parametrize("command", ["decode", "select", "self-train", "train-gan"])
def test_every_checkpoint_reading_command_refuses_a_crafted_file(command, toy, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(UNSAFE_LOAD_ENV, raising=False)
    marker = tmp_path / "ran"
    feats, text = toy / "feats", toy / "text"
    run = tmp_path / "run"
    run.mkdir()
    ckpt = crafted(run / ("last.pt" if command == "train-gan" else "best.pt"), marker)
    argv = {
        "decode": ["decode", str(ckpt), str(feats), str(tmp_path / "out"), "--text-dir", str(text)],
        "select": ["select", str(run), "--features", str(feats), "--text", str(text)],
        "self-train": ["self-train", str(feats), str(tmp_path / "st"), "--checkpoint", str(ckpt),
                       "--label-features", str(feats), "--text-dir", str(text)],
        # a planted last.pt in the run folder: the resume must refuse it
        "train-gan": ["train-gan", str(run), "--features", str(feats), "--text", str(text), "discriminator.dim=8",
                      "data.batch_size=4", "trainer.max_updates=5", "trainer.progress=false"],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not loaded" in err and UNSAFE_LOAD_ENV in err, err
    assert not marker.exists(), f"{command} ran code from the checkpoint"
