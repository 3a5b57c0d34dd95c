"""Every named dataset in ../shared/datasets (found through data.yaml's default or $LRUTS_DATA_DIRS) ingests
into a clean series of the expected shape and windows into train/val/test batches."""

import warnings

import numpy as np
import pytest

from lruts.data import DATASETS, PartialDatasetWarning, ingest, load_series, make_splits, resolve_raw
from lruts.training import make_loader

# (lookback, horizon) per dataset: the protocol's common setting, ILI's own (36 -> 24)
WINDOWS = {"illness": (36, 24)}


@pytest.fixture(scope="module", autouse=True)
def data_home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LRUTS_DATA_HOME", str(tmp_path_factory.mktemp("data")))
        mp.setenv("LRUTS_OFFLINE", "1")
        yield


WIDE = [name for name, spec in DATASETS.items() if not spec.panel]
PANELS = [name for name, spec in DATASETS.items() if spec.panel]


@pytest.mark.parametrize("name", WIDE)
def test_named_dataset_ingests_and_windows(name):
    spec = DATASETS[name]
    raw = resolve_raw(name)
    before = raw.read_bytes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        series = load_series(name)
    partial = [w for w in caught if issubclass(w.category, PartialDatasetWarning)]
    rows, n_series = spec.expected_shape
    assert len(series) == rows
    if series.n_channels < n_series:
        assert partial and f"{series.n_channels} of the {n_series} expected series" in str(partial[0].message)
    else:
        assert series.n_channels == n_series and not partial
    assert series.values.dtype == np.float32 and np.isfinite(series.values).all()
    assert (np.diff(series.timestamps) >= np.timedelta64(0)).all()
    assert series.freq == spec.freq and series.split == spec.split
    assert series.report is not None and series.report.source_sha256 == spec.sha256[raw.name]

    lookback, horizon = WINDOWS.get(name, (96, 96))
    splits = make_splits(series, lookback, horizon)
    assert min(len(splits.train), len(splits.val), len(splits.test)) > 0
    batch = next(iter(make_loader(splits.train, 16, shuffle=True)))
    x, y = batch.x, batch.y
    assert x.shape == (16, lookback, series.n_channels) and y.shape == (16, horizon, series.n_channels)
    assert raw.read_bytes() == before  # raw files are never modified
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDatasetWarning)
        assert ingest(name).reused  # the second time nothing is re-read


@pytest.mark.parametrize("name", PANELS)
def test_named_panel_loads_with_its_declared_columns_and_windows_per_series(name):
    """A registered panel (long rows, each series on its own span) loads as the pipelines read it: every
    long row kept, one series per id, and train/val/test windows cut inside each series."""
    from lruts.forecasting.experiment import ExperimentConfig, load_data, protocol_splits, with_dataset_defaults

    spec = DATASETS[name]
    cfg = with_dataset_defaults(ExperimentConfig(dataset=name))
    panel = load_data(cfg)
    rows, n_series = spec.expected_shape
    assert len(panel) == n_series and int(panel.lengths.sum()) == rows
    lookback, horizon = 24, spec.horizons[0]
    splits = protocol_splits(cfg, panel, lookback, horizon)
    assert min(len(splits.train), len(splits.val), len(splits.test)) > 0
    batch = next(iter(make_loader(splits.train, 16, shuffle=True)))
    assert batch.x.shape == (16, lookback, 1) and batch.y.shape == (16, horizon, 1)
    tested = {panel.ids[i] for i in splits.test.series_of(np.arange(len(splits.test))).tolist()}
    assert tested == set(panel.ids) - set(splits.dropped)  # every series long enough is tested
