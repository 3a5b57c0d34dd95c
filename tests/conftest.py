import functools
import os
import tempfile

import pytest
import torch

import lruts.lru
from lruts.scan import linear_scan

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Ingested files go to a per-session folder, never into the repository's data/.
os.environ.setdefault("LRUTS_DATA_HOME", tempfile.mkdtemp(prefix="lruts-test-data-"))


@pytest.fixture(params=["numba", "torch"])
def scan_backend(request, monkeypatch):
    """Run a test once per scan backend (numba kernel on CPU, chunked torch ops everywhere): the backend's
    name for direct `linear_scan` calls, and the LRU layer's scans forced onto it."""
    monkeypatch.setattr(lruts.lru, "linear_scan", functools.partial(linear_scan, backend=request.param))
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
