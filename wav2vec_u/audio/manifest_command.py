"""``w2vu manifest``: a fairseq manifest for a folder of audio, converted to 16 kHz mono where needed.

    w2vu manifest /data/my_corpus out/manifest valid_percent=0.05 min_seconds=1.0

Walks ``SRC`` recursively for the configured extensions (whatever soundfile reads: wav, flac,
ogg, mp3, ...) and checks every file. Good files go into ``train.tsv`` (and ``valid.tsv``
when ``valid_percent > 0``, a seeded split as in fairseq's ``wav2vec_manifest.py``). Bad files
are listed in ``skipped.tsv`` (``path<TAB>reason<TAB>detail``) with one of the reasons

- ``bad_name``    its name holds a tab or a line break, which a manifest line cannot (rename it)
- ``unreadable``  soundfile cannot decode it (corrupt, truncated, not audio)
- ``empty``       zero bytes or zero samples
- ``too_short``   shorter than ``min_seconds``
- ``silent``      peak amplitude below ``silence_peak``

Stereo (or more channels) is mixed down with a logged warning, other rates are resampled.
A file that decodes but looks damaged (a WAV shorter than its header says, samples beyond or
at full scale) is kept with a logged warning naming it (``wav2vec_u.audio.io.audio_problems``).
With ``copy_audio=as_needed`` the manifest points into ``SRC`` when every good file is already
16 kHz mono WAV; otherwise (and always with ``copy_audio=always``) 16 kHz mono PCM-16 copies
are written under ``OUTDIR/audio/`` with the same relative paths, named by the one path-safety
rule (``wav2vec_u.audio.manifest.output_names``: ``a.flac`` -> ``a.wav``, or ``a.flac.wav``
when ``a.wav`` exists too). ``SRC`` is never modified.
"""

from __future__ import annotations

import logging
from pathlib import Path


from wav2vec_u.audio.collect import ManifestConfig, make_manifest, source_listing
from wav2vec_u.config import add_config_arguments, add_stage_arguments, add_tracking_arguments, config_from_args, save_config, to_dict
from wav2vec_u.io import write_json
from wav2vec_u.stage import fingerprint, run_stage
from wav2vec_u.tracking import Tracker, provenance
log = logging.getLogger(__name__)


def add_arguments(parser) -> None:

    parser.add_argument("src", type=Path, help="folder of audio files (searched recursively)")
    parser.add_argument("outdir", type=Path, help="output folder: train.tsv [valid.tsv], skipped.tsv, audio/")
    add_stage_arguments(parser)
    add_config_arguments(parser)
    add_tracking_arguments(parser)


def run(args) -> int:

    cfg = config_from_args(ManifestConfig, args)
    src, outdir = args.src.resolve(), args.outdir.resolve()
    if not src.is_dir():
        raise FileNotFoundError(f"audio folder not found: {src}")
    fp = fingerprint({"config": to_dict(cfg), "src": str(src), "files": source_listing(src, cfg, outdir)})
    outputs = ["train.tsv", "skipped.tsv", "meta.json"] + (["valid.tsv"] if cfg.valid_percent > 0 else [])

    def work() -> None:
        save_config(cfg, outdir / "config.yaml")
        with Tracker(outdir, "manifest", config=cfg, seed=cfg.seed, wandb=args.wandb) as tracker:
            summary = make_manifest(src, outdir, cfg, progress=args.progress)
            tracker.log({k: v for k, v in summary.items() if isinstance(v, (int, float))})
            meta = provenance(cfg, cfg.seed, {"source": str(src)})
            meta["summary"] = summary
            write_json(outdir / "meta.json", meta)
            log.info("manifest: %d of %d files kept (%.3f h), %d converted, skipped %s; root %s",
                     summary["kept"], summary["files"], summary["hours"], summary["converted"], summary["skipped"] or "none",
                     summary["root"])

    if not run_stage(outdir, fp, outputs, work, force=args.force)[0]:
        log.info("manifest: %s is up to date (same files and config); --force recomputes", outdir)
    return 0
