"""``w2vu sweep``: a stacked member equals the same run alone; a diverged member is dropped; folders as train-gan's."""

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from wav2vec_u.cli import main
from wav2vec_u.config import apply_overrides, from_dict, load_config
from wav2vec_u.train.checkpoint import load_checkpoint
from wav2vec_u.train.config import GanConfig, SweepConfig
from wav2vec_u.train.data import FeatureSet, TextSet
from wav2vec_u.train.run import train_gan
from wav2vec_u.train.stacked import StackedTrainer, build_members
from wav2vec_u.train.sweep import expand_grid, plan_stacks
from wav2vec_u.train.sweep_command import DEFAULT_CONFIG
from wav2vec_u.train.trainer import GanTrainer
from toys import make_toy, write_toy


def _cfg(*overrides: str) -> GanConfig:
    return from_dict(GanConfig, apply_overrides({}, ["discriminator.dim=16", "data.batch_size=16",
                                                     "trainer.progress=false", *overrides]))


@pytest.fixture(scope="module")
def toy_sets():
    toy = make_toy(num_phones=8, dim=16, noise=0.5, num_train=200, num_valid=20, num_text=400, seed=0)
    phones = toy.phones + ["<SIL>"]
    return FeatureSet(toy.train.feats, toy.train.lengths), TextSet(toy.text, phones), phones


def test_stacked_member_equals_the_run_alone(toy_sets):
    """300 updates (150 D, 150 G) of the reference's settings: each member's weights equal those of its
    run trained alone by GanTrainer, to float rounding (the grouped convolutions sum in another order:
    measured differences ~1e-7 here). The members differ in seed, generator lr and penalty weight, so
    the per-member hyper-parameters are (N,) tensors, not the numbers a run alone uses."""
    torch.set_num_threads(1)
    train, text, phones = toy_sets
    updates = 300
    settings = [("trainer.seed=1",), ("trainer.seed=2", "optim.lr_g=0.001", "loss.gradient_penalty=2.0")]
    members = build_members([_cfg(*s) for s in settings], ["/nonexistent/a", "/nonexistent/b"], train, text, phones)
    stack = StackedTrainer(members)
    for _ in range(updates):
        stats = stack.train_step()
    assert stats["loss_d"].shape == (2,)  # update 300 is a D update
    stack.unstack()
    for s, member in zip(settings, members):
        alone = GanTrainer(_cfg(*s), "/nonexistent/alone", train, text, phones)
        for _ in range(updates):
            alone.train_step()
        assert member.step == alone.step == updates
        for (name, p), q in zip(alone.gan.named_parameters(), member.gan.parameters()):
            assert torch.allclose(p, q, rtol=0, atol=1e-5), (s, name, float((p - q).abs().max()))
        start = GanTrainer(_cfg(*s), "/nonexistent/start", train, text, phones)  # the test can fail: runs moved
        assert not torch.allclose(start.gan.generator.proj.weight, member.gan.generator.proj.weight, atol=1e-3)
        # the optimiser state is each member's own too
        for p, q in zip(alone.gan.generator.parameters(), member.gan.generator.parameters()):
            a, b = alone.opt_g.state[p], member.opt_g.state[q]
            assert int(a["step"]) == int(b["step"]) == updates // 2
            assert torch.allclose(a["exp_avg_sq"], b["exp_avg_sq"], rtol=1e-4, atol=1e-9)


def test_expand_grid_names_and_stacks():
    sweep = from_dict(SweepConfig, {"seeds": [1, 2], "grid": {"loss.gradient_penalty": [1.5, 2.0],
                                                               "discriminator.dim": [8, 16]}})
    runs = expand_grid(_cfg(), sweep)
    assert [r.name for r in runs][:3] == ["gradient_penalty1.5_dim8_seed1", "gradient_penalty1.5_dim8_seed2",
                                          "gradient_penalty1.5_dim16_seed1"]
    assert runs[2].cfg.discriminator.dim == 16 and runs[2].cfg.loss.gradient_penalty == 1.5
    stacks = plan_stacks(runs)
    # penalty weights and seeds share a stack; the discriminator's width changes shapes
    assert sorted(len(s) for s in stacks) == [4, 4]
    assert all(len({r.cfg.discriminator.dim for r in s}) == 1 for s in stacks)
    assert [len(s) for s in plan_stacks(runs, stack_size=3)] == [3, 1, 3, 1]
    with pytest.raises(ValueError, match="not a GAN config key"):
        expand_grid(_cfg(), from_dict(SweepConfig, {"grid": {"loss.gradient_penalti": [1.0]}}))


