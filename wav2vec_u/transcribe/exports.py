"""The files a linguist opens: Praat TextGrid, ELAN EAF, CTM, SRT and CSV of one transcript.

    paths = write_exports(transcript, Path("out/tr/a"), media=Path("field/a.wav"))

Every file holds the same tiers — ``chunks`` (voice-activity chunks, labelled with their words or
phones), ``words`` (when decoded) and ``phones`` — with times in seconds of the original recording:

- ``a.TextGrid``: interval tiers (praatio, long text format; gaps become empty intervals, as Praat
  draws them);
- ``a.eaf``: ELAN tiers of aligned annotations in milliseconds, linked to the media file (pympi-ling);
- ``a.ctm``: ``recording 1 start duration label confidence`` of the phones, and ``a.words.ctm``
  of the words (NIST CTM, the format sclite and Kaldi read);
- ``a.srt``: one subtitle per chunk;
- ``a.csv``: ``tier,start,end,label,confidence`` for every item of every tier.

Written atomically; the same transcript writes byte-identical files (the EAF header's date is
the recording's modification time, not the clock's).
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from pathlib import Path

from wav2vec_u.io import atomic_path, atomic_write_text

MIME = {".wav": "audio/x-wav", ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg"}


def tiers_of(tr) -> dict[str, list]:
    """Tier name -> items, in the order the files list them."""
    tiers = {"chunks": tr.chunks}
    if tr.words is not None:
        tiers["words"] = tr.words
    tiers["phones"] = tr.phones
    return tiers


def _conf(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.4f}"


def write_textgrid(tr, path: Path) -> Path:
    from praatio import textgrid

    end = max([tr.duration] + [x.end for items in tiers_of(tr).values() for x in items])
    tg = textgrid.Textgrid(0.0, end)
    for name, items in tiers_of(tr).items():
        tg.addTier(textgrid.IntervalTier(name, [(x.start, x.end, x.label) for x in items], 0.0, end))
    with atomic_path(path, suffix=".TextGrid") as tmp:
        tg.save(str(tmp), format="long_textgrid", includeBlankSpaces=True, reportingMode="error")
    return path


def write_eaf(tr, path: Path, media: Path) -> Path:
    from pympi import Elan

    eaf = Elan.Eaf(author="w2vu transcribe")
    try:
        mtime = media.stat().st_mtime
    except OSError:
        mtime = 0.0
    # the header's date would otherwise be the clock's: reruns must write the same bytes
    eaf.adocument["DATE"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(mtime))
    # ELAN tries the absolute URL, then the one relative to the .eaf: the archive may move as a whole
    eaf.add_linked_file(media.resolve().as_uri(), relpath=os.path.relpath(media.resolve(), path.parent.resolve()),
                        mimetype=MIME.get(media.suffix.lower(), "audio/x-wav"))
    for name, items in tiers_of(tr).items():
        eaf.add_tier(name)
        for x in items:
            eaf.add_annotation(name, int(round(x.start * 1000)), int(round(x.end * 1000)), x.label)
    eaf.remove_tier("default")
    with atomic_path(path, suffix=".eaf") as tmp:
        tmp.unlink()  # pympi renames an existing file to .bak before writing: give it none
        Elan.to_eaf(str(tmp), eaf)
    return path


def ctm_text(name: str, items: list) -> str:
    return "".join(f"{name} 1 {x.start:.3f} {x.end - x.start:.3f} {x.label} {_conf(x.confidence) or '0'}\n"
                   for x in items)


def _srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def srt_text(chunks: list) -> str:
    return "".join(f"{i}\n{_srt_time(c.start)} --> {_srt_time(c.end)}\n{c.label or '…'}\n\n"
                   for i, c in enumerate(chunks, 1))


def csv_text(tr) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["tier", "start", "end", "label", "confidence"])
    for name, items in tiers_of(tr).items():
        for x in items:
            w.writerow([name, f"{x.start:.3f}", f"{x.end:.3f}", x.label, _conf(x.confidence)])
    return buf.getvalue()


def write_exports(tr, stem: Path, media: Path) -> list[Path]:
    """All five formats beside ``stem`` (``stem.TextGrid``, ``stem.eaf`` ...); returns their paths."""
    name = Path(media).stem
    out = [write_textgrid(tr, stem.with_name(stem.name + ".TextGrid")),
           write_eaf(tr, stem.with_name(stem.name + ".eaf"), Path(media)),
           atomic_write_text(stem.with_name(stem.name + ".ctm"), ctm_text(name, tr.phones))]
    if tr.words is not None:
        out.append(atomic_write_text(stem.with_name(stem.name + ".words.ctm"), ctm_text(name, tr.words)))
    out += [atomic_write_text(stem.with_name(stem.name + ".srt"), srt_text(tr.chunks)),
            atomic_write_text(stem.with_name(stem.name + ".csv"), csv_text(tr))]
    return out
