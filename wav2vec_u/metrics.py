"""Token error rates (PER, WER) with substitution/insertion/deletion counts and alignments.

The rate is the Levenshtein distance between reference and hypothesis token sequences,
summed over utterances, divided by the number of reference tokens (the usual corpus-level
PER/WER, as sclite and the wav2vec-U paper report it)::

    from wav2vec_u.metrics import error_rate, write_alignments
    stats = error_rate([["a", "b", "c"]], [["a", "x"]])
    stats.rate          # 2/3: one substitution (b->x), one deletion (c)
    stats.sub, stats.ins, stats.dele, stats.ref_len   # 1, 0, 1, 3
    write_alignments("per.align.txt", stats, ids=["utt0"])

Empty sequences:
- an empty hypothesis against a non-empty reference is all deletions;
- an empty reference against a non-empty hypothesis is all insertions (they count in the
  corpus numerator; the utterance adds nothing to the denominator);
- if the WHOLE corpus has no reference tokens (``ref_len == 0``), ``rate`` is 0.0 when there
  are no errors and ``inf`` when there are insertions (errors over nothing is not a number we
  can pretend is finite); ``to_dict`` writes the undefined case as ``null``.

Normalisation (``normalize_tokens``) is applied by the callers that read text files
(lower-casing for words, dropping ``<SIL>``-like tokens for phones); ``error_rate`` compares the
tokens it is given exactly.

When several minimal alignments exist the backtrace prefers a match/substitution, then a
deletion, then an insertion, so the counts are deterministic; their sum is always the edit
distance (checked against ``editdistance`` in the tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from wav2vec_u.io import atomic_write_text
from wav2vec_u.tokens import SPECIAL_TOKENS
from wav2vec_u.io import write_json
from wav2vec_u.tokens import read_token_lines



# One aligned position: (reference token or None, hypothesis token or None, op)
# op: "C" correct, "S" substitution, "I" insertion (ref None), "D" deletion (hyp None).
AlignedPair = tuple  # (str | None, str | None, str)


@dataclass
class UttAlignment:
    pairs: list[AlignedPair]
    sub: int = 0
    ins: int = 0
    dele: int = 0
    ref_len: int = 0

    @property
    def errors(self) -> int:
        return self.sub + self.ins + self.dele


@dataclass
class ErrorStats:
    """Corpus-level counts. ``rate`` = (sub + ins + dele) / ref_len (see module doc for 0)."""

    sub: int = 0
    ins: int = 0
    dele: int = 0
    ref_len: int = 0
    hyp_len: int = 0
    num_utts: int = 0
    utts_with_errors: int = 0
    alignments: list[UttAlignment] = field(default_factory=list, repr=False)

    @property
    def errors(self) -> int:
        return self.sub + self.ins + self.dele

    @property
    def rate(self) -> float:
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else math.inf
        return self.errors / self.ref_len

    @property
    def correct(self) -> int:
        return self.ref_len - self.sub - self.dele

    def to_dict(self) -> dict:
        rate = self.rate
        return {
            "rate": rate if math.isfinite(rate) else None,
            "errors": self.errors,
            "sub": self.sub,
            "ins": self.ins,
            "del": self.dele,
            "ref_len": self.ref_len,
            "hyp_len": self.hyp_len,
            "num_utts": self.num_utts,
            "utt_error_rate": self.utts_with_errors / self.num_utts if self.num_utts else 0.0,
        }

    def summary(self, name: str = "ER") -> str:
        rate = self.rate
        pct = f"{100 * rate:.2f}%" if math.isfinite(rate) else "undefined (no reference tokens)"
        return (f"{name} {pct} = {self.errors}/{self.ref_len} "
                f"(sub {self.sub}, ins {self.ins}, del {self.dele}; {self.num_utts} utterances)")


def align(ref: Sequence[str], hyp: Sequence[str]) -> UttAlignment:
    """Minimal-edit alignment of two token sequences (unit costs), with S/I/D counts."""
    n, m = len(ref), len(hyp)
    # d[i][j] = distance between ref[:i] and hyp[:j]
    d = [list(range(m + 1))]
    for i in range(1, n + 1):
        prev = d[i - 1]
        row = [i] + [0] * m
        r = ref[i - 1]
        for j in range(1, m + 1):
            diag = prev[j - 1] + (0 if r == hyp[j - 1] else 1)
            up = prev[j] + 1       # deletion of ref[i-1]
            left = row[j - 1] + 1  # insertion of hyp[j-1]
            row[j] = min(diag, up, left)
        d.append(row)
    pairs: list[AlignedPair] = []
    sub = ins = dele = 0
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (0 if ref[i - 1] == hyp[j - 1] else 1):
            same = ref[i - 1] == hyp[j - 1]
            pairs.append((ref[i - 1], hyp[j - 1], "C" if same else "S"))
            sub += 0 if same else 1
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            pairs.append((ref[i - 1], None, "D"))
            dele += 1
            i -= 1
        else:
            pairs.append((None, hyp[j - 1], "I"))
            ins += 1
            j -= 1
    pairs.reverse()
    return UttAlignment(pairs=pairs, sub=sub, ins=ins, dele=dele, ref_len=n)


def error_rate(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]) -> ErrorStats:
    """Corpus error rate of ``hyps`` against ``refs`` (lists of token lists, same length).

    The returned stats keep the per-utterance alignments (``.alignments``) for writing.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses: they must pair up one to one")
    stats = ErrorStats()
    for ref, hyp in zip(refs, hyps):
        if isinstance(ref, str) or isinstance(hyp, str):
            raise TypeError("error_rate takes token lists (e.g. line.split()), not strings")
        a = align(list(ref), list(hyp))
        stats.alignments.append(a)
        stats.sub += a.sub
        stats.ins += a.ins
        stats.dele += a.dele
        stats.ref_len += a.ref_len
        stats.hyp_len += len(hyp)
        stats.num_utts += 1
        stats.utts_with_errors += a.errors > 0
    return stats


