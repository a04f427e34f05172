"""``w2vu vad``: remove non-speech from the audio of a manifest, writing new audio and manifest.

    w2vu vad out/synth/train.tsv out/vad                 # one manifest
    w2vu vad out/synth out/vad method=energy             # every manifest in the folder

For each utterance the speech regions are found (rVAD by default, see
:mod:`wav2vec_u.audio.vad`), leading/trailing non-speech is cut and long inner pauses are
shortened; the result is written as 16 kHz mono PCM-16 under ``OUTDIR/audio/<split>/`` with
a manifest ``OUTDIR/<split>.tsv`` (root = ``OUTDIR/audio/<split>``), the kept regions per
utterance in ``OUTDIR/<split>.vad.jsonl`` and files without any detected speech in
``OUTDIR/skipped.tsv``. Line-aligned labels beside the manifest (``<split>.phn``, ``.wrd``,
``.ltr``) are copied for the kept utterances, so a labelled corpus stays labelled, and synth
phone timings (``<split>.timings.jsonl``) are moved onto the cut audio (a phone whose start or
end was cut gets ``null``).

Output names follow the one path-safety rule (``wav2vec_u.audio.manifest.output_names``):
always inside ``OUTDIR``, whatever the manifest lists (``/data/u.flac`` and ``../u.flac``
included), and distinct (``u.flac`` and ``u.ogg`` become ``u.wav`` and ``u.ogg.wav``). In a
folder, the manifests are recognised by their format: ``skipped.tsv`` and other tables are not
splits. A sample count that disagrees with its file is a warning naming the manifest line.

wav2vec-U removes every non-speech frame (fairseq ``remove_silence.py``); set
``margin_s=0 max_pause_s=0 keep_pause_s=0`` to do the same.
"""

from __future__ import annotations

import logging
from pathlib import Path

from wav2vec_u.audio.vad_corpus import LABEL_SUFFIXES, VadCommandConfig, vad_manifest, _manifests
from wav2vec_u.config import add_config_arguments, add_stage_arguments, add_tracking_arguments, config_from_args, save_config, to_dict
from wav2vec_u.io import atomic_write_text, sha256_file, write_json
from wav2vec_u.stage import fingerprint, run_stage
from wav2vec_u.tracking import Tracker, provenance

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:

    parser.add_argument("manifest", type=Path, help="a manifest (train.tsv) or a folder: every manifest in it")
    parser.add_argument("outdir", type=Path, help="output folder: <split>.tsv, audio/<split>/, <split>.vad.jsonl")
    add_stage_arguments(parser)
    add_config_arguments(parser)
    add_tracking_arguments(parser)


def run(args) -> int:

    cfg = config_from_args(VadCommandConfig, args)
    manifests = _manifests(args.manifest)
    outdir: Path = args.outdir
    inputs = [m for m in manifests] + [m.with_suffix(s) for m in manifests for s in (*LABEL_SUFFIXES, ".timings.jsonl")
                                       if m.with_suffix(s).is_file()]
    fp = fingerprint({"config": to_dict(cfg), "version": 1}, inputs=inputs)
    outputs = [m.name for m in manifests] + ["skipped.tsv", "meta.json"]

    def work() -> None:
        save_config(cfg, outdir / "config.yaml")
        with Tracker(outdir, "vad", config=cfg, inputs={str(m): sha256_file(m) for m in manifests},
                     wandb=args.wandb) as tracker:
            summaries = []
            for m in manifests:
                s = vad_manifest(m, outdir, cfg, progress=args.progress)
                summaries.append(s)
                tracker.log({f"{s['split']}_seconds_in": s["seconds_in"], f"{s['split']}_seconds_out": s["seconds_out"],
                             f"{s['split']}_kept": s["kept"], f"{s['split']}_skipped": len(s["skipped"])})
                log.info("vad %s: %d of %d files kept, %.1f s -> %.1f s of audio", s["split"], s["kept"], s["files"],
                         s["seconds_in"], s["seconds_out"])
            atomic_write_text(outdir / "skipped.tsv", "split\tpath\treason\tdetail\n" + "".join(
                f"{s['split']}\t{r['rel']}\t{r['reason']}\t{r['detail']}\n" for s in summaries for r in s["skipped"]))
            meta = provenance(cfg, None, {str(m): sha256_file(m) for m in manifests})
            meta["summary"] = [{k: (len(v) if k == "skipped" else v) for k, v in s.items()} for s in summaries]
            write_json(outdir / "meta.json", meta)

    if not run_stage(outdir, fp, outputs, work, force=args.force)[0]:
        log.info("vad: %s is up to date (same manifests and config); --force recomputes", outdir)
    return 0
