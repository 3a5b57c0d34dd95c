import os
import tempfile

import pytest
import torch

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Ingested files go to a per-session folder, never into the repository's data/.
os.environ.setdefault("LRUTS_DATA_HOME", tempfile.mkdtemp(prefix="lruts-test-data-"))


@pytest.fixture(params=["numba", "torch"])
def scan_backend(request, monkeypatch):
    """Run a test once per scan backend (numba kernel on CPU, chunked torch ops everywhere)."""
    monkeypatch.setenv("LRUTS_SCAN_BACKEND", request.param)
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
