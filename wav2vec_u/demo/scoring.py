"""The demo's tables: every system's PER/WER against the held-back references, and the baselines' rows.

The references are read here and only here, after every label-free choice has been made.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wav2vec_u.demo.report import add_row
from wav2vec_u.tokens import read_token_lines
from wav2vec_u.metrics import error_rate, normalize_tokens, normalize_words, write_alignments


def score(refs: list[list[str]], hyps: list[list[str]], lower: bool = False):

    if len(refs) != len(hyps):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    norm = normalize_words if lower else normalize_tokens  # words: the text's normalisation, punctuation too
    return error_rate([norm(r) for r in refs], [norm(h) for h in hyps])


ROW_MOST_FREQUENT = "chance: most frequent phone"
ROW_KMEANS = "chance: k-means clusters -> phones by frequency rank"
ROW_SUPERVISED = "supervised upper bound (same generator, CTC on reference phones)"
ROW_TABLE = "decipher: statistics-matching table alone"
ROW_DECIPHER = "decipher (HMM, most likely phone per segment)"
ROW_DECIPHER_LM = "decipher + LM (lexicon + word 4-gram)"
ROW_WARM_CTC = "generator trained on the decipher labels (CTC), before the GAN"
ROW_WARM = "GAN warm-started from that generator (Viterbi)"
NO_WORDS = "not run: no lexicon/word LM from prepare-text"


def gan_rows(name: str = "GAN") -> tuple[str, str]:
    """The GAN's two rows ("GAN" for wav2vec-U 1.0, "GAN 2.0" for 2.0)."""
    return f"{name} (Viterbi)", f"{name} + LM (lexicon + word 4-gram)"


ROW_GAN, ROW_GAN_LM = gan_rows()


def self_train_rows(source: str) -> tuple[str, str]:
    """The two self-training rows' names, for labels from ``source`` ("GAN" or "decipher")."""
    return f"self-trained (CTC on {source} labels)", f"self-trained on {source} labels + LM"


@dataclass
class Row:
    """One system of a table: its hypothesis file (None or absent: the row says why it is empty)."""

    table: str                 # "per" or "wer"
    system: str
    hyp: Path | None
    note: str = ""
    missing: str = ""          # the note when there is no hypothesis file


def score_rows(results: dict[str, Any], corpus: Path, rows: list[Row], main: str, align_to: Path | None = None):
    """Fill the PER and WER tables from ``rows``; returns the stats of the PER row ``main`` (for the
    confusion plot) and writes its alignments to ``align_to``."""

    refs = read_token_lines(corpus / "valid.phn")
    words = read_token_lines(corpus / "valid.wrd")
    main_stats = None
    for r in rows:
        stats = _add_scored(results, refs, words, r)
        if stats is None:
            add_row(results, r.table, r.system, None, r.missing)
        elif r.table == "per" and r.system == main:
            main_stats = stats
    if main_stats is None:
        raise ValueError(f"the main system {main!r} has no scored PER row")
    if align_to is not None:
        write_alignments(align_to, main_stats, name="PER")
    return main_stats


def _add_scored(results: dict[str, Any], refs: list[list[str]] | None, words: list[list[str]] | None, r: Row):
    """Score ``r`` and add its row; None (nothing added) when it has no hypotheses or no references."""
    ref = refs if r.table == "per" else words
    if ref is None or r.hyp is None or not r.hyp.is_file():
        return None
    stats = score(ref, read_token_lines(r.hyp), lower=r.table == "wer")
    add_row(results, r.table, r.system, stats.to_dict(), r.note)
    return stats


def recipe_rows(results: dict[str, Any], corpus: Path, split: str, baselines: Path | None,
                systems: list[tuple[str, Path]]) -> None:
    """The demo's rows for a recipe's ``split``: baselines (``w2vu baselines``), then each system's
    ``w2vu decode`` folder (Viterbi phones; lexicon + word LM phones and words when decoded)."""

    refs = read_token_lines(corpus / f"{split}.phn", missing_ok=True)
    words = read_token_lines(corpus / f"{split}.wrd", missing_ok=True)
    if refs is None and words is None:
        raise FileNotFoundError(f"no references {corpus / (split + '.phn')} or .wrd: nothing to score "
                                "(`w2vu import-corpus` writes .wrd, `w2vu phonemize-refs` .phn)")
    rows: list[Row] = []
    if baselines is not None:
        rows += [Row("per", ROW_MOST_FREQUENT, baselines / f"{split}.most_frequent.hyp", "oracle length"),
                 Row("per", ROW_KMEANS, baselines / f"{split}.kmeans_rank.hyp", "no labels")]
    for name, decoded in systems:
        rows += [Row("per", f"{name} (Viterbi)", decoded / f"{split}.viterbi.phn", "checkpoint chosen without labels"),
                 Row("per", f"{name} + LM (lexicon + word 4-gram)", decoded / f"{split}.words.phn",
                     "LM weights tuned without labels"),
                 Row("wer", f"{name} + LM (lexicon + word 4-gram)", decoded / f"{split}.words.wrd")]
    if baselines is not None:
        rows.append(Row("per", ROW_SUPERVISED, baselines / f"{split}.supervised.hyp",
                        "uses labels: an upper bound, not a result"))
    for r in rows:
        _add_scored(results, refs, words, r)
