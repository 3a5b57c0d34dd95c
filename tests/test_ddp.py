"""Distributed data parallel on 2 CPU processes (gloo), started by torchrun as a user would."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from forecast_fixtures import synthetic_frame

TESTS = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("ema", [0.0, 0.9])  # with ema, what each rank keeps is its moving average
def test_ddp_two_cpu_processes_keep_identical_weights_and_learn(tmp_path, ema):
    proc = torchrun(str(TESTS / "ddp_worker.py"), str(tmp_path), str(ema), cwd=TESTS.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(i["world"] == 2 and i["backend"] == "gloo" for i in info)
    assert info[0]["steps"] == 9  # 541 windows / 2 ranks / batch 32: each rank sees half
    assert info[0]["best_val"] == info[1]["best_val"] < 0.8 * info[0]["before"]  # all-reduced, and learned
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for k in a:
        assert torch.equal(a[k], b[k]), k  # gradients were averaged across the two processes
    assert (tmp_path / "ckpt" / "last.pt").exists()


def test_train_pipeline_under_torchrun(tmp_path):
    csv = tmp_path / "toy.csv"
    synthetic_frame(800).to_csv(csv, index=False)
    proc = torchrun(
        "-m",
        "pipelines.train",
        "--dataset",
        str(csv),
        "--lookback",
        "48",
        "--horizons",
        "12",
        "--epochs",
        "1",
        "--d-model",
        "16",
        "--d-state",
        "16",
        "--layers",
        "1",
        "--segment",
        "8",
        "--no-track",
        "--no-progress",
        "--out",
        str(tmp_path / "runs"),
        cwd=TESTS.parent,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("| 12 |") == 1  # one results table, from rank 0
    assert (tmp_path / "runs" / "toy" / "L48-H12-quick" / "results.json").exists()  # a quick run (no --full)
