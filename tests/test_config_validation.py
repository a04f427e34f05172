"""The one config loader: YAML 1.2 numbers, per-field ranges, errors that say where a value came from,
and renamed keys that keep working under their old spelling."""

import logging

import pytest

from wav2vec_u.audio.extract import ExtractConfig
from wav2vec_u.audio.segments import SegmentsConfig
from wav2vec_u.audio.vad_corpus import VadCommandConfig
from wav2vec_u.config import ConfigError, at_least, from_dict, in_range, load_config, non_negative, positive
from wav2vec_u.train.config import GanConfig


@pytest.mark.parametrize("text,value", [("1e-4", 1e-4), ("1E5", 1e5), ("-2.5e-3", -2.5e-3), ("2.5E+2", 250.0),
                                        (".5e1", 5.0), ("3", 3.0)])
def test_yaml_12_floats_in_overrides_and_files(tmp_path, text, value):
    from wav2vec_u.models.config import GeneratorConfig  # noqa: F401 - the loader is shared

    cfg = load_config(GanConfig, None, [f"loss.code_penalty_final={text}"])
    assert cfg.loss.code_penalty_final == value and isinstance(cfg.loss.code_penalty_final, float)
    f = tmp_path / "c.yaml"
    f.write_text(f"loss:\n  code_penalty_final: {text}\n")
    assert load_config(GanConfig, f).loss.code_penalty_final == value


def test_the_reported_learning_rate_loads():
    cfg = load_config(GanConfig, None, ["optim.lr_g=1e-4", "optim.lr_d=5E-4"])
    assert cfg.optim.lr_g == 1e-4 and cfg.optim.lr_d == 5e-4
    # a whole number written with an exponent is an int where an int is expected
    assert load_config(GanConfig, None, ["trainer.max_updates=1e5"]).trainer.max_updates == 100_000
    with pytest.raises(ConfigError, match="expected int"):
        load_config(GanConfig, None, ["trainer.max_updates=1.5e0"])


# (config class, override, dotted key, rule text) for every value reported to fail deep in the code
REPORTED = [
    (GanConfig, "data.batch_size=0", "data.batch_size", ">= 1"),
    (GanConfig, "data.batch_size=-4", "data.batch_size", ">= 1"),
    (GanConfig, "trainer.max_updates=0", "trainer.max_updates", ">= 1"),
    (GanConfig, "trainer.save_every=0", "trainer.save_every", ">= 1"),
    (GanConfig, "trainer.log_every=0", "trainer.log_every", ">= 1"),
    (GanConfig, "trainer.validate_every=0", "trainer.validate_every", ">= 1"),
    (SegmentsConfig, "kmeans.k=0", "kmeans.k", ">= 1"),
    (ExtractConfig, "features.spectral.hop_ms=0", "features.spectral.hop_ms", "> 0"),
    (VadCommandConfig, "vad.margin_s=-1", "vad.margin_s", ">= 0"),
    # and the obvious others
    (GanConfig, "optim.lr_g=0", "optim.lr_g", "> 0"),
    (GanConfig, "optim.betas=[0.5,1.5]", "optim.betas", "[0, 1)"),
    (GanConfig, "generator.dropout=1.2", "generator.dropout", "[0, 1)"),
    (GanConfig, "loss.gradient_penalty=-1", "loss.gradient_penalty", ">= 0"),
    (GanConfig, "loss.smoothness=-0.5", "loss.smoothness", ">= 0"),
    (GanConfig, "optim.d_steps=0", "optim.d_steps", ">= 1"),
    (SegmentsConfig, "pool.rate=0", "pool.rate", "(0, 1]"),
    (ExtractConfig, "features.spectral.win_ms=-25", "features.spectral.win_ms", "> 0"),
]


@pytest.mark.parametrize("cls,override,key,rule", REPORTED, ids=[r[1] for r in REPORTED])
def test_invalid_values_get_a_named_error(cls, override, key, rule):
    with pytest.raises(ConfigError) as err:
        load_config(cls, None, [override])
    msg = str(err.value)
    value = override.split("=", 1)[1]
    assert msg.startswith(f"{key} = "), msg
    assert value.strip("[]").split(",")[0] in msg and rule in msg and "command line" in msg, msg
    assert err.value.key is not None


