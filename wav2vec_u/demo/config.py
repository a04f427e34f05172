"""The demo's typed config: one section per stage, each stage receives only its own.

    cfg = load_demo_config(resource_path("configs", "demo", "quick.yaml"), ["train.seeds=[1,2]"])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from wav2vec_u.audio.extract import ExtractConfig
from wav2vec_u.audio.prepare import PrepareAudioConfig
from wav2vec_u.audio.segments import SegmentsConfig
from wav2vec_u.config import ConfigError, at_least, load_config, positive, renamed
from wav2vec_u.decode.decode import DecodeConfig
from wav2vec_u.io import resource_path
from wav2vec_u.decipher.config import DecipherRunConfig
from wav2vec_u.self_train.run import SelfTrainRunConfig
from wav2vec_u.synth.corpus import SynthConfig
from wav2vec_u.text.config import TextConfig
from wav2vec_u.train.config import GanConfig

# the demo's shipped configs (configs/demo/ in a checkout)
CONFIG_DIR = resource_path("configs", "demo")


# Shipped languages: demo name -> espeak-ng voice language.
LANGS = {"en": "en-us", "es": "es"}


@dataclass
class BaselineSection:
    kmeans_seed: int = 1
    supervised_epochs: int = at_least(1, default=30)
    supervised_lr: float = positive(default=2e-3)
    supervised_batch_size: int = at_least(1, default=32)
    supervised_max_seconds: float = positive(default=180.0)


@dataclass
class PlotSection:
    utterance: int = 0             # which valid utterance to draw over its waveform


# wav2vec-U 2.0's shipped settings (train.method=gan2): each file is the one place of its defaults
GAN2_PREPARE = resource_path("configs", "features", "prepare_w2vu2_mfcc.yaml")
GAN2_GAN = resource_path("configs", "gan", "w2vu2.yaml")
GAN2_TEXT = resource_path("configs", "text", "w2vu2.yaml")


@dataclass
class Gan2Section:
    """wav2vec-U 2.0 (``train.method=gan2``): frames + MFCC-cluster targets (no segments), text with
    ``<SIL>`` probability 0.5 and the ``w2vu2`` GAN. Its settings are the shipped files above, changed
    by these dotted overrides (a partial YAML section would silently fall back to 1.0's defaults)."""

    prepare: list[str] = field(default_factory=list)  # overrides of configs/features/prepare_w2vu2_mfcc.yaml
    gan: list[str] = field(default_factory=list)      # overrides of configs/gan/w2vu2.yaml


def gan2_configs(section: Gan2Section) -> tuple[PrepareAudioConfig, GanConfig, float]:
    """(audio preparation, GAN config, <SIL> probability) of ``train.method=gan2``."""
    silence = load_config(TextConfig, GAN2_TEXT).silence.prob
    return (load_config(PrepareAudioConfig, GAN2_PREPARE, section.prepare),
            load_config(GanConfig, GAN2_GAN, section.gan), silence)


@dataclass
class TrainSection:
    """Which unsupervised method trains the phone recogniser, and its config."""

    # "decipher": statistics matching + decipherment HMM (wav2vec_u.decipher, w2vu decipher);
    # "gan": the wav2vec-U 1.0 GAN on segments (wav2vec_u.train), settings in train.gan;
    # "gan2": wav2vec-U 2.0 on frames with the auxiliary MFCC-cluster loss, settings in train.gan2.
    # The method's labels feed self-training.
    method: Literal["decipher", "gan", "gan2"] = "decipher"
    gan_rows: bool = True          # method=decipher: also train the 1.0 GAN, for its rows beside the method's
    # a second GAN whose generator first learns the method's labels (CTC on segments), then trains as a GAN
    warm_start_gan: bool = False
    seeds: list[int] = field(default_factory=lambda: [1])  # GAN: one run per seed; label-free choice across runs
    gan: GanConfig = field(default_factory=GanConfig)  # data paths and seed are set by the demo
    gan2: Gan2Section = field(default_factory=Gan2Section)
    decipher: DecipherRunConfig = field(default_factory=DecipherRunConfig)  # its own seeds and ensemble


@renamed(features="extract")  # was features.features.*; now the same spelling as prepare-audio's
@dataclass
class DemoConfig:
    lang: str = "en"
    sentences: str = ""            # "" = the shipped data/sentences/<lang>.txt
    run_self_train: bool = True    # the self-training stage (CTC on the method's labels) and its rows
    threads: int = at_least(1, default=1)  # torch threads; 1 is fastest for these small models on a busy 2-core CPU
    corpus: SynthConfig = field(default_factory=SynthConfig)        # corpus.lang is set from lang
    text: TextConfig = field(default_factory=TextConfig)            # text.lang is set from lang
    extract: ExtractConfig = field(default_factory=ExtractConfig)  # the "features" stage
    segments: SegmentsConfig = field(default_factory=SegmentsConfig)
    train: TrainSection = field(default_factory=TrainSection)
    decode: DecodeConfig = field(default_factory=DecodeConfig)          # decode.split is always valid
    self_train: SelfTrainRunConfig = field(default_factory=SelfTrainRunConfig)
    baselines: BaselineSection = field(default_factory=BaselineSection)
    plots: PlotSection = field(default_factory=PlotSection)


def load_demo_config(path: str | Path | None, overrides: list[str]) -> DemoConfig:
    """DemoConfig from YAML (+ dotted overrides); the nested component configs are typed too."""
    cfg = load_config(DemoConfig, path, overrides)
    if cfg.lang not in LANGS:
        raise ConfigError(f"lang: unknown demo language {cfg.lang!r} (shipped: {', '.join(LANGS)})")
    # One language setting: the demo's. The synthesiser's voice follows it.
    cfg.corpus.lang = LANGS[cfg.lang]
    cfg.text.lang = LANGS[cfg.lang]
    if not cfg.train.seeds:
        raise ConfigError("train.seeds: give at least one seed")
    if cfg.train.method == "gan2":
        gan2_configs(cfg.train.gan2)  # a bad override fails here, before any stage runs
    return cfg
