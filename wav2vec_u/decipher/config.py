"""The decipherment method's typed config: units, statistics matching, the HMM, seeds and selection.

    cfg = load_config(DecipherRunConfig, resource_path("configs", "decipher", "default.yaml"), ["seeds=[1,2,3]"])

Every default here is the setting measured on the English demo (docs/demo-findings.md,
"Statistics matching from a near-uniform start"); configs/decipher/default.yaml restates them
with their sources.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal
from wav2vec_u.audio.segmenters import ChangeSegmenterConfig
from wav2vec_u.config import at_least, non_negative
from wav2vec_u.decipher.hmm import HmmConfig
from wav2vec_u.decipher.stats_match import MatchConfig
from wav2vec_u.self_train.run import SelfTrainRunConfig


@dataclass
class UnitsConfig:
    segmenter: ChangeSegmenterConfig = field(default_factory=ChangeSegmenterConfig)
    k: int = at_least(2, default=128)     # k-means units over segment means; findings: 256 is worse (75% vs 52%)
    niter: int = at_least(1, default=20)  # k-means iterations (MFCC segment clusters converge fast)
    # segmenter min_gap values to try, each with every seed; the one ``segmentation_by`` prefers makes the
    # model ([]: segmenter.min_gap alone). Measured: 1 is right on the 1,000-utterance demos, 2 at 250
    # utterances and on the held-aside corpus (docs/demo-findings.md)
    min_gap_candidates: list[int] = field(default_factory=lambda: [1, 2])
    # the HMM's self-loop for each candidate (same length), or [] for hmm.self_loop with every one: coarser
    # segments span fewer units per phone, so they want a lower self-loop (measured: 0.3 at min_gap 1, 0.2 at 2)
    self_loop_candidates: list[float] = field(default_factory=lambda: [0.3, 0.2])
    # how the segmentation is chosen among the candidates: the phone-LM metric of a CTC model self-trained on
    # each one's labels (self_train: the model reads the frames, so the scores compare across segmentations;
    # right on all 4 corpora measured), the lowest matching loss of its seeds (3 of 4) or the best refined
    # seed's phone-LM metric (2 of 4; docs/demo-findings.md, "Choosing the segmentation without labels")
    segmentation_by: Literal["self_train", "match_loss", "weighted_lm_ppl"] = "self_train"


def _hmm_defaults() -> HmmConfig:
    # 1.05-1.16 spectral segments per phone: a phone rarely spans three units, so a low self-loop
    # (0.2 measured with 0.95 segments per phone); EM still improved at pass 16 on the demo
    # (50.7% at 12 -> 48.4% at 16)
    return HmmConfig(order=3, self_loop=0.3, iters=16)


def scoring_self_train() -> SelfTrainRunConfig:
    """The self-training that scores a segmentation: the demo's small CTC head (128 wide, 50 Hz outputs,
    3 epochs: ~1.5 min on the demo's 1,000 utterances) and no word decoding (only its phone-LM metric is read)."""
    st = SelfTrainRunConfig(decode_words=False)
    model = dataclasses.replace(st.ctc.model, hidden=128, subsample=2)
    return dataclasses.replace(st, ctc=dataclasses.replace(st.ctc, model=model, epochs=3, min_updates=0))


@dataclass
class DecipherRunConfig:
    units: UnitsConfig = field(default_factory=UnitsConfig)
    match: MatchConfig = field(default_factory=MatchConfig)
    hmm: HmmConfig = field(default_factory=_hmm_defaults)  # hmm.seed is set from each of ``seeds``
    # per seed: k-means units and statistics matching (cheap); EM for the ``refine`` seeds with the
    # lowest matching loss; those within ``ensemble_tolerance`` by the phone-LM metric make the model
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6])
    refine: int = at_least(1, default=3)  # seeds refined by EM (the lowest matching losses)
    # the model's members: the refined seeds whose labels' phone-LM metric (weighted_lm_ppl) is within this
    # factor of the best one's (paper Eqs. 5-6 use 1.2 likewise); their posteriors are combined
    ensemble_tolerance: float = at_least(1.0, default=1.2)
    train_split: str = "train"
    valid_split: str = "valid"            # "" for none: labels for train only
    max_em_utts: int = non_negative(default=0)  # EM on at most this many training utterances (0: all)
    # units.segmentation_by=self_train: how each candidate's labels are self-trained to score it (the demo sets
    # its own self_train section here, so the chosen candidate's model is the demo's self-trained model)
    self_train: SelfTrainRunConfig = field(default_factory=lambda: scoring_self_train())
    workers: int = at_least(1, default=2)  # seeds in this many processes at once (one thread each; 2 cores here)
