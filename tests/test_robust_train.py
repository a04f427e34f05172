"""Training that fails loudly and keeps what it had: divergence guard, resume rules, run lock,
Ctrl-C, metrics after resume, unwritable outputs, the tracking flags of every command."""

import errno
import json
import re
import logging
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from toys import signal_after_step
from wav2vec_u.cli import main
from wav2vec_u.config import apply_overrides, from_dict
from wav2vec_u.lock import LOCK_FILE, RunLocked, run_lock
from wav2vec_u.train.checkpoint import load_checkpoint
from wav2vec_u.train.config import GanConfig
from wav2vec_u.train.run import train_gan
from wav2vec_u.train.trainer import GanTrainer

SMALL = ["data.batch_size=8", "discriminator.dim=16", "trainer.validate_every=50", "trainer.save_every=50",
         "trainer.log_every=25", "trainer.progress=false"]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def cfg_of(feats, text, *extra):
    return from_dict(GanConfig, apply_overrides({}, [f"data.features={feats}", f"data.text={text}", *SMALL, *extra],
                                                GanConfig))


def cli(out, feats, text, *extra):
    return main(["train-gan", str(out), "--features", str(feats), "--text", str(text), "--no-wandb", *SMALL, *extra])


# ---------------------------------------------------------------------------------------------
# 1. divergence
# ---------------------------------------------------------------------------------------------

def test_divergence_exits_3_and_keeps_the_last_good_checkpoints(toy_dirs, tmp_path, caplog):
    feats, text = toy_dirs
    out = tmp_path / "run"
    assert cli(out, feats, text, "trainer.max_updates=50") == 0
    best, last = (out / "best.pt").read_bytes(), (out / "last.pt").read_bytes()
    with caplog.at_level(logging.ERROR, logger="wav2vec_u"):
        rc = cli(out, feats, text, "optim.lr_g=1000", "optim.lr_d=1000", "trainer.max_updates=200")
    assert rc == 3
    assert (out / "best.pt").read_bytes() == best  # the last good best.pt, byte for byte
    assert (out / "last.pt").read_bytes() == last
    msg = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert re.search(r"training diverged: loss_[dg] exploded to \S+ at update 5\d \(above trainer\.max_loss", msg), msg
    assert f"{out / 'last.pt'} (update 50)" in msg and "best.pt is kept" in msg, msg


def test_divergence_from_the_start_writes_no_checkpoint(toy_dirs, tmp_path):
    feats, text = toy_dirs
    assert cli(tmp_path, feats, text, "optim.lr_g=1000", "optim.lr_d=1000", "trainer.max_updates=100") == 3
    assert not (tmp_path / "best.pt").exists() and not (tmp_path / "last.pt").exists()


def test_nonfinite_gradient_norms_in_a_row_stop_training(toy_dirs, tmp_path, monkeypatch):
    feats, text = toy_dirs
    from wav2vec_u.train import trainer as trainer_module

    real_clip = torch.nn.utils.clip_grad_norm_
    bad_updates: set[int] = set()
    calls: list[int] = []  # one clip per update: len(calls) is the update number

    def clip(params, max_norm):
        calls.append(1)
        norm = real_clip(params, max_norm)
        return torch.full_like(norm, float("inf")) if len(calls) in bad_updates else norm

    monkeypatch.setattr(trainer_module.torch.nn.utils, "clip_grad_norm_", clip)
    # one overflowing norm is survivable (clipping zeroes that step) ...
    bad_updates.update({10})
    out = train_gan(cfg_of(feats, text, "trainer.max_updates=30", "trainer.max_loss=1e30"), tmp_path / "a")
    assert out["step"] == 30
    # ... three of one model's updates in a row are not (D steps on even updates: 20, 22, 24)
    calls.clear()
    bad_updates.update(range(20, 26))
    with pytest.raises(trainer_module.TrainingDiverged, match=r"discriminator's gradient norm was inf for 3 of its "
                                                             r"updates in a row, up to update 24 "
                                                             r"\(trainer.max_nonfinite_grads = 3\)"):
        train_gan(cfg_of(feats, text, "trainer.max_updates=30", "trainer.max_loss=1e30"), tmp_path / "b")


# ---------------------------------------------------------------------------------------------
# 2. resume: optimiser settings and inputs
# ---------------------------------------------------------------------------------------------

def test_a_new_learning_rate_on_resume_is_applied_and_recorded(toy_dirs, tmp_path):
    feats, text = toy_dirs
    train_gan(cfg_of(feats, text, "trainer.max_updates=50"), tmp_path)
    before = load_checkpoint(tmp_path / "last.pt")
    assert before["opt_g"]["param_groups"][0]["lr"] == pytest.approx(4e-4)
    train_gan(cfg_of(feats, text, "trainer.max_updates=60", "optim.lr_g=1e-3", "optim.lr_d=2e-3",
                     "optim.weight_decay_d=0"), tmp_path)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 60
    assert state["opt_g"]["param_groups"][0]["lr"] == 1e-3 and state["opt_d"]["param_groups"][0]["lr"] == 2e-3
    assert state["opt_d"]["param_groups"][0]["weight_decay"] == 0.0
    changed = state["lineage"]["resumed"][-1]
    assert changed["step"] == 50
    assert changed["optim_changed"]["optim.lr_g"] == {"old": pytest.approx(4e-4), "new": 1e-3}
    assert set(changed["optim_changed"]) == {"optim.lr_g", "optim.lr_d", "optim.weight_decay_d"}
    assert "lr_g: 0.001" in (tmp_path / "config.yaml").read_text()
    log_text = (tmp_path / "train-gan.log").read_text()
    assert "new optimiser settings" in log_text and "optim.lr_g 0.0004 -> 0.001" in log_text


