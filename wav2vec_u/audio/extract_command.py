"""``w2vu extract``: frame features for the manifests of a corpus.

    w2vu extract corpus/ feats/                                  # every manifest in corpus/, MFCC
    w2vu extract corpus/train.tsv feats/ --extractor fairseq:wav2vec_vox_new.pt --layer 14 \\
        features.device=cuda features.dtype=float16
    w2vu extract corpus/train.tsv feats/ --extractor hf:facebook/wav2vec2-large-xlsr-53 --shard 3/8
    w2vu extract corpus/train.tsv feats/ --extractor hf:facebook/wav2vec2-large-xlsr-53 --merge --shards 8
    w2vu extract corpus/ feats/ --extractor hf:facebook/wav2vec2-large-xlsr-53 --shards 8 --launcher slurm \
        --slurm-config slurm.yaml        # 8 shard jobs (a job array), then the merge, in one command

Options live in :class:`wav2vec_u.audio.extract.ExtractConfig` (``--config`` YAML such as
``configs/features/mfcc.yaml`` plus ``key=value`` overrides); ``--extractor``, ``--layer`` and
``--device`` are shortcuts for ``features.extractor=...`` etc.

In a folder, the manifests are recognised by their format (a root line, then path<TAB>count
rows), so ``skipped.tsv`` of ``w2vu manifest``/``w2vu vad`` is never a split and a stray table is
skipped with a warning; every manifest is checked before the output folder is made.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from wav2vec_u.config import add_config_arguments, add_stage_arguments, add_tracking_arguments, config_from_args
from wav2vec_u.audio.manifest import split_manifests
from wav2vec_u.tracking import Tracker

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", type=Path, help="a fairseq manifest (.tsv), or a folder: every manifest in it is a split")
    parser.add_argument("outdir", type=Path, help="feature folder ({split}.npy, .lengths, .tsv, meta.json)")
    parser.add_argument("--splits", nargs="+", help="with a folder: only these splits (default: every manifest)")
    parser.add_argument("--extractor", help="shortcut for features.extractor (mfcc, logmel, hf:<id-or-dir>, fairseq:<ckpt.pt>)")
    parser.add_argument("--layer", help="shortcut for features.layer (fairseq semantics; 'null' = final output)")
    parser.add_argument("--device", help="shortcut for features.device (cpu, cuda, cuda:1)")
    parser.add_argument("--shard", help="i/n: extract only the i-th (0-based) of n slices of each manifest")
    parser.add_argument("--merge", action="store_true", help="only join finished shards (needs --shards)")
    parser.add_argument("--shards", type=int, help="number of shards to join with --merge, or to run with --launcher")
    parser.add_argument("--launcher", choices=["none", "local", "slurm"], default="none",
                        help="local/slurm: run the --shards N shards as submitit jobs (a SLURM job array), wait, merge")
    parser.add_argument("--slurm-config", type=Path,
                        help="YAML of SlurmConfig (partition, timeout_min, gpus_per_node, cpus_per_task, mem_gb, ...)")
    add_stage_arguments(parser, force=False)
    add_config_arguments(parser)
    add_tracking_arguments(parser)


def shortcut_overrides(args: argparse.Namespace) -> list[str]:
    out = []
    if args.extractor:
        out.append(f"features.extractor={args.extractor}")
    if args.layer is not None:
        out.append(f"features.layer={args.layer}")
    if args.device:
        out.append(f"features.device={args.device}")
    return out


def run(args: argparse.Namespace) -> int:
    from wav2vec_u.audio.extract import ExtractConfig, ExtractionJob, merge_split, parse_shard
    from wav2vec_u.audio.features import build_extractor

    args.overrides = shortcut_overrides(args) + list(args.overrides)
    cfg = config_from_args(ExtractConfig, args)
    manifests = split_manifests(args.manifest, args.splits)
    if args.launcher != "none":
        return _launch_shards(args, cfg, manifests)
    if args.merge:
        if not args.shards:
            raise ValueError("--merge needs --shards N (the number of shards the jobs used)")
        ok = all(merge_split(m, args.outdir, s, cfg, args.shards) for s, m in manifests.items())
        return 0 if ok else 1
    shard = parse_shard(args.shard)
    extractor = build_extractor(cfg.features)  # one model load for every split
    stage = "extract" if shard[1] == 1 else f"extract.shard{shard[0]}of{shard[1]}"
    with Tracker(args.outdir, stage=stage, config=cfg, wandb=args.wandb,
                 inputs={s: str(m) for s, m in manifests.items()}) as tracker:
        for split, manifest in manifests.items():
            result = ExtractionJob(manifest, args.outdir, split, cfg, shard, extractor).run(progress=args.progress)
            tracker.log({"split": split, **{k: v for k, v in result.items() if isinstance(v, (int, float, str, bool))}})
            print(f"{split}: {result['status']}" + (f", {result['audio_seconds_per_second']:.1f} audio-s/s"
                                                     if "audio_seconds_per_second" in result else ""))
    return 0


def _launch_shards(args: argparse.Namespace, cfg, manifests: dict) -> int:
    """``--shards N --launcher local|slurm``: ``w2vu extract ... --shard i/N`` as N submitit jobs, then the merge here."""
    import torch

    from wav2vec_u.audio.extract import merge_split
    from wav2vec_u.config import load_config, save_config
    from wav2vec_u.launch import run_cli_jobs
    from wav2vec_u.train.config import SlurmConfig

    if args.shard or args.merge:
        raise ValueError("--launcher runs every shard and merges: leave out --shard and --merge")
    if not args.shards or args.shards < 1:
        raise ValueError("--launcher needs --shards N (how many jobs to split each manifest into)")
    slurm = load_config(SlurmConfig, args.slurm_config)
    args.outdir.mkdir(parents=True, exist_ok=True)
    resolved = args.outdir / "extract.launch.yaml"  # the jobs read the resolved config, so they all agree
    save_config(cfg, resolved)
    base = ["extract", str(args.manifest), str(args.outdir), "--config", str(resolved), "--no-progress",
            "--wandb" if args.wandb else "--no-wandb"]
    if args.splits:
        base += ["--splits", *args.splits]
    argvs = [[*base, "--shard", f"{i}/{args.shards}"] for i in range(args.shards)]
    failures = run_cli_jobs(argvs, args.launcher, slurm, args.outdir / "submitit", "w2vu-extract",
                            torch.get_num_threads())
    for f in failures:
        log.error("%s", f)
    if failures:
        print(f"{len(failures)} of {args.shards} shard jobs failed (logs in {args.outdir / 'submitit'}); "
              "run the same command again: finished shards are kept")
        return 1
    ok = all(merge_split(m, args.outdir, s, cfg, args.shards) for s, m in manifests.items())
    print(f"{args.shards} shards {'merged' if ok else 'NOT all present'}: {', '.join(manifests)}")
    return 0 if ok else 1
