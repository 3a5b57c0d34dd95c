"""Data: the dataset registry, validated ingestion to Parquet, and protocol-exact windows.

Imports point one way: registry -> files/download -> read -> validate -> ingest -> series ->
scaling -> windows, which yield the named batch of batch.py. See docs/guide.md "Data" for the commands
and ../shared/spec/forecasting.md for the protocol.
"""

from lruts.data.batch import WindowBatch
from lruts.data.files import data_dirs, data_home, resolve_raw
from lruts.data.ingest import IngestResult, PartialDatasetWarning, ingest
from lruts.data.registry import DATASETS, DatasetSpec
from lruts.data.report import IngestReport
from lruts.data.scaling import StandardScaler
from lruts.data.series import Series, load_series
from lruts.data.validate import FILL_POLICIES
from lruts.data.windows import Splits, WindowDataset, make_splits, split_borders

__all__ = [
    "DATASETS",
    "FILL_POLICIES",
    "DatasetSpec",
    "IngestReport",
    "IngestResult",
    "PartialDatasetWarning",
    "Series",
    "Splits",
    "StandardScaler",
    "WindowBatch",
    "WindowDataset",
    "data_dirs",
    "data_home",
    "ingest",
    "load_series",
    "make_splits",
    "resolve_raw",
    "split_borders",
]
