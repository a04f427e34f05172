"""Unpaired text -> phone text with silences, phone dictionary, lexicon, phone and word KenLM LMs.

    from wav2vec_u.text.prepare import prepare_text
    meta = prepare_text("data/sentences/en.txt", "out/text", lang="en-us")

Steps (docs/text.md has the details and the reference each follows):

1. read the input as strict UTF-8 (a bad byte is an error naming the line and byte offset);
2. normalise (NFKC, case, punctuation, digits), filter by length and charset, de-duplicate;
3. phones: espeak-ng on whole sentences (or each word's lexicon entry; or a user lexicon);
   chunks run in parallel and are cached under ``OUTDIR/.cache`` so an interrupted run resumes;
4. lexicon of the text's words; phones seen fewer than ``phones.min_count`` times are dropped
   with their sentences (or mapped to another phone);
5. ``<SIL>`` at both ends and between words with probability ``silence.prob`` (seeded);
6. ``dict.phn.txt`` with counts and ``phones.summary.tsv``; KenLM phone and word 4-grams.

Everything is written to a work folder inside OUTDIR and moved into place at the end, so a
failed run leaves no partial outputs; a rerun with the same input and options does nothing.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from wav2vec_u.config import ConfigError, to_dict
from wav2vec_u.io import atomic_write_text, read_json, sha256_file, write_json
from wav2vec_u.stage import fingerprint, run_stage
from wav2vec_u.text.config import TextConfig
from wav2vec_u.text.dictionary import PhoneDictionary
from wav2vec_u.text.normalize import normalize_line
from wav2vec_u.text.silence import SIL, gap_silences, insert_silence
from wav2vec_u.text.lexicon import pronounce_words, read_lexicon, write_lexicon
from wav2vec_u.text.lm import build_lm, check_prune, find_kenlm_binary
from wav2vec_u.text.normalize import expected_scripts, scripts_of
from wav2vec_u.text.phonemize import check_language, decode_words, espeak_version, phonemize_corpus, phonemizer_version
from wav2vec_u.tracking import provenance

log = logging.getLogger("wav2vec_u.text")

# Bump when the code changes what it writes, so an old output is not taken as current.
TEXT_VERSION = 1


def iter_utf8_lines(path: str | Path) -> Iterator[str]:
    """Lines of a UTF-8 text file, streamed; a bad byte raises ValueError naming the line and byte offset."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file not found: {path}")
    offset = 0
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}: not UTF-8 at line {n}, byte offset {offset + exc.start} "
                                 f"(byte 0x{raw[exc.start]:02x}); convert it, e.g. `iconv -f LATIN1 -t UTF-8`") from None
            offset += len(raw)


def read_utf8_lines(path: str | Path) -> list[str]:
    return list(iter_utf8_lines(path))


def resolve_config(cfg: TextConfig | None = None, *, lang: str | None = None, lexicon: str | Path | None = None,
                   sil_prob: float | None = None, min_phone_count: int | None = None, lm_order: int | None = None,
                   seed: int | None = None) -> TextConfig:
    """``cfg`` (defaults if None) with the keyword shortcuts applied."""
    cfg = cfg or TextConfig()
    if lang is not None:
        cfg = replace(cfg, lang=lang)
    if lexicon is not None:
        cfg = replace(cfg, lexicon=str(lexicon))
    if sil_prob is not None:
        cfg = replace(cfg, silence=replace(cfg.silence, prob=float(sil_prob)))
    if seed is not None:
        cfg = replace(cfg, silence=replace(cfg.silence, seed=int(seed)))
    if min_phone_count is not None:
        cfg = replace(cfg, phones=replace(cfg.phones, min_count=int(min_phone_count)))
    if lm_order is not None:
        cfg = replace(cfg, lm=replace(cfg.lm, phone_order=int(lm_order), word_order=int(lm_order)))
    return cfg