def _write_toy(tmp_path):
    toy = make_toy(num_phones=6, dim=16, noise=0.3, num_train=60, num_valid=30, num_text=300, seed=5)
    write_toy(toy, tmp_path / "feats", tmp_path / "text")
    return ["--features", str(tmp_path / "feats"), "--text", str(tmp_path / "text"), "--threads", "1",
            "--no-wandb", "discriminator.dim=16", "data.batch_size=16", "trainer.validate_every=20",
            "trainer.save_every=20", "trainer.log_every=10", "trainer.progress=false"]


def test_sweep_drops_a_diverged_run_and_the_others_finish(tmp_path, capsys):
    common = _write_toy(tmp_path)
    out = tmp_path / "sweep"
    code = main(["sweep", str(out), "--seeds", "1", "2", "--grid", "optim.lr_g=0.0004,1000", *common,
                 "trainer.max_updates=60"])
    assert code == 0
    summary = json.loads((out / "sweep.json").read_text())
    status = {r["name"]: r["status"] for r in summary["runs"]}
    assert status == {"lr_g0.0004_seed1": "done", "lr_g0.0004_seed2": "done",
                      "lr_g1000_seed1": "diverged", "lr_g1000_seed2": "diverged"}
    assert summary["stacks"] == [sorted(status)]  # one stacked model for all four
    for name, st in status.items():
        run = out / name
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        if st == "diverged":  # stopped at its first check without writing a checkpoint
            assert not (run / "last.pt").exists() and not (run / "best.pt").exists()
            assert max(r["step"] for r in rows) < 20
            assert "diverged" in (run / "train-gan.log").read_text()
        else:  # the run alone's files: both checkpoints, its config, every log and validation row
            state = load_checkpoint(run / "last.pt")
            assert state["step"] == 60 and state["config"]["optim"]["lr_g"] == 0.0004
            assert (run / "best.pt").is_file() and (run / "config.yaml").is_file()
            assert [r["step"] for r in rows if "loss_g" in r] == [10, 20, 30, 40, 50, 60]
            assert [r["step"] for r in rows if "valid_per" in r] == [0, 20, 40, 60]
            log = (run / "train-gan.log").read_text()
            assert f"[{name}]" in log and "[lr_g1000" not in log  # its own lines (and the sweep's), no other run's
    selection = json.loads((out / "selection.json").read_text())
    assert selection["run"] in {str(out / "lr_g0.0004_seed1"), str(out / "lr_g0.0004_seed2")}
    assert "chosen" in capsys.readouterr().out


def test_a_sweep_member_resumes_as_a_train_gan_run(tmp_path):
    """A member's last.pt is a train-gan checkpoint: train-gan continues it (its own RNG stream, data
    order and optimiser state) to what one train-gan run gives in one go, to float rounding."""
    torch.set_num_threads(1)
    common = _write_toy(tmp_path)
    assert main(["sweep", str(tmp_path / "sweep"), "--seeds", "1", "2", *common, "trainer.max_updates=40"]) == 0
    overrides = [f"data.features={tmp_path / 'feats'}", f"data.text={tmp_path / 'text'}", "discriminator.dim=16",
                 "data.batch_size=16", "trainer.validate_every=20", "trainer.save_every=20", "trainer.log_every=10",
                 "trainer.progress=false", "trainer.max_updates=80", "trainer.seed=2"]
    cfg = load_config(GanConfig, DEFAULT_CONFIG, overrides)  # the sweep's base config, as the command's
    resumed = train_gan(cfg, tmp_path / "sweep" / "seed2")
    cfg = load_config(GanConfig, DEFAULT_CONFIG, overrides)
    alone = train_gan(cfg, tmp_path / "alone")
    assert resumed["step"] == alone["step"] == 80
    assert resumed["param_checksum"] == pytest.approx(alone["param_checksum"], rel=1e-5)
    a = load_checkpoint(tmp_path / "alone" / "last.pt")["generator"]["proj.weight"]
    b = load_checkpoint(tmp_path / "sweep" / "seed2" / "last.pt")["generator"]["proj.weight"]
    assert torch.allclose(a, b, atol=1e-5)


