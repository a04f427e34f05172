"""The demo's tables: every system's PER/WER against the held-back references, and the baselines' rows.

The references are read here and only here, after every label-free choice has been made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wav2vec_u.demo.report import add_row
from wav2vec_u.tokens import read_token_lines
from wav2vec_u.metrics import error_rate, normalize_tokens, write_alignments


def score(refs: list[list[str]], hyps: list[list[str]], lower: bool = False):

    if len(refs) != len(hyps):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    return error_rate([normalize_tokens(r, lower=lower) for r in refs], [normalize_tokens(h, lower=lower) for h in hyps])


ROW_MOST_FREQUENT = "chance: most frequent phone"


ROW_KMEANS = "chance: k-means clusters -> phones by frequency rank"


ROW_SUPERVISED = "supervised upper bound (same generator, CTC on reference phones)"


def score_rows(results: dict[str, Any], corpus: Path, decoded: Path, st_dir: Path | None, chance: Path,
               upper: Path, decipher: Path | None = None, gan_name: str = "GAN"):
    """Fill the PER and WER tables; returns the stats of the main system (for the confusion plot).

    ``gan_name`` names the GAN rows ("GAN 2.0" for wav2vec-U 2.0, ``train.method=gan2``)."""

    refs = read_token_lines(corpus / "valid.phn")
    words = read_token_lines(corpus / "valid.wrd")

    def row(table: str, system: str, hyp_file: Path | None, note: str, missing: str):
        if hyp_file is None or not hyp_file.is_file():
            add_row(results, table, system, None, missing)
            return None
        stats = score(refs if table == "per" else words, read_token_lines(hyp_file), lower=table == "wer")
        add_row(results, table, system, stats.to_dict(), note)
        return stats

    no_words = "not run: no lexicon/word LM from prepare-text"
    row("per", ROW_MOST_FREQUENT, chance / "most_frequent.hyp", "oracle length", "")
    row("per", ROW_KMEANS, chance / "kmeans_rank.hyp", "no labels", "")
    main = row("per", f"{gan_name} (Viterbi)", decoded / "valid.viterbi.phn", "checkpoint chosen without labels", "")
    row("per", f"{gan_name} + LM (lexicon + word 4-gram)", decoded / "valid.words.phn", "LM weights tuned without labels",
        no_words)
    st = st_dir / "valid.st.phn" if st_dir else None
    row("per", "self-trained (CTC on GAN labels)", st, "no labels", "not run (run_self_train=false)")
    st_words = st_dir / "decode" / "valid.words.phn" if st_dir else None
    row("per", "self-trained + LM", st_words, "LM weights tuned without labels", no_words)
    if decipher is not None:
        row("per", "decipher HMM (EM on k-means units, research option)", decipher / "valid.hyp", "no labels", "")
    row("per", ROW_SUPERVISED, upper / "supervised.hyp", "uses labels: an upper bound, not a result", "")
    row("wer", f"{gan_name} + LM (lexicon + word 4-gram)", decoded / "valid.words.wrd", "", no_words)
    row("wer", "self-trained + LM", st_dir / "decode" / "valid.words.wrd" if st_dir else None, "", no_words)
    write_alignments(decoded / "valid.per.align.txt", main, name="PER")
    return main
