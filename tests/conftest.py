"""Shared test set-up: ``tests/`` is importable, so every test reads its toy data from ``toys``
(tests/toys.py, the one toy module), also when a test file is run from another folder; and the
small GAN corpus the resume and robustness tests train on (``toy_dirs``)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


import pytest  # noqa: E402 - after the path set-up above

from toys import make_toy, write_toy  # noqa: E402


@pytest.fixture(scope="module")
def toy_dirs(tmp_path_factory):
    """A 6-phone toy corpus (feature dir, text dir) small enough to train a GAN for 200 updates in seconds."""
    root = tmp_path_factory.mktemp("toy")
    toy = make_toy(num_phones=6, dim=8, num_train=40, num_valid=10, num_text=60, min_len=3, max_len=8, seed=3)
    write_toy(toy, root / "feats", root / "text")
    return root / "feats", root / "text"
