"""The phone inventory in fairseq's ``dict.phn.txt`` format: one ``symbol count`` line per phone.

    d = PhoneDictionary.from_counts(Counter({"ə": 10, "t": 7}), extra={"<SIL>": 3})
    d.save("text/dict.phn.txt")
    d = PhoneDictionary.load("text/dict.phn.txt")
    d.symbols, d.index("t"), len(d)      # (["ə", "t", "<SIL>"], 1, 3)

Symbols keep file order (fairseq writes them most frequent first); the symbols are exactly
the lines of the file (fairseq's ``<s>``, ``<pad>``, ``</s>``, ``<unk>`` are not added).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping

from wav2vec_u.io import atomic_write_text


class PhoneDictionary:
    def __init__(self, symbols: Iterable[str], counts: Iterable[int] | None = None):
        self.symbols: list[str] = list(symbols)
        self.counts: list[int] = list(counts) if counts is not None else [0] * len(self.symbols)
        if len(self.counts) != len(self.symbols):
            raise ValueError("symbols and counts differ in length")
        self._index = {}
        for i, s in enumerate(self.symbols):
            if not s or any(c.isspace() for c in s):
                raise ValueError(f"phone symbol {s!r} is empty or contains white space")
            if s in self._index:
                raise ValueError(f"phone symbol {s!r} appears twice")
            self._index[s] = i

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], extra: Mapping[str, int] | None = None) -> "PhoneDictionary":
        """Most frequent first (ties by symbol, so the order is reproducible), then ``extra`` in order."""
        items = sorted(((s, c) for s, c in counts.items() if s not in (extra or {})), key=lambda sc: (-sc[1], sc[0]))
        items += list((extra or {}).items())
        return cls([s for s, _ in items], [int(c) for _, c in items])

    @classmethod
    def load(cls, path: str | Path) -> "PhoneDictionary":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"phone dictionary not found: {path} (run `w2vu prepare-text`)")
        symbols, counts = [], []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{path}:{n}: expected 'symbol count', got {line!r}")
            symbols.append(parts[0])
            counts.append(int(parts[1]))
        if not symbols:
            raise ValueError(f"phone dictionary {path} is empty")
        try:
            return cls(symbols, counts)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def save(self, path: str | Path) -> Path:
        return atomic_write_text(path, "".join(f"{s} {c}\n" for s, c in zip(self.symbols, self.counts)))

    def index(self, symbol: str) -> int:
        try:
            return self._index[symbol]
        except KeyError:
            raise KeyError(f"phone {symbol!r} is not in the dictionary") from None

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._index

    def __len__(self) -> int:
        return len(self.symbols)

    def __iter__(self):
        return iter(self.symbols)

    def count_dict(self) -> Counter:
        return Counter(dict(zip(self.symbols, self.counts)))
