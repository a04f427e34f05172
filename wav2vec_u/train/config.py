"""Typed config of the wav2vec-U GAN: one section per component, each receives only its own.

Defaults here are wav2vec-U 1.0's (fairseq config ``w2vu``, paper Sec. 4/5); the YAML file
``configs/gan/w2vu.yaml`` restates them with their sources, ``configs/gan/w2vu2.yaml`` sets
wav2vec-U 2.0's (frame features, auxiliary targets)::

    from wav2vec_u.config import load_config
    from wav2vec_u.train.config import GanConfig
    cfg = load_config(GanConfig, "configs/gan/w2vu.yaml", ["trainer.max_updates=1000"])
    generator = Generator(input_dim, num_phones, cfg.generator)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from wav2vec_u.config import at_least, in_range, non_negative, positive
from wav2vec_u.models.config import DiscriminatorConfig, GeneratorConfig, LossConfig


@dataclass
class DataConfig:
    features: str = ""  # segment feature dir (fairseq layout: {split}.npy + {split}.lengths [+ {split}.phn])
    text: str = ""  # prepare-text output dir (phones.txt, dict.phn.txt, lm.phones.4.bin|arpa)
    train_split: str = "train"
    valid_split: str = "valid"  # validation skipped when the split is absent
    batch_size: int = at_least(1, default=160)  # utterances per update (global: divided over DDP ranks)
    text_batch_size: int = non_negative(default=0)  # sentences of real text per update; 0 = same as batch_size
    # crop longer utterances to this many segments (random window); 0 = no crop
    max_segments: int = non_negative(default=0)
    # How batches are drawn: "epoch" = a fresh permutation of the utterances and of the sentences each
    # epoch, fixed batch sizes (ours); "reference" = fairseq's: feature batches built once (the last one
    # smaller; see sort_by_length), only their order shuffled per epoch, and one random
    # sentence per utterance drawn with replacement (train.data.LengthBatchSampler, ReplacementSampler)
    sampling: Literal["epoch", "reference"] = "epoch"
    # sampling=reference: cut the batches from the utterances sorted by length (fairseq's task default) or
    # from a seeded random permutation (false: the reference's w2vu.yaml sets task.sort_by_length false)
    sort_by_length: bool = False
    text_file: str = "phones.txt"  # the unpaired phone text inside the text dir (with <SIL>)
    # 2.0: suffix of the auxiliary target files beside the features ({split}.km, one line per utterance:
    # the k-means id of every MFCC frame; reference task.aux_target_postfix: km); read when loss.aux_weight > 0
    aux_targets: str = ""
    # targets per feature frame: every n-th id is kept (reference target_downsample_rate 2: 100 Hz MFCC
    # ids -> 50 Hz wav2vec 2.0 frames); prepare-audio's {suffix}.json records the ratio and is checked
    aux_downsample: int = at_least(1, default=2)


@dataclass
class OptimConfig:
    lr_g: float = positive(default=4e-4)  # w2vu: generator lr 0.0004
    lr_d: float = positive(default=5e-4)  # w2vu: discriminator lr 0.0005
    betas: tuple[float, float] = in_range(0.0, 1.0, default=(0.5, 0.98), hi_open=True)  # w2vu: adam_betas
    eps: float = positive(default=1e-6)  # w2vu: adam_eps
    weight_decay_g: float = non_negative(default=0.0)  # w2vu: generator weight_decay 0
    weight_decay_d: float = non_negative(default=1e-4)  # w2vu: discriminator weight_decay 0.0001
    clip_norm: float = positive(default=5.0)  # w2vu: clip_norm 5.0
    # Gradients before clipping: "sum" clips the gradient of the summed loss as it is (ours);
    # "per_utterance" first divides every gradient by the batch's number of utterances, as the
    # reference's trainer does (fairseq trainer.py multiplies all grads by 1/sample_size, sample_size =
    # B). Adam is scale-free, so this changes only how often clip_norm bites (and eps's weight).
    grad_scale: Literal["sum", "per_utterance"] = "sum"
    # Whose gradients the clip norm covers: "model" = the model being stepped (ours); "both" = G's and
    # D's together on every step, the other model's gradients of the same loss included (reference: one
    # composite optimiser clips all parameters; G is not detached in D steps, D not frozen in G steps)
    clip_scope: Literal["model", "both"] = "model"
    # Weight decay: False = L2 added to the gradient (torch Adam, ours); True = decoupled, p -= lr * wd * p
    # before the Adam step (torch AdamW; reference: fairseq optim/adam.py)
    decoupled_weight_decay: bool = False
    d_steps: int = at_least(1, default=1)  # D updates per G update (reference alternates: 1)


@dataclass
class TrainerConfig:
    max_updates: int = at_least(1, default=150_000)  # w2vu: max_update 150000 (one update = one D or one G step)
    validate_every: int = at_least(1, default=1000)  # w2vu: validate_interval_updates 1000
    save_every: int = at_least(1, default=1000)  # w2vu: save_interval_updates 1000
    log_every: int = at_least(1, default=100)  # updates between metrics.jsonl rows
    seed: int = 1
    device: str = "cpu"  # "cuda", "cuda:1", ...; the trainer never assumes one
    amp: bool = False  # bf16 autocast on CUDA
    static_shapes: bool = False  # pad batches to fixed sizes: no host sync per update (for GPUs)
    num_samples: int = non_negative(default=3)  # sample decodings logged at validation
    progress: bool = True  # tqdm bar with updates/s
    resume: bool = True  # continue from <outdir>/last.pt when it exists
    # A generator start from w2vu.train.warm_start.write_generator_init (e.g. CTC on pseudo-labels):
    # applied to a fresh run only (a resumed run keeps its checkpoint's weights). "" = random start.
    init_generator: str = ""
    # Divergence guard: training stops (exit code 3, no checkpoint written) when an update's |loss|
    # exceeds max_loss or NaN/inf appears. The losses are sums over the batch (BCE, gradient penalty,
    # batch-scaled smoothness and code penalties), so a healthy run scales with the batch size:
    # measured on the toy cipher, the largest |loss| of 300-400 updates was 250 at batch 8 and 4,994
    # at the reference batch 160 (w2vu.yaml), i.e. ~31 per utterance. 1e6 leaves 30x that even for
    # a batch of 1,000 and still stops a run at lr=1000 (loss 1e21-1e28) at its first check.
    max_loss: float = positive(default=1e6)
    # Updates of one model (D or G) in a row whose gradient norm is inf/NaN before training stops.
    # Clipping turns such an update into a zero step, so a single one is survivable; a healthy fp32
    # run never has one (the norm overflows only at gradients near 1e19). At lr=1000 every D update
    # has one, so 3 in a row means the model has left the number range.
    max_nonfinite_grads: int = at_least(1, default=3)


@dataclass
class GanConfig:
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


@dataclass
class SlurmConfig:
    """Where ``w2vu sweep --launcher slurm`` submits (submitit's ``slurm_*`` parameters)."""

    partition: str = ""  # "" = the cluster's default partition
    timeout_min: int = at_least(1, default=24 * 60)  # per job (one stack); pre-empted/timed-out jobs requeue
    gpus_per_node: int = non_negative(default=0)
    cpus_per_task: int = at_least(1, default=2)
    mem_gb: int = at_least(1, default=16)
    array_parallelism: int = at_least(1, default=64)  # jobs of the array running at once
    account: str = ""
    qos: str = ""


@dataclass
class SweepConfig:
    """A grid of GAN runs (``w2vu sweep``): every combination of ``grid`` values, for every seed.

    ``grid`` maps a dotted GanConfig key to its values, e.g.
    ``{"loss.gradient_penalty": [1.5, 2.0], "optim.lr_g": [0.0004, 0.001]}``; runs that differ only
    in seeds, learning rates, betas, eps, weight decay, clip norm and loss weights train as one
    stacked model (``wav2vec_u.train.stacked.PER_MEMBER``), the others as separate stacks.
    """

    seeds: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])  # reference README: 5 seeds per setting
    grid: dict[str, list[Any]] = field(default_factory=dict)
    tolerance: float = positive(default=1.2)  # paper Eq. 6: the 1.2 of the cross-run selection
    stack_size: int = non_negative(default=0)  # at most this many runs per stacked model; 0 = no limit
    launcher: Literal["none", "local", "slurm"] = "none"  # none: this process; local/slurm: submitit jobs
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
