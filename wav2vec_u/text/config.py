"""Typed configuration of ``w2vu prepare-text`` (one section per step; defaults live only here).

    from wav2vec_u.config import load_config
    cfg = load_config(TextConfig, "configs/text/w2vu.yaml", ["silence.prob=0.5"])

Sources of the defaults: wav2vec-U paper Sec. 4 and the reference ``prepare_text.sh`` (fairseq
``examples/wav2vec/unsupervised``), see docs/text.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wav2vec_u.config import at_least, in_range, non_negative

@dataclass
class NormalizeConfig:
    lowercase: bool = True
    # "keep": espeak-ng reads digits as number words; "remove": delete digit tokens;
    # "drop_sentence": drop sentences that contain a digit.
    digits: Literal["keep", "remove", "drop_sentence"] = "keep"


@dataclass
class FilterConfig:
    min_words: int = non_negative(default=1)  # sentences with fewer words (after normalisation) are dropped
    max_words: int = non_negative(default=0)  # 0: no upper limit
    charset: str = ""           # regex character-class body of allowed characters, e.g. "a-z'"; "" = any
    dedup: bool = True          # drop repeated (normalised) sentences, keeping the first
    # Scripts a line's letters may be in: ["auto"] = those of `lang` (text.normalize.LANGUAGE_SCRIPTS),
    # ["any"] = no check, or names like ["LATIN", "GREEK"]. Other lines are dropped and listed in
    # foreign_script.tsv: espeak-ng would read their letters by name ("chinese letter").
    scripts: list[str] = field(default_factory=lambda: ["auto"])


@dataclass
class PhonemizeConfig:
    with_stress: bool = False   # paper Sec. 4 / reference: phones without stress marks
    # "sentence": phonemise whole sentences (what espeak-ng says for the sentence; equals
    # phonemizer's output); "lexicon": each word's lexicon pronunciation, as the reference's
    # phonemize_with_sil.py builds the phone text.
    phones_from: Literal["sentence", "lexicon"] = "sentence"
    chunk_size: int = at_least(1, default=1000)  # sentences per cached unit of work
    njobs: int = at_least(1, default=2)  # worker processes


@dataclass
class PhonesConfig:
    # Phones seen fewer than min_count times are rare (reference README example: 1000, counted
    # over the lexicon, i.e. once per word type; 0 keeps every phone).
    min_count: int = non_negative(default=0)
    count_over: Literal["lexicon", "corpus"] = "lexicon"
    # "drop_sentence": drop lexicon entries and sentences with a rare phone (the reference's
    # filter_lexicon.py + phonemize_with_sil.py); "map": replace rare phones with map_to.
    rare: Literal["drop_sentence", "map"] = "drop_sentence"
    map_to: str = ""


@dataclass
class SilenceConfig:
    prob: float = in_range(0.0, 1.0, default=0.25)  # paper Sec. 4: <SIL> between words with probability 0.25 (2.0: 0.5)
    surround: bool = True       # reference phonemize_with_sil.py --surround: <SIL> at both ends
    seed: int = 1


@dataclass
class LexiconConfig:
    # Words seen fewer times get no lexicon entry (the reference keeps words seen >= 2 times,
    # fairseq preprocess --thresholdsrc 2); with phones_from=lexicon their sentences are dropped.
    min_word_count: int = non_negative(default=1)


@dataclass
class LMConfig:
    build: bool = True
    phone_order: int = at_least(1, default=4)  # docs/method.md: phone 4-gram for model selection
    phone_prune: list[int] = non_negative(default_factory=list)  # reference: no pruning
    word_order: int = at_least(1, default=4)  # docs/method.md: word 4-gram for decoding
    word_prune: list[int] = non_negative(default_factory=lambda: [0, 0, 0, 3])  # reference kenlm.wrd.o40003
    discount_fallback: bool = True  # reference uses it; small corpora fail without it
    memory: str = "1G"          # lmplz -S (its default, 80% of RAM, is unfriendly on shared machines)
    binary: bool = True         # also write KenLM binary (build_binary)


@dataclass
class TextConfig:
    lang: str = "en-us"         # espeak-ng language code (espeak-ng --voices)
    lexicon: str = ""           # user lexicon "word<TAB>p1 p2 ..." instead of espeak-ng
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    phonemize: PhonemizeConfig = field(default_factory=PhonemizeConfig)
    phones: PhonesConfig = field(default_factory=PhonesConfig)
    silence: SilenceConfig = field(default_factory=SilenceConfig)
    lexicon_words: LexiconConfig = field(default_factory=LexiconConfig)
    lm: LMConfig = field(default_factory=LMConfig)