def normalize_tokens(tokens: Iterable[str], *, lower: bool = False,
                     drop: frozenset[str] | set[str] = SPECIAL_TOKENS) -> list[str]:
    """Drop silence/special tokens and optionally lower-case (the usual PER/WER normalisation)."""
    out = []
    for t in tokens:
        if t in drop:
            continue
        out.append(t.lower() if lower else t)
    return out


def normalize_words(tokens: Iterable[str], *, drop: frozenset[str] | set[str] = SPECIAL_TOKENS) -> list[str]:
    """Words as ``w2vu prepare-text`` writes its word text: special tokens dropped, then the text
    normalisation of the unpaired text (NFKC, lower case, punctuation removed, apostrophes and
    inner hyphens kept; :func:`wav2vec_u.text.normalize.normalize_line`). Raw references
    (``"Hello, world."``) and decoder output (``hello world``) so compare word for word."""
    from wav2vec_u.text.normalize import normalize_line

    return normalize_line(" ".join(t for t in tokens if t not in drop)).split()


def format_alignment(a: UttAlignment, utt_id: str | int) -> str:
    """Three aligned rows (REF / HYP / OP), sclite-like, ``***`` marking a gap."""
    refs, hyps, ops = [], [], []
    for r, h, op in a.pairs:
        r = "***" if r is None else r
        h = "***" if h is None else h
        w = max(len(r), len(h), 1)
        refs.append(r.ljust(w))
        hyps.append(h.ljust(w))
        ops.append(op.ljust(w))
    return (f"id: {utt_id}  errors {a.errors}/{a.ref_len} (S {a.sub} I {a.ins} D {a.dele})\n"
            f"REF: {' '.join(refs)}\nHYP: {' '.join(hyps)}\nOP:  {' '.join(ops)}\n")


def write_alignments(path: str | Path, stats: ErrorStats, ids: Sequence[str | int] | None = None,
                     name: str = "ER") -> Path:
    """Write every utterance's alignment plus the corpus summary (atomically)."""
    if ids is None:
        ids = list(range(len(stats.alignments)))
    if len(ids) != len(stats.alignments):
        raise ValueError(f"{len(ids)} ids for {len(stats.alignments)} alignments")
    parts = [f"# {stats.summary(name)}\n"]
    parts += [format_alignment(a, i) + "\n" for a, i in zip(stats.alignments, ids)]
    return atomic_write_text(path, "".join(parts))


def score_files(hyp: str | Path, ref: str | Path, *, words: bool = False, align: str | Path | None = None,
                json_out: str | Path | None = None) -> dict:
    """PER (or WER with ``words``) of a hypothesis file against a reference file, line by line."""

    hyp, ref = Path(hyp), Path(ref)
    h_lines, r_lines = read_token_lines(hyp), read_token_lines(ref)
    if len(h_lines) != len(r_lines):
        raise ValueError(f"{hyp} has {len(h_lines)} lines but {ref} has {len(r_lines)}: "
                         "they must list the same utterances in the same order")
    norm = normalize_words if words else normalize_tokens
    hyps = [norm(x) for x in h_lines]
    refs = [norm(x) for x in r_lines]
    stats = error_rate(refs, hyps)
    name = "WER" if words else "PER"
    if align:
        write_alignments(align, stats, name=name)
    out = {"metric": name, "hyp": str(hyp), "ref": str(ref), **stats.to_dict()}
    if json_out:
        write_json(json_out, out)
    out["summary"] = stats.summary(name)
    return out