def validate(cfg: TextConfig) -> None:
    """Everything that can be checked before any work: fails before OUTDIR is touched."""

    if not 0.0 <= cfg.silence.prob <= 1.0:
        raise ConfigError(f"silence.prob: must be in [0, 1], got {cfg.silence.prob}")
    if cfg.phones.rare == "map" and cfg.phones.min_count > 0 and not cfg.phones.map_to:
        raise ConfigError("phones.map_to: set the phone that rare phones become (phones.rare=map)")
    if cfg.phonemize.chunk_size < 1 or cfg.phonemize.njobs < 1:
        raise ConfigError("phonemize.chunk_size and phonemize.njobs must be >= 1")
    if cfg.filter.charset:
        try:
            re.compile(f"[{cfg.filter.charset}\\s]")
        except re.error as exc:
            raise ConfigError(f"filter.charset: not a valid character class {cfg.filter.charset!r}: {exc}") from None
    if cfg.lexicon:
        if not Path(cfg.lexicon).is_file():
            raise FileNotFoundError(f"lexicon not found: {cfg.lexicon}")
    else:

        check_language(cfg.lang)
    if cfg.lm.build:
        for order, prune, what in ((cfg.lm.phone_order, cfg.lm.phone_prune, "lm.phone_prune"),
                                   (cfg.lm.word_order, cfg.lm.word_prune, "lm.word_prune")):
            if order < 1:
                raise ConfigError(f"lm order must be >= 1, got {order}")
            try:
                check_prune(prune, order)
            except ValueError as exc:
                raise ConfigError(f"{what}: {exc}") from None
        find_kenlm_binary("lmplz")
        if cfg.lm.binary:
            find_kenlm_binary("build_binary")


def allowed_scripts(cfg: TextConfig) -> frozenset[str] | None:
    """The scripts lines may be written in (None: no check), from ``filter.scripts`` and the language."""

    names = [s.upper() for s in cfg.filter.scripts]
    if not names or "ANY" in names:
        return None
    if names == ["AUTO"]:
        allowed = expected_scripts(cfg.lang)
        if allowed is None:
            log.warning("prepare-text: no script table for language %r: lines are not checked for other scripts "
                        "(set filter.scripts=[LATIN] or similar to check them)", cfg.lang)
        return allowed
    return frozenset(names)


def normalize_and_filter(lines: Iterable[str], cfg: TextConfig,
                         foreign: list[tuple[int, str, str]] | None = None) -> tuple[list[str], Counter]:
    """Normalised sentences that pass the filters, and a count of dropped lines by reason.

    ``foreign``: when given, gets (line number, line, the scripts found) of every line dropped
    for letters of a script the language does not use.
    """

    dropped: Counter = Counter()
    allowed = allowed_scripts(cfg)
    digits = "keep" if cfg.normalize.digits == "drop_sentence" else cfg.normalize.digits
    bad_char = re.compile(f"[^{cfg.filter.charset}\\s]") if cfg.filter.charset else None
    seen: set[str] = set()
    out = []
    for lineno, line in enumerate(lines, 1):
        s = normalize_line(line, lowercase=cfg.normalize.lowercase, digits=digits)
        n_words = len(s.split())
        other = scripts_of(s) - allowed if allowed is not None and s else set()
        if not s:
            dropped["empty"] += 1
        elif other:
            dropped["foreign_script"] += 1
            if foreign is not None:
                foreign.append((lineno, line.rstrip("\n"), ",".join(sorted(other))))
        elif cfg.normalize.digits == "drop_sentence" and any(c.isdigit() for c in s):
            dropped["digits"] += 1
        elif bad_char is not None and bad_char.search(s):
            dropped["charset"] += 1
        elif n_words < cfg.filter.min_words:
            dropped["too_short"] += 1
        elif cfg.filter.max_words and n_words > cfg.filter.max_words:
            dropped["too_long"] += 1
        elif cfg.filter.dedup and s in seen:
            dropped["duplicate"] += 1
        else:
            if cfg.filter.dedup:
                seen.add(s)
            out.append(s)
    return out, dropped


