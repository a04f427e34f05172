"""Shared test set-up: ``tests/`` is importable, so every test reads its toy data from ``toys``
(tests/toys.py, the one toy module), also when a test file is run from another folder."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
