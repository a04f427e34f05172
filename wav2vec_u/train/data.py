"""In-memory feature and text batches for the GAN: no worker processes, no per-step file I/O.

Features stay one flat (N, D) tensor (memory-mapped when read, on the training device once
loaded) with per-utterance offsets; a batch is one gather of a (B, L) index matrix, so the
loop is never input-bound. Text is the same: one flat int tensor of phone ids::

    feats = FeatureSet.from_dir("seg/", "train", device="cuda")
    text = TextSet.from_file("text/phones.txt", phones)
    x, mask = feats.batch(torch.tensor([0, 5, 9]))      # (3, L, D), (3, L) True at padding
    sampler = EpochSampler(len(feats), batch_size=160, seed=1)   # state_dict() for resume

wav2vec-U 2.0's auxiliary targets ride along with the frames they belong to: ``{split}.km`` beside
the features (fairseq's 2.0 layout: one line per utterance, the k-means id of every 100 Hz MFCC
frame) is decimated by ``downsample`` to the feature rate once, at load::

    feats = FeatureSet.from_dir("prep/frames", "train", aux_targets="km", aux_downsample=2)
    x, mask, ids = feats.batch_with_targets(torch.tensor([0, 5, 9]))   # ids (3, L), -1 at padding
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wav2vec_u.audio.features_io import align_targets, load_features, read_clusters
from wav2vec_u.tokens import read_token_lines

# what makes the auxiliary targets, named in the error when they are missing
TARGETS_COMMAND = "w2vu prepare-audio CORPUS OUT --config configs/features/prepare_w2vu2.yaml"


def read_dictionary(text_dir: str | Path) -> list[str]:
    """Phone symbols of ``dict.phn.txt`` in file order (first column); the generator's output set."""
    path = Path(text_dir) / "dict.phn.txt"
    if not path.is_file():
        raise FileNotFoundError(f"missing phone dictionary {path} (run `w2vu prepare-text` first)")
    try:
        from wav2vec_u.text.dictionary import PhoneDictionary  # noqa: PLC0415

        return list(PhoneDictionary.load(path).symbols)
    except ImportError:
        pass
    symbols = [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not symbols:
        raise ValueError(f"{path} is empty")
    return symbols


class FeatureSet:
    """Utterances of segment features as one flat tensor plus offsets."""

    def __init__(self, feats: np.ndarray | torch.Tensor, lengths: list[int], refs: list[list[str]] | None = None,
                 device: str | torch.device = "cpu", targets: np.ndarray | None = None):
        if len(lengths) == 0:
            raise ValueError("no utterances")
        if any(n <= 0 for n in lengths):
            raise ValueError("utterances of length 0 cannot be used by the GAN")
        self.feats = torch.from_numpy(np.array(feats, dtype=np.float32)).to(device)  # read into memory once
        self.lengths = torch.tensor(lengths, dtype=torch.long, device=device)
        self.offsets = torch.cumsum(self.lengths, 0) - self.lengths
        self.max_length = max(lengths)
        self.refs = refs
        self.dim = int(self.feats.shape[1])
        # (N,) auxiliary class id of every row, -1 where there is none (2.0); None without targets
        self.targets = None
        if targets is not None:
            if len(targets) != len(self.feats):
                raise ValueError(f"{len(targets)} targets for {len(self.feats)} feature rows")
            self.targets = torch.as_tensor(np.asarray(targets, dtype=np.int64), device=device)

    @classmethod
    def from_dir(cls, directory: str | Path, split: str, device: str | torch.device = "cpu",
                 aux_targets: str = "", aux_downsample: int = 1) -> "FeatureSet":
        """``aux_targets``: the suffix of the target file (``km`` reads ``{split}.km``); "" for none."""
        feats, lengths = load_features(directory, split, mmap=True)
        phn = Path(directory) / f"{split}.phn"
        refs = None
        if phn.is_file():
            refs = read_token_lines(phn)
            if len(refs) != len(lengths):
                raise ValueError(f"{phn} has {len(refs)} lines for {len(lengths)} utterances")
        targets = None
        if aux_targets:
            path = Path(directory) / f"{split}.{aux_targets}"
            if not path.is_file():
                raise FileNotFoundError(
                    f"missing auxiliary targets {path}: wav2vec-U 2.0's auxiliary loss (loss.aux_weight > 0) needs "
                    f"the k-means id of every MFCC frame of each {split} utterance. Make them with `{TARGETS_COMMAND}` "
                    f"(they land in OUT/frames/{split}.{aux_targets}), or train without the loss: loss.aux_weight=0")
            targets = align_targets(read_clusters(path), lengths, aux_downsample, str(path))
        return cls(feats, lengths, refs, device, targets)

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def batch(self, idx: torch.Tensor, max_len: int = 0, generator: torch.Generator | None = None,
              static: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """idx (B,) utterance ids -> feats (B, L, D), padding_mask (B, L); ``max_len`` > 0 crops a random window.

        ``static``: L is the longest utterance of the whole set (or ``max_len``), not of the batch,
        so shapes never change and nothing waits for the device."""
        rows, mask = self._rows(idx, max_len, generator, static)
        return self.feats[rows].masked_fill(mask[:, :, None], 0.0), mask

    def batch_with_targets(self, idx: torch.Tensor, max_len: int = 0, generator: torch.Generator | None = None,
                           static: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`batch` plus the auxiliary targets of the same rows (B, L), -1 at padding."""
        if self.targets is None:
            raise ValueError("this feature set has no auxiliary targets (data.aux_targets)")
        rows, mask = self._rows(idx, max_len, generator, static)
        return self.feats[rows].masked_fill(mask[:, :, None], 0.0), mask, self.targets[rows].masked_fill(mask, -1)

    def _rows(self, idx: torch.Tensor, max_len: int, generator: torch.Generator | None,
              static: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) row of every batch position in the flat tensors, and the padding mask."""
        idx = idx.to(self.lengths.device)
        lengths = self.lengths[idx]
        starts = self.offsets[idx]
        if max_len > 0:
            excess = (lengths - max_len).clamp(min=0)
            shift = (torch.rand(len(idx), generator=generator).to(lengths.device) * (excess + 1)).long()
            starts = starts + shift
            lengths = lengths.clamp(max=max_len)
        if static:
            L = min(self.max_length, max_len) if max_len > 0 else self.max_length
        else:
            L = int(lengths.max())
        pos = torch.arange(L, device=lengths.device)
        mask = pos[None, :] >= lengths[:, None]
        rows = (starts[:, None] + pos[None, :]).masked_fill(mask, 0)
        return rows, mask


class TextSet:
    """Sentences of phone ids as one flat tensor plus offsets."""

    def __init__(self, sentences: list[list[str]], phones: list[str], device: str | torch.device = "cpu",
                 source: str = "text"):
        index = {p: i for i, p in enumerate(phones)}
        ids, lengths = [], []
        for n, sent in enumerate(sentences):
            if not sent:
                continue
            try:
                ids.extend(index[p] for p in sent)
            except KeyError as exc:
                raise ValueError(f"{source}:{n + 1}: phone {exc.args[0]!r} is not in the phone dictionary") from None
            lengths.append(len(sent))
        if not lengths:
            raise ValueError(f"{source}: no sentences")
        self.max_length = max(lengths)
        self.tokens = torch.tensor(ids, dtype=torch.long, device=device)
        self.lengths = torch.tensor(lengths, dtype=torch.long, device=device)
        self.offsets = torch.cumsum(self.lengths, 0) - self.lengths

    @classmethod
    def from_file(cls, path: str | Path, phones: list[str], device: str | torch.device = "cpu") -> "TextSet":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"missing phone text {path} (run `w2vu prepare-text` first)")
        return cls(read_token_lines(path), phones, device, source=str(path))

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def batch(self, idx: torch.Tensor, static: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """idx (B,) -> tokens (B, L) (−1 at padding), padding_mask (B, L); ``static``: L = longest sentence."""
        idx = idx.to(self.lengths.device)
        lengths = self.lengths[idx]
        L = self.max_length if static else int(lengths.max())
        pos = torch.arange(L, device=lengths.device)
        mask = pos[None, :] >= lengths[:, None]
        rows = (self.offsets[idx][:, None] + pos[None, :]).masked_fill(mask, 0)
        return self.tokens[rows].masked_fill(mask, -1), mask


class EpochSampler:
    """Batches of indices from a fresh permutation per epoch; the order is a function of
    (seed, epoch, position), so resuming from ``state_dict()`` continues the same order.
    With DDP, each rank takes its slice of the global batch."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} is not divisible by {world_size} processes")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.pos = 0, 0
        self._perm = self._make_perm()

    def _make_perm(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=g)

    def next(self) -> torch.Tensor:
        out = []
        need = self.batch_size
        while need > 0:
            if self.pos >= self.n:
                self.epoch, self.pos = self.epoch + 1, 0
                self._perm = self._make_perm()
            take = self._perm[self.pos:self.pos + need]
            out.append(take)
            self.pos += len(take)
            need -= len(take)
        batch = torch.cat(out)
        per = self.batch_size // self.world_size
        return batch[self.rank * per:(self.rank + 1) * per]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        _check_kind(state, "epoch")
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._perm = self._make_perm()


class LengthBatchSampler:
    """The reference's feature batches (``data.sampling=reference``): built once, only their order
    shuffled per epoch.

    The utterances in a seeded random order (the reference's w2vu.yaml: ``task.sort_by_length: false``)
    or, with ``sort_by_length``, sorted by length, longest first, ties broken at random (fairseq's task
    default: then a batch holds utterances of similar length); consecutive runs of ``batch_size`` form
    the batches, the last one smaller when ``batch_size`` does not divide the set (fairseq:
    ``ordered_indices``, ``batch_by_size`` cuts, the epoch iterator reuses the batches and shuffles their
    order with seed + epoch). With DDP each rank takes its slice of the global batch; the last batch is cut
    to a multiple of the number of processes. State: (epoch, position), as :class:`EpochSampler`.
    """

    def __init__(self, lengths: torch.Tensor, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 sort_by_length: bool = False):
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} is not divisible by {world_size} processes")
        lengths = torch.as_tensor(lengths).cpu()
        self.seed, self.rank, self.world_size = seed, rank, world_size
        tie = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(seed * 1_000_003 + 104_723))
        order = tie[torch.sort(lengths[tie], descending=True, stable=True).indices] if sort_by_length else tie
        batches = list(order.split(batch_size))
        keep = len(batches[-1]) - len(batches[-1]) % world_size
        batches[-1] = batches[-1][:keep]
        self.batches = [b for b in batches if len(b)]
        self.epoch, self.pos = 0, 0
        self._order = self._make_order()

    def _make_order(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(len(self.batches), generator=g)

    def next(self) -> torch.Tensor:
        if self.pos >= len(self.batches):
            self.epoch, self.pos = self.epoch + 1, 0
            self._order = self._make_order()
        batch = self.batches[int(self._order[self.pos])]
        self.pos += 1
        per = len(batch) // self.world_size
        return batch[self.rank * per:(self.rank + 1) * per]

    def state_dict(self) -> dict:
        return {"kind": "length_batches", "epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        _check_kind(state, "length_batches")
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._order = self._make_order()


class ReplacementSampler:
    """Sentences drawn with replacement (``data.sampling=reference``): each utterance of a batch gets
    one random line (fairseq's ``RandomInputDataset``: ``random.choice`` per item). Draw ``k`` is a
    function of (seed, k), so resuming from ``state_dict()`` continues the same draws."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.count = 0

    def next(self, size: int = 0) -> torch.Tensor:
        """``size`` lines of the global batch (0: ``batch_size``); this rank's slice."""
        size = size or self.batch_size
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.count)
        self.count += 1
        batch = torch.randint(self.n, (size,), generator=g)
        per = size // self.world_size
        return batch[self.rank * per:(self.rank + 1) * per]

    def state_dict(self) -> dict:
        return {"kind": "replacement", "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        _check_kind(state, "replacement")
        self.count = int(state["count"])


def _check_kind(state: dict, kind: str) -> None:
    have = state.get("kind", "epoch")
    if have != kind:
        raise ValueError(f"the checkpoint's data order was made by another data.sampling ({have} sampler, this run "
                         f"uses a {kind} sampler); resume with the data.sampling it was trained with")
