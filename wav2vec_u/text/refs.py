"""Reference phones for one's own transcripts: the words of ``{split}.wrd`` phonemised as the text side is.

    phonemize_refs(Path("out/corpus"), ["valid", "test"], "en-us")                  # espeak-ng, whole sentences
    phonemize_refs(Path("out/corpus"), ["valid"], "sw", lexicon=Path("out/text/lexicon.lst"))

Words are normalised as ``prepare-text`` normalises its text (:func:`wav2vec_u.metrics.normalize_words`),
then phonemised as whole sentences by espeak-ng (``prepare-text``'s default, ``phones_from:
sentence``), or looked up in a lexicon (``prepare-text``'s ``lexicon.lst`` or one's own), with
espeak-ng for the words it lacks. ``{split}.phn`` gets one line of phones per utterance, no
``<SIL>`` (scoring drops it anyway); a word espeak-ng gives no phones for is counted and named in
the returned summary.
"""

from __future__ import annotations

import logging
from pathlib import Path

from wav2vec_u.metrics import normalize_words
from wav2vec_u.tokens import read_token_lines, write_token_lines

log = logging.getLogger(__name__)


def phonemize_refs(corpus: Path, splits: list[str], lang: str, lexicon: Path | None = None,
                   force: bool = False, njobs: int = 1) -> dict:
    from wav2vec_u.text.lexicon import pronounce_words, read_lexicon
    from wav2vec_u.text.phonemize import phonemize_corpus

    corpus = Path(corpus)
    todo = {}
    for split in splits:
        wrd, phn = corpus / f"{split}.wrd", corpus / f"{split}.phn"
        if not wrd.is_file():
            raise FileNotFoundError(f"no {wrd}: reference words are needed ({split}.wrd, one utterance per line; "
                                    "`w2vu import-corpus` writes them)")
        if phn.exists() and not force:
            raise ValueError(f"{phn} exists (the corpus's own reference phones?); --force replaces it")
        todo[split] = [normalize_words(r) for r in read_token_lines(wrd)]
    cache = corpus / ".cache" / "phonemize-refs"
    summary = {}
    lex = read_lexicon(lexicon) if lexicon else None
    for split, refs in todo.items():
        if lex is None:
            words, _ = phonemize_corpus([" ".join(r) for r in refs], lang, cache, njobs=njobs, progress=False)
            phones = [[p for w in sent for p in w] for sent in words]
            missing = sum(len(r) - len(w) for r, w in zip(refs, words))
            summary[split] = {"utterances": len(refs), "words_without_phones": max(missing, 0), "source": "espeak-ng"}
        else:
            oov = sorted({w for r in refs for w in r if w not in lex})
            extra = pronounce_words(oov, lang, cache_dir=cache, njobs=njobs) if oov else {}
            phones = [[p for w in r for p in (lex.get(w) or extra.get(w) or [])] for r in refs]
            summary[split] = {"utterances": len(refs), "lexicon": str(lexicon), "oov_words": len(oov),
                              "oov_without_phones": sorted(set(oov) - set(extra))[:20]}
        write_token_lines(corpus / f"{split}.phn", phones)
        log.info("phonemize-refs: %s.phn, %d utterances (%s)", split, len(refs), summary[split])
    return summary