def test_local_launcher_runs_each_stack_as_a_submitit_job(tmp_path):
    """--launcher local: two stacks (stack size 1) as two submitit jobs in subprocesses; the runs'
    weights equal those of the same sweep trained in this process."""
    pytest.importorskip("submitit")
    common = _write_toy(tmp_path)
    args = ["--seeds", "1", "2", "--stack-size", "1", *common, "trainer.max_updates=20"]
    assert main(["sweep", str(tmp_path / "jobs"), "--launcher", "local", *args]) == 0
    assert main(["sweep", str(tmp_path / "here"), *args]) == 0
    jobs = json.loads((tmp_path / "jobs" / "sweep.json").read_text())
    here = json.loads((tmp_path / "here" / "sweep.json").read_text())
    assert jobs["stacks"] == [["seed1"], ["seed2"]]
    assert len(list((tmp_path / "jobs" / "submitit").glob("*_result.pkl"))) == 2  # two jobs ran
    for a, b in zip(jobs["runs"], here["runs"]):
        assert a["status"] == b["status"] == "done" and a["step"] == 20
        assert a["param_checksum"] == pytest.approx(b["param_checksum"], rel=1e-6)
    assert Path(jobs["chosen"]).name == Path(here["chosen"]).name


def test_rerunning_a_sweep_resumes_its_runs(tmp_path):
    """The same command again: finished runs stay finished, a diverged run starts over (alone in its
    stack, since it is at another update) and diverges again; the selection is the same."""
    common = _write_toy(tmp_path)
    args = ["sweep", str(tmp_path / "sw"), "--seeds", "1", "--grid", "optim.lr_g=0.0004,1000", *common,
            "trainer.max_updates=20"]
    assert main(args) == 0
    first = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert main(args) == 0
    again = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [r["status"] for r in again["runs"]] == [r["status"] for r in first["runs"]] == ["done", "diverged"]
    assert again["chosen"] == first["chosen"]
    rows = [json.loads(line) for line in (tmp_path / "sw" / "lr_g0.0004_seed1" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss_g" in r] == [10, 20]  # nothing trained twice


def test_stacked_member_equals_the_run_alone_with_static_shapes(toy_sets):
    """trainer.static_shapes (the GPU setting: batches padded to the longest utterance of the set, the
    join's R = T, no host synchronisation): the same equality, over 60 updates."""
    torch.set_num_threads(1)
    train, text, phones = toy_sets
    settings = [("trainer.seed=4", "trainer.static_shapes=true"),
                ("trainer.seed=5", "trainer.static_shapes=true", "optim.lr_d=0.001")]
    members = build_members([_cfg(*s) for s in settings], ["/nonexistent/a", "/nonexistent/b"], train, text, phones)
    stack = StackedTrainer(members)
    for _ in range(60):
        stack.train_step()
    stack.unstack()
    for s, member in zip(settings, members):
        alone = GanTrainer(_cfg(*s), "/nonexistent/alone", train, text, phones)
        for _ in range(60):
            alone.train_step()
        for p, q in zip(alone.gan.parameters(), member.gan.parameters()):
            assert torch.allclose(p, q, rtol=0, atol=1e-5), float((p - q).abs().max())


def test_a_signal_saves_every_run_and_the_same_command_finishes_them(tmp_path, monkeypatch):
    """SIGUSR1 (pre-emption) at update 30: every run's last.pt at 30, no selection yet; the same command
    again resumes them and ends where an uninterrupted sweep ends."""
    common = _write_toy(tmp_path)
    original = StackedTrainer.train_step

    def step_then_signal(self):
        out = original(self)
        if self.step == 30:
            os.kill(os.getpid(), signal.SIGUSR1)
        return out

    monkeypatch.setattr(StackedTrainer, "train_step", step_then_signal)
    args = ["--seeds", "1", "2", *common, "trainer.max_updates=60"]
    assert main(["sweep", str(tmp_path / "sw"), *args]) == 0
    stopped = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [(r["status"], r["step"]) for r in stopped["runs"]] == [("preempted", 30)] * 2
    assert load_checkpoint(tmp_path / "sw" / "seed2" / "last.pt")["step"] == 30
    assert stopped["chosen"] is None and not (tmp_path / "sw" / "selection.json").exists()
    monkeypatch.undo()
    assert main(["sweep", str(tmp_path / "sw"), *args]) == 0
    assert main(["sweep", str(tmp_path / "straight"), *args]) == 0
    resumed = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    straight = json.loads((tmp_path / "straight" / "sweep.json").read_text())
    for a, b in zip(resumed["runs"], straight["runs"]):
        assert a["status"] == b["status"] == "done" and a["step"] == 60
        assert a["param_checksum"] == pytest.approx(b["param_checksum"], rel=1e-9)
    assert Path(resumed["chosen"]).name == Path(straight["chosen"]).name
