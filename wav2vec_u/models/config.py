"""Typed configs of the GAN's models and losses (generator, discriminator, penalties).

Defaults are wav2vec-U 1.0's (fairseq config ``w2vu``, paper Sec. 4/5); the training config
(:class:`wav2vec_u.train.config.GanConfig`) nests them::

    from wav2vec_u.models.config import GeneratorConfig
    generator = Generator(input_dim, num_phones, GeneratorConfig(kernel=4))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wav2vec_u.config import at_least, in_range, non_negative, positive


@dataclass
class GeneratorConfig:
    kernel: int = at_least(1, default=4)  # fairseq w2vu: generator_kernel 4
    stride: int = at_least(1, default=1)  # w2vu: 1 (2.0 uses 3)
    dropout: float = in_range(0.0, 1.0, default=0.1, hi_open=True)  # w2vu: generator_dropout 0.1 on the input
    bias: bool = False  # w2vu: generator_bias false
    batch_norm: bool = False  # 2.0 (w2vu2: generator_batch_norm 30): input BatchNorm over the unpadded frames
    batch_norm_weight: float = 30.0  # w2vu2: generator_batch_norm 30 = the BatchNorm weight's initial value
    residual: bool = False  # 2.0 (w2vu2: generator_residual true): x + Linear(dropout(x)), dim -> dim, before the conv
    # 2.0 (w2vu2: target_dim 64): a linear head on the residual branch's output predicting this many
    # k-means classes (the auxiliary loss, loss.aux_weight); 0 = no head (1.0). Needs residual.
    aux_classes: int = non_negative(default=0)
    init_std: float = non_negative(default=0.0)  # 0 = PyTorch's default conv init; >0 = normal(0, init_std)
    # What D sees of the generated phones: "softmax" (reference), "straight_through" (one-hot
    # of the argmax forward, softmax gradient backward) or "gumbel" (straight-through Gumbel).
    output: Literal["softmax", "straight_through", "gumbel"] = "softmax"
    temperature: float = positive(default=1.0)  # softmax temperature of what D sees (reference: 1, no Gumbel)
    # Extra outputs before the phones that never occur in real text: the first n of fairseq's specials
    # <s> <pad> </s> <unk> (tokens.output_symbols). 0 = one output per dict.phn.txt symbol (ours); 4 = the
    # reference's (its generator has len(target_dict) outputs, fairseq's 4 specials first; models/wav2vec_u.py
    # output_size). They count in the code penalty's V and in D's input; decoding drops a predicted one.
    special_outputs: int = in_range(0, 4, default=0)


@dataclass
class DiscriminatorConfig:
    dim: int = at_least(1, default=384)  # w2vu: discriminator_dim 384
    kernel: int = at_least(1, default=6)  # w2vu: discriminator_kernel 6
    depth: int = at_least(1, default=2)  # w2vu: discriminator_depth 2 (one inner conv + GELU)
    dropout: float = in_range(0.0, 1.0, default=0.0, hi_open=True)  # w2vu: discriminator_dropout 0
    causal: bool = True  # w2vu: discriminator_causal true
    spectral_norm: bool = False  # not in the reference; an option for GAN stability
    # What D's input holds at padded positions: "zeros" for real text and generated output (ours);
    # "reference" = one-hot at fairseq's pad index (1) for real text, uniform over all outputs for generated
    # (the softmax of the reference's zero joined logits), the generated side padded to the reference's joined
    # length (join.reference_runs). D's output is masked there either way, so with a causal D only the
    # gradient penalty's interpolation sees them. Needs generator.special_outputs >= 2 (the pad output).
    padding: Literal["zeros", "reference"] = "zeros"


@dataclass
class LossConfig:
    gradient_penalty: float = non_negative(default=1.5)  # w2vu: gradient_penalty 1.5 (D step only)
    gp_norm: Literal["time", "sample"] = "time"  # reference: norm over the time axis; "sample" = textbook WGAN-GP
    smoothness: float = non_negative(default=0.5)  # w2vu: smoothness_weight 0.5 (G step only)
    code_penalty: float = non_negative(default=4.0)  # w2vu: code_penalty 4.0 (G step only)
    # What the smoothness and code penalties see: "segments" = the generator's logits before the join,
    # unpadded positions only (ours); "joined" = the joined logits, with the reference's counting: the
    # code penalty's mean softmax also counts the padded joined positions (zero logits: uniform), the
    # smoothness mean runs over B x (R - 1) x V, R the reference's joined length (join.reference_runs)
    penalty_input: Literal["segments", "joined"] = "segments"
    code_penalty_final: float = -1.0  # <0: constant; else linear anneal to this value over code_penalty_anneal updates
    code_penalty_anneal: int = non_negative(default=0)  # updates; 0 = no anneal
    # mix one-hot text with uniform by this much (0 = reference)
    real_label_smoothing: float = in_range(0.0, 1.0, default=0.0)
    # 2.0 (w2vu2: mmi_weight 0.5): weight of the auxiliary loss, G step only: the generator's residual
    # branch predicts the k-means ids of MFCC frames (data.aux_targets); 0 = none (1.0)
    aux_weight: float = non_negative(default=0.0)