def find_rare(lexicon: dict[str, list[str]], corpus_counts: Counter, word_counts: Counter,
              cfg: TextConfig) -> tuple[set[str], Counter]:
    """Phones seen fewer than ``phones.min_count`` times, and the counts that decided it."""
    if cfg.phones.count_over == "lexicon":
        counts = Counter(p for w, pron in lexicon.items() if word_counts[w] > 0 for p in pron)
    else:
        counts = corpus_counts
    rare = {p for p, c in counts.items() if c < cfg.phones.min_count} if cfg.phones.min_count > 0 else set()
    if cfg.phones.rare == "map" and rare and cfg.phones.map_to in rare:
        raise ConfigError(f"phones.map_to: {cfg.phones.map_to!r} is itself rare ({counts[cfg.phones.map_to]} < "
                          f"{cfg.phones.min_count}); choose a frequent phone")
    if cfg.phones.rare == "map" and rare and cfg.phones.map_to not in counts:
        raise ConfigError(f"phones.map_to: {cfg.phones.map_to!r} is not a phone of this text "
                          f"(phones: {' '.join(sorted(counts))})")
    return rare, counts


def prepare_text(input_path: str | Path, outdir: str | Path, cfg: TextConfig | None = None, *,
                 force: bool = False, progress: bool = True, **shortcuts: Any) -> dict:
    """Run the whole text side (see module doc); returns the meta written to OUTDIR/meta.json.

    ``shortcuts``: ``lang``, ``lexicon``, ``sil_prob``, ``min_phone_count``, ``lm_order``, ``seed``.
    """

    input_path, outdir = Path(input_path), Path(outdir)
    cfg = resolve_config(cfg, **shortcuts)
    validate(cfg)
    n_lines = sum(1 for _ in iter_utf8_lines(input_path))  # before anything is written: bad bytes leave no trace
    if cfg.lexicon:

        read_lexicon(cfg.lexicon)  # a malformed lexicon fails here, before OUTDIR is touched
    inputs = [input_path] + ([Path(cfg.lexicon)] if cfg.lexicon else [])
    options = {"config": to_dict(cfg), "version": TEXT_VERSION}
    if not cfg.lexicon:

        options["phonemizer"], options["espeak"] = phonemizer_version(), espeak_version()
    fp = fingerprint(options, inputs)
    created = not outdir.exists()
    old_outputs = _recorded_outputs(outdir)

    def build() -> dict:
        work = Path(tempfile.mkdtemp(prefix=".work-", dir=outdir))
        try:
            meta = _prepare(n_lines, input_path, outdir, work, cfg, progress)
            meta.update(provenance(cfg, seed=cfg.silence.seed, inputs={str(p): sha256_file(p) for p in inputs}))
            write_json(work / "meta.json", meta)
            _install(work, outdir, meta["outputs"] + ["meta.json"], old_outputs)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            cache = outdir / ".cache"
            if created and not any(cache.rglob("*.txt")):
                shutil.rmtree(outdir, ignore_errors=True)
            raise
        shutil.rmtree(work, ignore_errors=True)
        return meta

    ran, meta = run_stage(outdir, fp, lambda m: m["outputs"] + ["meta.json"], build, force=force)
    if not ran:
        log.info("prepare-text: %s is up to date (same input and options); nothing to do", outdir)
        return read_json(outdir / "meta.json")
    return meta


def _recorded_outputs(outdir: Path) -> list[str]:
    record = outdir / ".stage.json"
    if record.is_file():
        try:
            return read_json(record).get("outputs", [])
        except ValueError:
            return []
    return []


def _install(work: Path, outdir: Path, outputs: list[str], old: list[str]) -> None:
    """Move finished files into OUTDIR; outputs of an earlier run that this one did not make go."""
    for name in old:
        if name not in outputs and (outdir / name).is_file():
            (outdir / name).unlink()
    for name in outputs:
        os.replace(work / name, outdir / name)


