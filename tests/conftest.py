import os

import pytest
import torch

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(params=["numba", "torch"])
def scan_backend(request, monkeypatch):
    """Run a test once per scan backend (numba kernel on CPU, chunked torch ops everywhere)."""
    monkeypatch.setenv("LRUTS_SCAN_BACKEND", request.param)
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