def test_a_changed_input_on_resume_is_refused(toy_dirs, tmp_path, capsys):
    import shutil

    feats0, text = toy_dirs
    feats = tmp_path / "feats"
    shutil.copytree(feats0, feats)
    out = tmp_path / "run"
    train_gan(cfg_of(feats, text, "trainer.max_updates=50"), out)
    config_before = (out / "config.yaml").read_text()
    x = np.load(feats / "train.npy")
    np.save(feats / "train.npy", x + 0.5)  # same shape, same .lengths: only the content changed
    with pytest.raises(ValueError, match=r"input features/train\.npy \(.*train\.npy\) changed.*"
                                         r"new output folder.*trainer\.resume=false"):
        train_gan(cfg_of(feats, text, "trainer.max_updates=100"), out)
    assert load_checkpoint(out / "last.pt")["step"] == 50  # nothing was rewritten
    assert (out / "config.yaml").read_text() == config_before
    assert cli(out, feats, text, "trainer.max_updates=100") == 2
    assert "features/train.npy" in capsys.readouterr().err
    # starting the folder afresh is allowed
    assert train_gan(cfg_of(feats, text, "trainer.max_updates=20", "trainer.resume=false"), out)["step"] == 20


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


# ---------------------------------------------------------------------------------------------
# 6. Ctrl-C, metrics after resume, unwritable outputs, --no-wandb everywhere
# ---------------------------------------------------------------------------------------------

def test_sigint_saves_last_pt_and_the_cli_exits_130(toy_dirs, tmp_path, monkeypatch):
    feats, text = toy_dirs
    original = GanTrainer.train_step
    signal_after_step(monkeypatch, 30, signal.SIGINT)
    handler = signal.getsignal(signal.SIGINT)
    assert cli(tmp_path, feats, text, "trainer.max_updates=100") == 130
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 30  # not 0: the work since the last save is kept
    assert signal.getsignal(signal.SIGINT) is handler  # restored
    monkeypatch.setattr(GanTrainer, "train_step", original)
    assert cli(tmp_path, feats, text, "trainer.max_updates=50") == 0
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 50


def test_metrics_have_one_row_per_update_after_a_resume(toy_dirs, tmp_path, monkeypatch):
    feats, text = toy_dirs
    original = GanTrainer.train_step

    def crash_at_80(self):
        if self.step == 80:
            raise RuntimeError("killed")
        return original(self)

    monkeypatch.setattr(GanTrainer, "train_step", crash_at_80)
    with pytest.raises(RuntimeError, match="killed"):
        train_gan(cfg_of(feats, text, "trainer.max_updates=100"), tmp_path)  # rows up to 75, last.pt at 50
    monkeypatch.setattr(GanTrainer, "train_step", original)
    train_gan(cfg_of(feats, text, "trainer.max_updates=100"), tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r["step"] for r in rows if "loss_d" in r]
    valid_rows = [r["step"] for r in rows if "best_weighted_lm_ppl" in r]
    assert train_rows == [25, 50, 75, 100]
    assert valid_rows == [0, 50, 100]
    # a fresh start in an old folder forgets the old run's rows
    train_gan(cfg_of(feats, text, "trainer.max_updates=25", "trainer.resume=false"), tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss_d" in r] == [25]


def test_an_unwritable_output_is_a_one_line_error(toy_dirs, tmp_path, monkeypatch, capsys):
    feats, text = toy_dirs
    out = tmp_path / "readonly"
    out.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: make the write fail as it would for a user
        import tempfile

        real = tempfile.mkstemp

        def refuse(*a, dir=None, **k):
            if dir is not None and str(dir).startswith(str(out)):
                raise PermissionError(errno.EACCES, "Permission denied", str(dir))
            return real(*a, dir=dir, **k)

        monkeypatch.setattr("wav2vec_u.io.tempfile.mkstemp", refuse)
    else:
        out.chmod(0o555)
    try:
        rc = cli(out, feats, text, "trainer.max_updates=10")
    finally:
        out.chmod(0o755)
    err = capsys.readouterr().err
    assert rc == 2
    assert f"error: Permission denied: {out}" in err and "Traceback" not in err, err


def test_every_command_accepts_wandb_and_no_wandb():
    import argparse
    import importlib

    from wav2vec_u.cli import COMMANDS

    for name, (module, _) in COMMANDS.items():
        parser = argparse.ArgumentParser()
        importlib.import_module(module).add_arguments(parser)
        flags = {s for a in parser._actions for s in a.option_strings}
        assert {"--wandb", "--no-wandb"} <= flags, name
