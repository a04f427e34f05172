"""A warm start for the GAN's generator: first learn pseudo-labels (CTC), then train adversarially.

    model, phones, _ = train_supervised(x, lengths, labels, SupervisedConfig(), gan_cfg.generator)  # demo.baselines
    write_generator_init("warm/init.pt", model, ["<blank>", *phones])
    # train-gan with trainer.init_generator=warm/init.pt: the generator starts from those weights

The generator trained with CTC has one output per phone plus the blank. The GAN's generator has
one output per dictionary symbol (``<SIL>`` included, and fairseq's four specials when
``generator.special_outputs``). Output rows are copied by symbol name; ``<SIL>`` takes the blank's
row (both stand for "no phone here" in their model); symbols the labels never had keep their
fresh initialisation. Every other parameter must have the same shape in both.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch

from wav2vec_u.io import load_tagged_state, save_state
from wav2vec_u.tokens import SIL

log = logging.getLogger(__name__)

FORMAT = "wav2vec-u-generator-init/1"
BLANK = "<blank>"


def write_generator_init(path: str | Path, generator: torch.nn.Module, symbols: Sequence[str]) -> Path:
    """Save ``generator``'s weights with the symbol of each output row (``symbols[i]`` is row i)."""
    state = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}
    return save_state(path, {"format": FORMAT, "symbols": list(symbols), "generator": state})


def apply_generator_init(generator: torch.nn.Module, path: str | Path, symbols: Sequence[str]) -> dict[str, int]:
    """Copy a :func:`write_generator_init` file into ``generator`` (outputs ``symbols``), rows by name.

    Returns counts of output rows copied by name, copied from the blank (``<SIL>``), and left fresh.
    """
    init = load_tagged_state(path, FORMAT, "generator init")
    src_symbols = list(init["symbols"])
    src_index = {s: i for i, s in enumerate(src_symbols)}
    rows, from_blank, fresh = [], 0, 0
    for s in symbols:
        if s in src_index:
            rows.append(src_index[s])
        elif s == SIL and BLANK in src_index:
            rows.append(src_index[BLANK])
            from_blank += 1
        else:
            rows.append(-1)
            fresh += 1
    target = generator.state_dict()
    new_state = {}
    for name, value in target.items():
        src = init["generator"].get(name)
        if src is None:
            raise ValueError(f"{path}: no weights for the generator's {name}: it was made for another generator")
        if tuple(src.shape) == tuple(value.shape) and len(src_symbols) != len(symbols):
            new_state[name] = src
        elif src.dim() >= 1 and src.shape[0] == len(src_symbols) and value.shape[0] == len(symbols) \
                and tuple(src.shape[1:]) == tuple(value.shape[1:]):
            out = value.clone()
            for i, r in enumerate(rows):
                if r >= 0:
                    out[i] = src[r]
            new_state[name] = out
        elif tuple(src.shape) == tuple(value.shape):
            new_state[name] = src
        else:
            raise ValueError(f"{path}: {name} has shape {tuple(src.shape)}, the generator's is {tuple(value.shape)}: "
                             "the init was made for other features or another generator")
    generator.load_state_dict(new_state)
    counts = {"by_name": len(symbols) - from_blank - fresh, "from_blank": from_blank, "fresh": fresh}
    log.info("generator initialised from %s: %s", path, counts)
    return counts
