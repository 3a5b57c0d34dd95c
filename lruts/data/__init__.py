"""Data: the dataset registry, validated ingestion to Parquet, and protocol-exact windows.

Imports point one way: registry -> files/download -> read -> validate -> ingest -> series ->
scaling -> windows, which yield the named batch of batch.py; a panel of long-format series: read -> panel
-> panel_windows (the same named batch, with masks and covariates). See docs/guide.md "Data" for the commands
and ../shared/spec/forecasting.md for the protocol.

The names below load on first use, like the package's own (lruts/__init__.py): asking for `data_dirs`
does not load polars.
"""

# `ingest` names both a submodule and its function: importing the submodule binds the package attribute to
# the module, so bind the function now, as an eager import did, before anyone can import the submodule
from lruts.data.ingest import ingest  # noqa: F401
from lruts.lazy import lazy_exports

# public name -> the module that defines it
_EXPORTS = {
    "DATASETS": "lruts.data.registry",
    "FILL_POLICIES": "lruts.data.validate",
    "DatasetSpec": "lruts.data.registry",
    "IngestReport": "lruts.data.report",
    "IngestResult": "lruts.data.ingest",
    "Panel": "lruts.data.panel",
    "PanelSplits": "lruts.data.panel_windows",
    "PanelWindows": "lruts.data.panel_windows",
    "PartialDatasetWarning": "lruts.data.ingest",
    "Series": "lruts.data.series",
    "Splits": "lruts.data.windows",
    "WindowBatch": "lruts.data.batch",
    "StandardScaler": "lruts.data.scaling",
    "WindowDataset": "lruts.data.windows",
    "data_dirs": "lruts.data.files",
    "data_file": "lruts.data.files",
    "data_home": "lruts.data.files",
    "ingest": "lruts.data.ingest",
    "load_panel": "lruts.data.panel",
    "load_series": "lruts.data.series",
    "make_splits": "lruts.data.windows",
    "panel_splits": "lruts.data.panel_windows",
    "resolve_raw": "lruts.data.files",
    "split_borders": "lruts.data.windows",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