def test_the_source_of_a_bad_value_is_named(tmp_path):
    f = tmp_path / "gan.yaml"
    f.write_text("data:\n  batch_size: 0\ntrainer:\n  log_every: 10\n")
    with pytest.raises(ConfigError, match=r"data\.batch_size = 0: must be >= 1 \(from .*gan\.yaml\)"):
        load_config(GanConfig, f)
    # the file is fine, the command line is not: the file is not blamed
    f.write_text("data:\n  batch_size: 8\n")
    with pytest.raises(ConfigError) as err:
        load_config(GanConfig, f, ["trainer.log_every=0"])
    assert "command line" in str(err.value) and "gan.yaml" not in str(err.value)
    # a typo on the command line is the command line's too
    with pytest.raises(ConfigError) as err:
        load_config(GanConfig, f, ["trainer.log_evry=5"])
    assert "command line" in str(err.value) and "gan.yaml" not in str(err.value)


def test_checkpoint_configs_are_checked_too():
    with pytest.raises(ConfigError, match=r"trainer\.save_every = 0"):
        from_dict(GanConfig, {"trainer": {"save_every": 0}})


def test_rules_are_declared_beside_the_field():
    from dataclasses import dataclass, field

    @dataclass
    class Toy:
        n: int = at_least(2, default=2)
        lr: float = positive(default=0.1)
        margin: float | None = non_negative(default=None)
        p: float = in_range(0.0, 1.0, default=0.5)
        sizes: list[int] = at_least(1, default_factory=lambda: [1, 2])
        other: list[int] = field(default_factory=list)

    assert from_dict(Toy, {"margin": None, "sizes": [3]}).sizes == [3]
    for bad in ({"n": 1}, {"lr": 0.0}, {"margin": -0.1}, {"p": 1.01}, {"sizes": [1, 0]}, {"lr": float("nan")}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            from_dict(Toy, bad)


def test_cli_exit_code_2_and_message_on_stderr(tmp_path, capsys):
    from wav2vec_u.cli import main

    rc = main(["train-gan", str(tmp_path / "out"), "--features", str(tmp_path), "--text", str(tmp_path),
               "data.batch_size=0"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "data.batch_size = 0: must be >= 1 (from the command line)" in err, err
    assert not (tmp_path / "out").exists()  # refused before anything was written
    rc = main(["segments", str(tmp_path), str(tmp_path / "seg"), "kmeans.k=0"])
    assert rc == 2 and "kmeans.k = 0: must be >= 1" in capsys.readouterr().err
# ---------------------------------------------------------------------------------------------
# Renamed keys (features.features -> extract.features in the demo, self_train.self_train -> ctc)
# ---------------------------------------------------------------------------------------------

def test_old_spellings_still_load_with_a_warning(tmp_path, caplog):
    from wav2vec_u.demo.config import DemoConfig
    from wav2vec_u.self_train.run import SelfTrainRunConfig

    old = tmp_path / "old.yaml"
    old.write_text("features:\n  features:\n    extractor: logmel\n    spectral: {hop_ms: 20}\n"
                   "self_train:\n  self_train:\n    epochs: 3\n    model: {hidden: 64}\n")
    new = tmp_path / "new.yaml"
    new.write_text("extract:\n  features:\n    extractor: logmel\n    spectral: {hop_ms: 20}\n"
                   "self_train:\n  ctc:\n    epochs: 3\n    model: {hidden: 64}\n")
    with caplog.at_level(logging.WARNING, logger="wav2vec_u.config"), pytest.warns(DeprecationWarning):
        a = load_config(DemoConfig, old)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "'features' is deprecated, use 'extract'" in messages
    assert "'self_train.self_train' is deprecated, use 'self_train.ctc'" in messages
    b = load_config(DemoConfig, new)
    assert a == b and a.extract.features.extractor == "logmel" and a.self_train.ctc.model.hidden == 64

    # overrides: old and new spellings, on top of either file
    with pytest.warns(DeprecationWarning):
        c = load_config(DemoConfig, new, ["self_train.self_train.epochs=5", "features.features.layer=3"])
    assert c.self_train.ctc.epochs == 5 and c.extract.features.layer == 3
    assert c.extract.features.extractor == "logmel"  # the override merged into the file's section
    with pytest.warns(DeprecationWarning):
        d = load_config(SelfTrainRunConfig, None, ["self_train.epochs=7"])
    assert d == load_config(SelfTrainRunConfig, None, ["ctc.epochs=7"])

    both = tmp_path / "both.yaml"
    both.write_text("self_train:\n  self_train: {epochs: 3}\n  ctc: {epochs: 4}\n")
    with pytest.raises(ConfigError, match="keep only 'self_train.ctc'"):
        load_config(DemoConfig, both)


def test_shipped_configs_use_the_new_spellings():
    from wav2vec_u.io import resource_path

    for path in resource_path("configs").rglob("*.yaml"):
        text = path.read_text()
        assert "features:\n  features:" not in text and "self_train:\n  self_train:" not in text, path
        assert not text.startswith("self_train:") and "\nself_train:\n  iterations" not in text, path
