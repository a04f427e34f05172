"""Public corpora (and one's own labelled audio) read in their own layouts into scorable splits.

    from wav2vec_u.audio.corpora import import_corpus, ImportConfig
    summary = import_corpus("timit", Path("/data/TIMIT"), Path("out/corpus"), ImportConfig(setting="matched"))

Every layout becomes the same corpus folder, the one ``w2vu synth`` writes, so the rest of the
chain (vad, extract, segments, decode's references, report) reads any of them alike::

    {split}.tsv   fairseq manifest; its root is the corpus itself (audio is read in place, never copied)
    {split}.wrd   reference words, one utterance per line, as the corpus spells them
    {split}.phn   reference phones (TIMIT: its own labels folded to 39; others: `w2vu phonemize-refs`)
    {split}.ids   utterance ids, one per line
    text.txt      TIMIT only: the phone text of the chosen setting (matched / unmatched)
    phone_lexicon.txt  TIMIT only: each phone as a "word" of itself (prepare-text reads phone text with it)
    skipped.tsv   files of the tree that are not part of the layout and were left out, with the reason
    meta.json     layout, source, splits, counts, the checks made

Layouts (the ones the corpora ship in; names are matched without regard to case):

- ``timit``: ``TRAIN|TEST/DR1-8/SPEAKER/{SI,SX}*.WAV`` (NIST SPHERE, which soundfile reads) with
  ``.PHN`` and ``.WRD`` beside each. Splits: ``train`` (3,696 utterances), ``valid`` (the 50
  development speakers, 400), ``test`` (the core test set, 24 speakers, 192) and ``test_full``
  (every test speaker, 1,344); the SA sentences are left out, as everyone does. Speaker lists
  and the 61 -> 39 folding ship in ``resources/data/timit`` with their sources.
- ``librispeech``: ``SUBSET/SPEAKER/CHAPTER/SPEAKER-CHAPTER-NNNN.flac`` with
  ``SPEAKER-CHAPTER.trans.txt`` per chapter; ``splits`` names the subsets of each split.
- ``mls``: one language's folder, ``{train,dev,test}/transcripts.txt`` (``ID<TAB>text``) and
  ``{split}/audio/SPEAKER/BOOK/ID.flac`` (or ``.opus``); dev becomes ``valid``.
- ``plain``: one's own labelled audio: a folder of audio files (any sample rate and channels:
  extraction resamples to 16 kHz mono) and a transcripts file of ``name<TAB>text`` lines (the
  file's path relative to the folder, with or without its extension); one split, named by ``split``.

Nothing is written until the whole tree has been checked. A file the layout needs that is
missing (a ``.PHN``, a transcript line, the audio of a transcript line), audio that is not
16 kHz mono or does not decode, a transcript that is not UTF-8: each is an error naming the file
(and line), listing up to ten such problems at once. Files that are not part of the layout
(``.DS_Store``, ``._*`` resource forks, ``*.WAV.wav`` converted copies, documentation, SA
sentences) are left out and listed in ``skipped.tsv``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from wav2vec_u.audio.io import SAMPLE_RATE  # all three corpora are 16 kHz, as wav2vec 2.0 features need
from wav2vec_u.audio.manifest import SKIPPED_TABLE, name_problem, write_manifest
from wav2vec_u.config import non_negative
from wav2vec_u.io import atomic_write_text, resource_path, write_json
from wav2vec_u.tokens import write_token_lines

log = logging.getLogger(__name__)

LAYOUTS = ("timit", "librispeech", "mls", "plain")
TIMIT_SIL = "sil"
# The published TIMIT counts (TIMIT documentation; the wav2vec-U paper's Table 1 uses these sets)
TIMIT_COUNTS = {"train": 3696, "valid": 400, "test": 192, "test_full": 1344}
TIMIT_SPEAKERS = {"train": 462, "valid": 50, "test": 24, "test_full": 168}


@dataclass
class ImportConfig:
    # TIMIT text: "matched" = the phones of every training utterance (paper Sec. 5, TIMIT);
    # "unmatched" = training utterances split by sentence prompt (odd/even prompt number): the
    # audio of one half, the phone text of the other, no sentence in both (the paper's lists
    # are fairseq's own; this split is ours)
    setting: Literal["matched", "unmatched"] = "matched"
    # librispeech: split -> subsets, e.g. {"train": ["train-clean-100"], "valid": ["dev-other"]}
    splits: dict[str, list[str]] = field(default_factory=dict)
    split: str = "valid"        # plain: the split's name
    extensions: list[str] = field(default_factory=lambda: ["wav", "flac", "ogg", "mp3", "opus"])  # plain
    max_problems: int = non_negative(default=10)  # problems listed in one error


@dataclass
class Utterance:
    uid: str
    path: Path                 # absolute
    words: list[str]
    phones: list[str] | None = None
    frames: int = 0


class LayoutError(ValueError):
    """The tree is not in the layout: names the files and lines (a ValueError: `w2vu` prints one line)."""


class _Problems:
    def __init__(self, layout: str, src: Path, limit: int):
        self.layout, self.src, self.limit, self.items = layout, src, limit, []

    def add(self, where: Path | str, what: str) -> None:
        self.items.append(f"{where}: {what}")

    def raise_if_any(self) -> None:
        if not self.items:
            return
        shown = self.items[: self.limit or len(self.items)]
        more = f"\n  ... and {len(self.items) - len(shown)} more" if len(self.items) > len(shown) else ""
        raise LayoutError(f"{self.src} is not a complete {self.layout} tree ({len(self.items)} problem"
                          f"{'s' if len(self.items) > 1 else ''}; nothing was written):\n  "
                          + "\n  ".join(shown) + more)


def _children(folder: Path) -> dict[str, Path]:
    """Entries of a folder by upper-cased name (TIMIT copies exist in both cases)."""
    return {p.name.upper(): p for p in sorted(folder.iterdir())} if folder.is_dir() else {}


def _junk(name: str) -> str | None:
    """Why a file is never part of any layout (None if it may be)."""
    if name.startswith("._"):
        return "resource fork (macOS ._ file)"
    if name.startswith("."):
        return "hidden file"
    return None


def _read_text(path: Path, problems: _Problems) -> list[str] | None:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        problems.add(path, f"not UTF-8 text (byte {exc.start}); convert it to UTF-8")
    except OSError as exc:
        problems.add(path, f"cannot be read ({exc.strerror})")
    return None


def check_audio(utt: Utterance, problems: _Problems, any_rate: bool = False) -> None:
    """Decode the header: 16 kHz mono (unless ``any_rate``), not empty; sets ``utt.frames``."""
    import soundfile as sf

    try:
        info = sf.info(str(utt.path))
    except Exception as exc:  # libsndfile errors: corrupt, not audio, shorten-compressed SPHERE
        problems.add(utt.path, f"cannot be read as audio ({str(exc).splitlines()[0][:160]})")
        return
    if info.frames == 0:
        problems.add(utt.path, "has no samples")
    elif not any_rate and (info.samplerate != SAMPLE_RATE or info.channels != 1):
        problems.add(utt.path, f"is {info.samplerate} Hz with {info.channels} channel(s); this layout's audio is "
                               f"{SAMPLE_RATE} Hz mono: the tree holds another corpus or a converted copy "
                               "(use the original files)")
    utt.frames = int(info.frames)


# --------------------------------------------------------------------------------------- TIMIT

def timit_folding() -> dict[str, str]:
    """TIMIT label -> one of the 39 classes ("" deletes it); resources/data/timit/phones_61_39.tsv."""
    out = {}
    for line in resource_path("data", "timit", "phones_61_39.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            label, _, cls = line.partition("\t")
            out[label] = cls
    return out


def timit_speakers(name: str) -> list[str]:
    """The shipped speaker list ``core_test`` or ``dev`` (speaker ids, upper case)."""
    rows = resource_path("data", "timit", f"{name}_speakers.txt").read_text(encoding="utf-8").splitlines()
    return [r.split("\t")[-1].strip().upper() for r in rows if r.strip() and not r.startswith("#")]


def fold_timit(labels: list[str], folding: dict[str, str]) -> list[str]:
    """61 labels -> 39 classes; runs of ``sil`` (a closure after a pause) become one."""
    out: list[str] = []
    for lab in labels:
        cls = folding[lab]
        if cls and not (cls == TIMIT_SIL and out and out[-1] == TIMIT_SIL):
            out.append(cls)
    return out


_TIMIT_UTT = re.compile(r"^(S[AIX])(\d+)\.WAV$")


def _timit(src: Path, cfg: ImportConfig, problems: _Problems, skipped: list) -> tuple[dict, dict]:
    top = _children(src)
    if "TRAIN" not in top or "TEST" not in top:
        raise LayoutError(f"{src}: expected TIMIT's TRAIN/ and TEST/ folders (TRAIN/DR1/FCJF0/SI1027.WAV ...), "
                          f"found {', '.join(p.name for p in top.values()) or 'nothing'}; give the folder that holds "
                          "TRAIN and TEST (often TIMIT/ or timit/TIMIT/)")
    folding = timit_folding()
    core, dev = set(timit_speakers("core_test")), set(timit_speakers("dev"))
    by_part: dict[str, list[Utterance]] = {"TRAIN": [], "TEST": []}
    speakers: dict[str, set] = {"TRAIN": set(), "TEST": set()}
    for part in ("TRAIN", "TEST"):
        for region in _children(top[part]).values():
            if not region.is_dir() or not re.fullmatch(r"DR\d", region.name.upper()):
                skipped.append((region, "not a dialect region folder (DR1-DR8)"))
                continue
            for spk in _children(region).values():
                if not spk.is_dir():
                    skipped.append((spk, "a file where speaker folders are"))
                    continue
                speakers[part].add(spk.name.upper())
                files = _children(spk)
                for name, wav in files.items():
                    why = _junk(wav.name)
                    m = _TIMIT_UTT.match(name)
                    if why or not m:
                        if why or not name.endswith((".PHN", ".WRD", ".TXT")):
                            skipped.append((wav, why or "not a TIMIT utterance (SA/SI/SX*.WAV) or its label file"))
                        continue
                    if m.group(1) == "SA":
                        skipped.append((wav, "SA sentence (read by every speaker; left out as usual)"))
                        continue
                    stem = name[:-4]
                    labels = {}
                    for ext in ("PHN", "WRD"):
                        lab = files.get(f"{stem}.{ext}")
                        if lab is None:
                            problems.add(wav, f"no {stem}.{ext} beside it (TIMIT keeps {ext.lower()} labels in "
                                              f"{spk}/{stem}.{ext}); restore it from the corpus")
                            continue
                        lines = _read_text(lab, problems)
                        if lines is None:
                            continue
                        toks = []
                        for n, line in enumerate(lines, 1):
                            parts = line.split()
                            if not parts:
                                continue
                            if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
                                problems.add(f"{lab}:{n}", f"expected 'start end label', got {line!r}")
                                continue
                            if ext == "PHN" and parts[2] not in folding:
                                problems.add(f"{lab}:{n}", f"unknown TIMIT phone {parts[2]!r} (not one of the 61)")
                                continue
                            toks.append(parts[2])
                        labels[ext] = toks
                    if len(labels) < 2:
                        continue
                    utt = Utterance(f"{spk.name.upper()}_{stem}", wav, [w.lower() for w in labels["WRD"]],
                                    fold_timit(labels["PHN"], folding))
                    check_audio(utt, problems)
                    by_part[part].append(utt)
    missing = sorted(core - speakers["TEST"])
    full = len(speakers["TRAIN"]) == TIMIT_SPEAKERS["train"] and len(speakers["TEST"]) == TIMIT_SPEAKERS["test_full"]
    if full and missing:
        problems.add(top["TEST"], f"core test speakers missing: {', '.join(missing)}")
    problems.raise_if_any()

    spk_of = lambda u: u.uid.split("_")[0]  # noqa: E731
    splits = {
        "train": by_part["TRAIN"],
        "valid": [u for u in by_part["TEST"] if spk_of(u) in dev],
        "test": [u for u in by_part["TEST"] if spk_of(u) in core],
        "test_full": by_part["TEST"],
    }
    text = splits["train"]
    if cfg.setting == "unmatched":
        def odd(u: Utterance) -> bool:
            return int(_TIMIT_UTT.match(u.uid.split("_")[1] + ".WAV").group(2)) % 2 == 1

        text = [u for u in splits["train"] if not odd(u)]
        splits["train"] = [u for u in splits["train"] if odd(u)]
    counts = {s: len(u) for s, u in splits.items()}
    check = {}
    if full:  # a complete corpus must give the published counts
        expected = dict(TIMIT_COUNTS)
        if cfg.setting == "unmatched":
            expected.pop("train")
        bad = {s: (counts[s], n) for s, n in expected.items() if counts[s] != n}
        if bad:
            raise LayoutError(f"{src}: a complete TIMIT tree (462 + 168 speakers) gave "
                              + ", ".join(f"{s} {got} utterances (published: {want})" for s, (got, want) in bad.items())
                              + "; some utterances or label files are missing")
        check = {"published_counts": "match", **{s: counts[s] for s in expected}}
    else:
        log.warning("%s: %d training and %d test speakers, not TIMIT's 462 and 168: the published counts are not "
                    "checked (a partial tree)", src, len(speakers["TRAIN"]), len(speakers["TEST"]))
    phones = sorted({p for u in by_part["TRAIN"] + by_part["TEST"] for p in u.phones})
    extra = {
        "text.txt": "".join(" ".join(u.phones) + "\n" for u in text),
        "phone_lexicon.txt": "".join(f"{p}\t{p}\n" for p in phones),
    }
    info = {"setting": cfg.setting, "text_utterances": len(text), "speakers": {k: len(v) for k, v in speakers.items()},
            "phone_set": phones, "counts_check": check or "partial tree: not checked",
            "folding": "resources/data/timit/phones_61_39.tsv"}
    return splits, {"extra": extra, "info": info}


# --------------------------------------------------------------------------------- LibriSpeech

_LS_ID = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def _transcript_lines(path: Path, problems: _Problems, sep: str | None) -> dict[str, tuple[list[str], int]]:
    """id -> (words, line number) of a transcript file (``id text`` or ``id<TAB>text``)."""
    out: dict[str, tuple[list[str], int]] = {}
    lines = _read_text(path, problems)
    for n, line in enumerate(lines or [], 1):
        if not line.strip():
            continue
        if sep:
            if sep not in line:
                problems.add(f"{path}:{n}", f"expected 'id<TAB>text', got {line[:120]!r}")
                continue
            uid, _, text = line.partition(sep)
        else:
            uid, _, text = line.strip().partition(" ")
        uid = uid.strip()
        if uid in out:
            problems.add(f"{path}:{n}", f"utterance {uid} is listed twice (also line {out[uid][1]})")
            continue
        out[uid] = (text.split(), n)
    return out


def _librispeech(src: Path, cfg: ImportConfig, problems: _Problems, skipped: list) -> tuple[dict, dict]:
    if not cfg.splits:
        raise LayoutError("librispeech needs the subsets of each split, e.g. "
                          "splits.train=[train-clean-100] splits.valid=[dev-other] splits.test=[test-other]")
    found = sorted(p.name for p in src.iterdir() if p.is_dir()) if src.is_dir() else []
    splits: dict[str, list[Utterance]] = {}
    for split, subsets in cfg.splits.items():
        splits[split] = []
        for subset in subsets:
            sub = src / subset
            if not sub.is_dir():
                problems.add(sub, f"no such subset folder (found: {', '.join(found) or 'nothing'}); give the "
                                  "LibriSpeech folder that holds the subsets (train-clean-100, dev-other, ...)")
                continue
            for spk in sorted(sub.iterdir()):
                if not spk.is_dir():
                    skipped.append((spk, _junk(spk.name) or "a file where speaker folders are"))
                    continue
                for chap in sorted(spk.iterdir()):
                    if not chap.is_dir():
                        skipped.append((chap, _junk(chap.name) or "a file where chapter folders are"))
                        continue
                    splits[split] += _librispeech_chapter(chap, spk.name, problems, skipped)
    problems.raise_if_any()
    return splits, {"extra": {}, "info": {"subsets": cfg.splits}}


def _librispeech_chapter(chap: Path, spk: str, problems: _Problems, skipped: list) -> list[Utterance]:
    trans = chap / f"{spk}-{chap.name}.trans.txt"
    audio = {}
    for f in sorted(chap.iterdir()):
        if f.suffix.lower() == ".flac" and not _junk(f.name):
            audio[f.stem] = f
        elif f != trans:
            skipped.append((f, _junk(f.name) or "not part of the layout (SPK-CHAP-NNNN.flac, SPK-CHAP.trans.txt)"))
    if not trans.is_file():
        problems.add(chap, f"no transcript {trans.name} in this chapter folder ({len(audio)} flac files)")
        return []
    lines = _transcript_lines(trans, problems, None)
    out = []
    for uid, (words, n) in lines.items():
        if not _LS_ID.match(uid) or not uid.startswith(f"{spk}-{chap.name}-"):
            problems.add(f"{trans}:{n}", f"utterance id {uid!r} is not {spk}-{chap.name}-NNNN")
            continue
        if uid not in audio:
            problems.add(f"{trans}:{n}", f"lists {uid}, but {chap / (uid + '.flac')} does not exist")
            continue
        utt = Utterance(uid, audio[uid], words)
        check_audio(utt, problems)
        out.append(utt)
    for uid, f in audio.items():
        if uid not in lines:
            problems.add(f, f"has no line in {trans}")
    return out


# ----------------------------------------------------------------------------------------- MLS

def _mls(src: Path, cfg: ImportConfig, problems: _Problems, skipped: list) -> tuple[dict, dict]:
    names = {"train": "train", "dev": "valid", "test": "test"}
    present = [d for d in names if (src / d / "transcripts.txt").is_file()]
    if not present:
        raise LayoutError(f"{src}: expected MLS's train/, dev/ and test/ folders, each with transcripts.txt and "
                          "audio/SPEAKER/BOOK/*.flac; give one language's folder (e.g. mls_german)")
    splits: dict[str, list[Utterance]] = {}
    for d in present:
        folder = src / d
        lines = _transcript_lines(folder / "transcripts.txt", problems, "\t")
        listed = set()
        utts = []
        for uid, (words, n) in lines.items():
            parts = uid.split("_")
            if len(parts) != 3:
                problems.add(f"{folder / 'transcripts.txt'}:{n}", f"utterance id {uid!r} is not SPEAKER_BOOK_NNNNNN")
                continue
            base = folder / "audio" / parts[0] / parts[1] / uid
            path = next((base.with_suffix(ext) for ext in (".flac", ".opus") if base.with_suffix(ext).is_file()), None)
            if path is None:
                problems.add(f"{folder / 'transcripts.txt'}:{n}", f"lists {uid}, but {base}.flac does not exist")
                continue
            listed.add(path)
            utt = Utterance(uid, path, words)
            check_audio(utt, problems)
            utts.append(utt)
        audio_dir = folder / "audio"
        for f in sorted(audio_dir.rglob("*")) if audio_dir.is_dir() else []:
            if f.is_file() and f not in listed:
                if f.suffix.lower() in (".flac", ".opus") and not _junk(f.name):
                    problems.add(f, f"has no line in {folder / 'transcripts.txt'}")
                else:
                    skipped.append((f, _junk(f.name) or "not part of the layout"))
        splits[names[d]] = utts
    problems.raise_if_any()
    return splits, {"extra": {}, "info": {"folders": present}}


# --------------------------------------------------------------------------------------- plain

def _plain(src: Path, transcripts: Path | None, cfg: ImportConfig, problems: _Problems,
           skipped: list) -> tuple[dict, dict]:
    if transcripts is None:
        raise LayoutError("plain needs --transcripts FILE: lines 'name<TAB>text', name = the audio file's path "
                          f"relative to {src}, with or without its extension")
    if not transcripts.is_file():
        raise FileNotFoundError(f"transcripts file not found: {transcripts}")
    exts = {"." + e.lower().lstrip(".") for e in cfg.extensions}
    audio: dict[str, Path] = {}
    for f in sorted(src.rglob("*")):
        if not f.is_file() or f.resolve() == transcripts.resolve():
            continue
        rel = f.relative_to(src).as_posix()
        if f.suffix.lower() not in exts or _junk(f.name):
            skipped.append((f, _junk(f.name) or f"not audio ({', '.join(sorted(exts))})"))
            continue
        audio[rel] = f
        audio.setdefault(rel.rsplit(".", 1)[0], f)
    lines = _transcript_lines(transcripts, problems, "\t")
    utts, used = [], set()
    for name, (words, n) in lines.items():
        path = audio.get(name)
        if path is None:
            problems.add(f"{transcripts}:{n}", f"names {name!r}, but no audio file {src / name}[.wav/.flac/...] exists")
            continue
        if name_problem(str(path)):
            problems.add(path, f"its name cannot be listed in a manifest ({name_problem(str(path))}): rename it")
            continue
        used.add(path)
        utt = Utterance(name, path, words)
        check_audio(utt, problems, any_rate=True)  # one's own audio: any rate; extraction resamples to 16 kHz mono
        utts.append(utt)
    for f in sorted(set(audio.values()) - used):
        problems.add(f, f"has no transcript line in {transcripts} (add one, or move the file out)")
    problems.raise_if_any()
    return {cfg.split: utts}, {"extra": {}, "info": {"transcripts": str(transcripts)}}


# ------------------------------------------------------------------------------------ writing

def read_layout(layout: str, src: Path, cfg: ImportConfig, transcripts: Path | None = None
                ) -> tuple[dict[str, list[Utterance]], dict[str, Any], list[tuple[Path, str]]]:
    """Check the whole tree and read it: (splits, extra files and info, skipped files). Raises
    :class:`LayoutError` naming every problem (up to ``cfg.max_problems``) before anything is written."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; one of {', '.join(LAYOUTS)}")
    src = Path(src).resolve()
    if not src.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {src}")
    problems, skipped = _Problems(layout, src, cfg.max_problems), []
    if layout == "timit":
        splits, more = _timit(src, cfg, problems, skipped)
    elif layout == "librispeech":
        splits, more = _librispeech(src, cfg, problems, skipped)
    elif layout == "mls":
        splits, more = _mls(src, cfg, problems, skipped)
    else:
        splits, more = _plain(src, transcripts, cfg, problems, skipped)
    empty = [s for s, u in splits.items() if not u]
    if empty:
        raise LayoutError(f"{src}: no utterance in split(s) {', '.join(empty)} (see skipped files above)")
    return splits, more, skipped


