"""Typed configs: strict keys, types, dotted overrides, round trip through YAML."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from wav2vec_u.config import ConfigError, load_config, save_config, from_dict, to_dict


@dataclass
class Optim:
    lr: float = 4e-4
    betas: tuple[float, float] = (0.5, 0.98)


@dataclass
class Trainer:
    max_updates: int = 150_000
    device: Literal["cpu", "cuda", "auto"] = "auto"
    tag: Optional[str] = None


@dataclass
class Root:
    optim: Optim = field(default_factory=Optim)
    trainer: Trainer = field(default_factory=Trainer)
    layers: list[int] = field(default_factory=lambda: [1, 2])
    out: Path = Path("runs")


def test_defaults_yaml_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lr: 1\ntrainer:\n  device: cpu\n")
    cfg = load_config(Root, f, ["trainer.max_updates=100", "layers=[3]", "trainer.tag=x"])
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)  # int widened to float
    assert cfg.trainer.max_updates == 100 and cfg.trainer.device == "cpu"
    assert cfg.layers == [3] and cfg.trainer.tag == "x" and cfg.optim.betas == (0.5, 0.98)


def test_unknown_key_named(tmp_path):
    with pytest.raises(ConfigError, match=r"trainer\.max_update'"):
        load_config(Root, None, ["trainer.max_update=100"])
    f = tmp_path / "c.yaml"
    f.write_text("optimm: {lr: 1}\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'optimm'.*c\.yaml"):
        load_config(Root, f)


@pytest.mark.parametrize("override,key", [
    ("trainer.max_updates=abc", "trainer.max_updates"),
    ("trainer.max_updates=1.5", "trainer.max_updates"),
    ("optim.lr=fast", "optim.lr"),
    ("trainer.device=tpu", "trainer.device"),
    ("optim.betas=[1]", "optim.betas"),
    ("optim=3", "optim"),
])
def test_wrong_type_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(Root, None, [override])


def test_bool_is_not_int():
    with pytest.raises(ConfigError, match="max_updates"):
        from_dict(Root, {"trainer": {"max_updates": True}})


def test_round_trip(tmp_path):
    cfg = load_config(Root, None, ["optim.lr=0.1", "out=/tmp/x"])
    save_config(cfg, tmp_path / "resolved.yaml")
    again = load_config(Root, tmp_path / "resolved.yaml")
    assert again == cfg and to_dict(again)["out"] == "/tmp/x"


def test_missing_file_and_bad_override():
    with pytest.raises(ConfigError, match="not found"):
        load_config(Root, "/nonexistent.yaml")
    with pytest.raises(ConfigError, match="key.path=value"):
        load_config(Root, None, ["noequals"])