def _prepare(n_lines: int, input_path: Path, outdir: Path, work: Path, cfg: TextConfig, progress: bool) -> dict:

    timings: dict[str, float] = {}
    t = time.time()
    foreign: list[tuple[int, str, str]] = []
    sentences, dropped = normalize_and_filter(iter_utf8_lines(input_path), cfg, foreign)
    timings["normalize"] = round(time.time() - t, 2)
    report_outputs = []
    if foreign:
        atomic_write_text(work / "foreign_script.tsv", "line\tscripts\ttext\n" + "".join(
            f"{n}\t{scripts}\t{text.replace(chr(9), ' ')}\n" for n, text, scripts in foreign))
        report_outputs.append("foreign_script.tsv")
        log.warning("prepare-text: dropped %d lines in another script than %s's (listed in %s)", len(foreign),
                    cfg.lang, outdir / "foreign_script.tsv")
    if not sentences:
        raise ValueError(f"{input_path}: no sentences left after normalisation and filtering "
                         f"(read {n_lines} lines; dropped: {dict(dropped) or 'none'})")
    log.info("prepare-text: %d lines -> %d sentences (dropped %s)", n_lines, len(sentences), dict(dropped))
    word_counts = Counter(w for s in sentences for w in s.split())
    lex_words = [w for w, c in word_counts.items() if c >= cfg.lexicon_words.min_word_count]
    cache = outdir / ".cache" / "phonemize"
    pc = cfg.phonemize
    encoded: list[str] | None = None  # sentence phones as "p p | p p" strings: lean for millions of lines
    info: dict[str, Any] = {}

    t = time.time()
    if cfg.lexicon:
        full = read_lexicon(cfg.lexicon)
        lexicon = {w: full[w] for w in lex_words if w in full}
        del full
        phones_from = "lexicon"
    else:

        info.update(phonemizer_version=phonemizer_version(), espeak_version=espeak_version())
        phones_from = pc.phones_from
        if phones_from == "sentence":
            encoded, stats = phonemize_corpus(sentences, cfg.lang, cache, njobs=pc.njobs, chunk_size=pc.chunk_size,
                                              with_stress=pc.with_stress, progress=progress, decode=False)
            info["phonemize_chunks"] = stats
        timings["phonemize_sentences"] = round(time.time() - t, 2)
        t = time.time()
        lexicon = pronounce_words(lex_words, cfg.lang, cache, njobs=pc.njobs, chunk_size=max(pc.chunk_size, 2000),
                                  with_stress=pc.with_stress, progress=progress)
    timings["lexicon"] = round(time.time() - t, 2)

    def phone_words(i: int) -> list[list[str]] | None:
        """Phones of each word of sentence i; None if it has none or a word lacks a pronunciation."""
        if encoded is not None:

            return decode_words(encoded[i]) or None
        words = sentences[i].split()
        return [lexicon[w] for w in words] if all(w in lexicon for w in words) else None

    # Pass 1: which sentences have phones (the reference drops sentences with a word the lexicon
    # lacks), and the phone counts of those.
    oov: Counter = Counter()
    kept: list[int] = []
    corpus_counts: Counter = Counter()
    for i in range(len(sentences)):
        pw = phone_words(i)
        if pw is None:
            if encoded is not None:
                dropped["no_phones"] += 1
            else:
                dropped["oov"] += 1
                oov.update(w for w in sentences[i].split() if w not in lexicon)
            continue
        kept.append(i)
        for w in pw:
            corpus_counts.update(w)
    if encoded is not None:
        oov.update({w: word_counts[w] for w in lex_words if w not in lexicon})

    # Rare phones: dropped with their sentences and lexicon entries, or mapped.
    rare, decided_by = find_rare(lexicon, corpus_counts, word_counts, cfg)
    mapping = {p: cfg.phones.map_to for p in rare} if cfg.phones.rare == "map" else {}
    lexicon_out = lexicon  # the sentences below still look words up in the unfiltered lexicon
    if rare:
        if mapping:
            lexicon_out = {w: [mapping.get(p, p) for p in pron] for w, pron in lexicon.items()}
        else:
            lexicon_out = {w: pron for w, pron in lexicon.items() if not rare.intersection(pron)}
        log.info("prepare-text: rare phones (< %d, counted over the %s): %s", cfg.phones.min_count,
                 cfg.phones.count_over, " ".join(sorted(rare)))

    # Pass 2: silence tokens (seeded) and the line-aligned phone and word files.
    rng = np.random.default_rng(cfg.silence.seed)
    final_counts: Counter = Counter()
    n_kept = n_words = gaps = sil_gaps = n_sil = 0
    with open(work / "phones.txt", "w", encoding="utf-8") as f_sil, \
            open(work / "phones.nosil.txt", "w", encoding="utf-8") as f_nosil, \
            open(work / "words.txt", "w", encoding="utf-8") as f_words:
        for i in kept:
            pw = phone_words(i)
            assert pw is not None
            if rare:
                if mapping:
                    pw = [[mapping.get(p, p) for p in w] for w in pw]
                elif any(rare.intersection(w) for w in pw):
                    dropped["rare_phone"] += 1
                    continue
            line = insert_silence(pw, cfg.silence.prob, rng, surround=cfg.silence.surround)
            nosil = [p for w in pw for p in w]
            final_counts.update(nosil)
            n_sil += len(line) - len(nosil)
            gaps += max(len(pw) - 1, 0)
            sil_gaps += gap_silences(line, cfg.silence.surround)
            n_kept += 1
            n_words += len(sentences[i].split())
            f_sil.write(" ".join(line) + "\n")
            f_nosil.write(" ".join(nosil) + "\n")
            f_words.write(sentences[i] + "\n")
    if not n_kept:
        raise ValueError(f"{input_path}: no sentences left after phonemisation "
                         f"(dropped: {dict(dropped)}); check phones.min_count and the lexicon")

    write_lexicon(work / "lexicon.lst", lexicon_out)
    atomic_write_text(work / "oov.txt", "".join(f"{w}\t{c}\n" for w, c in sorted(oov.items(), key=lambda x: (-x[1], x[0]))))
    PhoneDictionary.from_counts(final_counts, extra={SIL: n_sil}).save(work / "dict.phn.txt")
    _write_summary(work / "phones.summary.tsv", corpus_counts, decided_by, rare, final_counts, cfg)
    outputs = ["phones.txt", "phones.nosil.txt", "words.txt", "lexicon.lst", "oov.txt", "dict.phn.txt",
               "phones.summary.tsv", *report_outputs]

    lms = {}
    if cfg.lm.build:

        lm = cfg.lm
        t = time.time()
        for kind, text, order, prune in (("phones", "phones.txt", lm.phone_order, lm.phone_prune),
                                         ("words", "words.txt", lm.word_order, lm.word_prune)):
            prefix = work / f"lm.{kind}.{order}"
            m = build_lm(work / text, prefix, order, prune, discount_fallback=lm.discount_fallback,
                         memory=lm.memory, binary=lm.binary)
            m["text"] = text
            m["commands"] = [c.replace(str(work) + "/", "") for c in m["commands"]]
            write_json(Path(f"{prefix}.meta.json"), m)
            lms[kind] = m
            outputs += m["outputs"] + [f"{prefix.name}.meta.json"]
        timings["lm"] = round(time.time() - t, 2)

    return {
        "stage": "prepare-text",
        "input": str(input_path),
        "input_sha256": sha256_file(input_path),
        "lang": cfg.lang,
        "phones_from": phones_from,
        "user_lexicon": cfg.lexicon or None,
        **info,
        "counts": {
            "lines": n_lines, "sentences_after_filter": len(sentences), "sentences": n_kept,
            "dropped": dict(dropped), "words": n_words, "unique_words": len(word_counts),
            "lexicon_entries": len(lexicon_out), "oov_words": len(oov), "oov_tokens": sum(oov.values()),
            "phones": sum(final_counts.values()), "phone_inventory": len(final_counts),
            "rare_phones": sorted(rare), "sil_tokens": n_sil, "word_gaps": gaps,
            "sil_gap_rate": round(sil_gaps / gaps, 4) if gaps else None,
        },
        "lms": lms,
        "timings_s": timings,
        "outputs": outputs,
    }


def _write_summary(path: Path, corpus_counts: Counter, decided_by: Counter, rare: set[str], final: Counter,
                   cfg: TextConfig) -> None:
    total = sum(corpus_counts.values()) or 1
    rows = ["phone\tcount\tfraction\tcount_for_threshold\tstatus"]
    for p in sorted(set(corpus_counts) | set(decided_by), key=lambda p: (-corpus_counts[p], p)):
        if p in rare:
            status = f"mapped->{cfg.phones.map_to}" if cfg.phones.rare == "map" else "dropped"
        else:
            status = "kept" if final[p] > 0 else "unused"
        rows.append(f"{p}\t{corpus_counts[p]}\t{corpus_counts[p] / total:.6f}\t{decided_by[p]}\t{status}")
    atomic_write_text(path, "\n".join(rows) + "\n")
