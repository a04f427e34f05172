"""Training that fails loudly and keeps what it had: one run per output folder."""

import json
import logging
import os
import socket
import subprocess
import sys

import pytest
import torch

from toys import make_toy, write_toy
from wav2vec_u.cli import main
from wav2vec_u.config import apply_overrides, from_dict
from wav2vec_u.lock import LOCK_FILE, RunLocked, run_lock
from wav2vec_u.train.checkpoint import load_checkpoint
from wav2vec_u.train.config import GanConfig
from wav2vec_u.train.run import train_gan

SMALL = ["data.batch_size=8", "discriminator.dim=16", "trainer.validate_every=50", "trainer.save_every=50",
         "trainer.log_every=25", "trainer.progress=false"]


@pytest.fixture(scope="module")
def toy_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    toy = make_toy(num_phones=6, dim=8, num_train=40, num_valid=10, num_text=60, min_len=3, max_len=8, seed=3)
    write_toy(toy, root / "feats", root / "text")
    return root / "feats", root / "text"


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def cfg_of(feats, text, *extra):
    return from_dict(GanConfig, apply_overrides({}, [f"data.features={feats}", f"data.text={text}", *SMALL, *extra],
                                                GanConfig))


def cli(out, feats, text, *extra):
    return main(["train-gan", str(out), "--features", str(feats), "--text", str(text), "--no-wandb", *SMALL, *extra])


# ---------------------------------------------------------------------------------------------
# 3. one run per folder
# ---------------------------------------------------------------------------------------------

HOLDER = ("import sys\nfrom wav2vec_u.lock import run_lock\n"
          "with run_lock(sys.argv[1], 'train-gan seed 1'):\n    print('held', flush=True)\n    sys.stdin.read()\n")


def test_a_second_run_on_a_locked_folder_refuses(toy_dirs, tmp_path, capsys):
    from wav2vec_u.self_train.run import run_self_train
    from wav2vec_u.stage import run_stage

    feats, text = toy_dirs
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cli(out, feats, text, "trainer.seed=2", "trainer.max_updates=10") == 2
        err = capsys.readouterr().err
        assert f"{out} is in use by train-gan seed 1 (pid {holder.pid} on host {socket.gethostname()}" in err, err
        assert not (out / "config.yaml").exists() and not (out / "metrics.jsonl").exists()
        with pytest.raises(RunLocked, match=f"pid {holder.pid}"):  # every cached stage
            run_stage(out, "fp", ["x"], lambda: None)
        with pytest.raises(RunLocked, match=f"pid {holder.pid}"):
            run_self_train(feats, out, labels_file=tmp_path / "labels.txt")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert not (out / LOCK_FILE).exists()  # released when the holder finished
    assert cli(out, feats, text, "trainer.seed=2", "trainer.max_updates=10") == 0
    assert not (out / LOCK_FILE).exists()


def test_a_stale_lock_is_taken_over_and_a_foreign_one_is_not(toy_dirs, tmp_path, caplog):
    feats, text = toy_dirs
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "what": "train-gan"}))
    with caplog.at_level(logging.WARNING, logger="wav2vec_u.lock"):
        assert train_gan(cfg_of(feats, text, "trainer.max_updates=10"), out)["step"] == 10
    assert any("taking over the stale lock" in r.getMessage() and f"pid {dead.pid}" in r.getMessage()
               for r in caplog.records)
    assert not (out / LOCK_FILE).exists()
    (out / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "what": "train-gan"}))
    with pytest.raises(RunLocked, match=r"elsewhere\.example.*another machine.*delete .*\.w2vu\.lock"):
        with run_lock(out):
            pass


def test_the_lock_is_reentrant_in_one_thread_only(tmp_path):
    import threading

    with run_lock(tmp_path, "outer"):
        with run_lock(tmp_path, "inner"):  # a stage function inside the demo's stage runner
            pass
        assert (tmp_path / LOCK_FILE).exists()  # the inner release kept the outer hold
        errors = []

        def other():
            try:
                with run_lock(tmp_path):
                    pass
            except RunLocked as exc:
                errors.append(exc)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert errors and "another thread" in str(errors[0])
    assert not (tmp_path / LOCK_FILE).exists()
