"""recipes/synthetic/run.sh and `w2vu demo` give the same table: every stage runs the same function.

Slow (two quick runs, about 3 minutes on 2 cores): `make test-all` or `pytest -m slow`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wav2vec_u.cli import main
from wav2vec_u.demo.scoring import ROW_DECIPHER, ROW_GAN

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_recipe_prints_the_demo_table(tmp_path):
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 0
    w2vu = Path(sys.executable).parent / "w2vu"
    env = {**os.environ, "W2VU": str(w2vu)}
    res = subprocess.run(["bash", str(REPO / "recipes" / "synthetic" / "run.sh"), "--quick", "--out",
                          str(tmp_path / "recipe")], cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    demo = json.loads((tmp_path / "demo" / "results.json").read_text())
    recipe = json.loads((tmp_path / "recipe" / "results.json").read_text())
    for table in ("per", "wer"):
        assert [(r["system"], r["rate"]) for r in demo[table]] == [(r["system"], r["rate"]) for r in recipe[table]]
    rows = {r["system"]: r["rate"] for r in demo["per"]}
    assert rows[ROW_DECIPHER] is not None and rows[ROW_GAN] is not None  # both methods were scored