def write_corpus(outdir: Path, src: Path, splits: dict[str, list[Utterance]], more: dict[str, Any],
                 skipped: list[tuple[Path, str]], layout: str) -> dict[str, Any]:
    """The corpus folder (module doc) from checked splits; every file written atomically."""
    outdir.mkdir(parents=True, exist_ok=True)
    for split, utts in splits.items():
        write_manifest(outdir / f"{split}.tsv", src, [(u.path.relative_to(src).as_posix(), u.frames) for u in utts])
        write_token_lines(outdir / f"{split}.wrd", [u.words for u in utts])
        if all(u.phones is not None for u in utts):
            write_token_lines(outdir / f"{split}.phn", [u.phones for u in utts])
        atomic_write_text(outdir / f"{split}.ids", "".join(u.uid + "\n" for u in utts))
    for name, text in more["extra"].items():
        atomic_write_text(outdir / name, text)
    atomic_write_text(outdir / SKIPPED_TABLE, "path\treason\n" + "".join(
        f"{ascii(str(p.relative_to(src) if p.is_relative_to(src) else p))[1:-1]}\t{why}\n" for p, why in skipped))
    reasons = Counter(why for _, why in skipped)
    summary = {"layout": layout, "source": str(src),
               "splits": {s: {"utterances": len(u), "speakers": len({_speaker(layout, x.uid) for x in u}),
                              "hours": round(sum(x.frames for x in u) / SAMPLE_RATE / 3600, 4)}
                          for s, u in splits.items()},
               "skipped": dict(reasons), **more["info"]}
    write_json(outdir / "meta.json", summary)
    return summary


def _speaker(layout: str, uid: str) -> str:
    return {"timit": uid.split("_")[0], "librispeech": uid.split("-")[0], "mls": uid.split("_")[0]}.get(layout, "")


def corpus_outputs(splits: dict[str, list[Utterance]], more: dict[str, Any]) -> list[str]:
    names = [SKIPPED_TABLE, "meta.json", *more["extra"]]
    for split, utts in splits.items():
        names += [f"{split}.tsv", f"{split}.wrd", f"{split}.ids"]
        if all(u.phones is not None for u in utts):
            names.append(f"{split}.phn")
    return names
