"""Two processes on the gloo backend (as torchrun would start them) train and checkpoint."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from wav2vec_u.config import apply_overrides, from_dict
from wav2vec_u.train.checkpoint import load_checkpoint
from wav2vec_u.train.config import GanConfig
from toys import make_toy, write_toy


def _worker(rank, world, port, feats, text, outdir, result_dir):
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from wav2vec_u.train.run import train_gan

    cfg = from_dict(GanConfig, apply_overrides({}, [
        f"data.features={feats}", f"data.text={text}", "data.batch_size=8", "discriminator.dim=16",
        "trainer.max_updates=20", "trainer.validate_every=10", "trainer.save_every=10", "trainer.progress=false"]))
    summary = train_gan(cfg, outdir)
    with open(os.path.join(result_dir, f"rank{rank}.json"), "w") as f:
        json.dump(summary, f)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(120)
def test_two_process_gloo_run_trains_and_checkpoints(tmp_path):
    toy = make_toy(num_phones=6, dim=8, num_train=40, num_valid=10, num_text=60, min_len=3, max_len=8, seed=3)
    write_toy(toy, tmp_path / "feats", tmp_path / "text")
    out = tmp_path / "run"
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "feats"), str(tmp_path / "text"), str(out), str(tmp_path)),
             nprocs=2, join=True)
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world_size"] == 2 and r0["step"] == r1["step"] == 20
    # gradients are all-reduced, so both ranks hold the same models after every update
    assert r0["param_checksum"] == pytest.approx(r1["param_checksum"], rel=1e-6, abs=1e-6)
    state = load_checkpoint(out / "last.pt")
    assert state["step"] == 20 and state["world_size"] == 2
    assert (out / "best.pt").is_file() and (out / "metrics.jsonl").is_file()
