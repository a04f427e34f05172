"""Atomic writes and the stage fingerprint cache."""

import pytest

from wav2vec_u.io import atomic_path, atomic_write_text
from wav2vec_u.stage import fingerprint, is_current, mark_done


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_stage_skips_only_when_inputs_and_options_match(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("a")
    out = tmp_path / "stage"
    out.mkdir()
    (out / "result").write_text("r")
    fp = fingerprint({"k": 1}, [inp])
    assert not is_current(out, fp)
    mark_done(out, fp, outputs=["result"])
    assert is_current(out, fingerprint({"k": 1}, [inp]))
    assert not is_current(out, fingerprint({"k": 2}, [inp]))
    inp.write_text("b")
    assert not is_current(out, fingerprint({"k": 1}, [inp]))
    (out / "result").unlink()
    assert not is_current(out, fp)


def test_atomic_write_uses_umask_mode(tmp_path):
    import os
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "m.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "m.txt").stat().st_mode & 0o777 == 0o644
