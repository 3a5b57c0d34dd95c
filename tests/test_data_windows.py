"""Splits and windows: protocol window counts and borders, no leakage, views not copies, every test window,
layouts (multivariate / channel-independent), stride, return transforms, scaler and loader."""

import json
import warnings

import numpy as np
import pytest
import torch

from lruts.data import (
    Series,
    StandardScaler,
    WindowBatch,
    WindowDataset,
    load_series,
    make_splits,
    split_borders,
)
from lruts.errors import DataError
from lruts.training import EvalShardSampler, make_loader


@pytest.fixture(scope="module")
def data_home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LRUTS_DATA_HOME", str(tmp_path_factory.mktemp("data")))
        mp.setenv("LRUTS_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def electricity(data_home):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # partial copy: asserted in test_data_ingest
        return load_series("electricity")


def _toy(n=200, c=3, seed=0, split="ratio"):
    rng = np.random.default_rng(seed)
    ts = np.datetime64("2020-01-01T00", "ns") + np.arange(n) * np.timedelta64(1, "h")
    values = rng.normal(10, 3, (n, c)).astype(np.float32) + np.arange(c, dtype=np.float32) * 100
    return Series("toy", ts, values, [f"c{i}" for i in range(c)], "1h", split)


def test_electricity_window_counts_match_the_protocol(electricity):
    assert electricity.values.shape[0] == 26_304
    splits = make_splits(electricity, lookback=96, horizon=96)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (18_221, 2_537, 5_165)
    assert splits.borders == {"train": (0, 18_412), "val": (18_316, 21_044), "test": (20_948, 26_304)}


def test_ett_borders_are_the_fixed_tslib_borders(data_home):
    h = make_splits(load_series("ETTh1"), lookback=96, horizon=96)
    assert h.borders == {"train": (0, 8640), "val": (8544, 11520), "test": (11424, 14400)}
    assert (len(h.train), len(h.val), len(h.test)) == (8449, 2785, 2785)
    m = make_splits(load_series("ETTm1"), lookback=96, horizon=96)
    assert m.borders == {"train": (0, 34560), "val": (34464, 46080), "test": (45984, 57600)}
    assert (len(m.train), len(m.val), len(m.test)) == (34369, 11425, 11425)
    # the last rows of the files (17,420 / 69,680) are never used
    assert h.test.stop == 14400 < len(h.series) and m.test.stop == 57600 < len(m.series)


def test_scaler_statistics_are_those_of_the_train_slice_alone(electricity):
    splits = make_splits(electricity, lookback=96, horizon=96)
    train = electricity.values[:18_412].astype(np.float64)
    np.testing.assert_allclose(splits.scaler.mean, train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(splits.scaler.std, train.std(axis=0), rtol=1e-10)
    with_val = electricity.values[:21_044].astype(np.float64)
    assert not np.allclose(splits.scaler.mean, with_val.mean(axis=0), rtol=1e-6)


def test_no_test_timestamp_is_a_training_target(electricity):
    splits = make_splits(electricity, lookback=96, horizon=96)
    train_targets = np.unique(np.concatenate([splits.train.timestamps_of(i) for i in range(len(splits.train))]))
    test_targets = np.unique(np.concatenate([splits.test.timestamps_of(i) for i in range(len(splits.test))]))
    val_targets = np.unique(np.concatenate([splits.val.timestamps_of(i) for i in range(len(splits.val))]))
    assert np.intersect1d(train_targets, test_targets).size == 0
    assert np.intersect1d(train_targets, val_targets).size == 0
    assert np.intersect1d(val_targets, test_targets).size == 0
    # every target row of the test split is covered, starting right after the validation rows
    assert test_targets[0] == electricity.timestamps[21_044] and test_targets[-1] == electricity.timestamps[-1]


def test_items_are_the_scaled_rows_of_the_window(electricity):
    splits = make_splits(electricity, lookback=96, horizon=96)
    for ds, i in ((splits.train, 0), (splits.val, 17), (splits.test, len(splits.test) - 1)):
        item = ds[i]
        x, y = item.x[0], item.y[0]
        s = ds.window_start(i)
        want = (electricity.values[s : s + 192].astype(np.float64) - splits.scaler.mean) / splits.scaler.std
        assert x.dtype == torch.float32 and x.shape == (96, 6) and y.shape == (96, 6)
        np.testing.assert_allclose(torch.cat([x, y]).numpy(), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(ds.timestamps_of(i), electricity.timestamps[s + 96 : s + 192])
    assert splits.val.window_start(0) == 18_412 - 96 and splits.test.window_start(0) == 21_044 - 96


def test_splits_share_one_array_of_the_series_size(electricity):
    splits = make_splits(electricity, lookback=96, horizon=96)
    assert splits.train.data is splits.val.data is splits.test.data
    assert np.shares_memory(splits.train.data, electricity.values)
    assert splits.train.data.nbytes == electricity.values.nbytes  # O(T·C), not O(windows·L·C)


def test_loader_yields_every_test_window_and_refuses_drop_last(electricity):
    splits = make_splits(electricity, lookback=96, horizon=96)
    seen, first = 0, None
    for batch in make_loader(splits.test, 64, shuffle=False):
        assert batch.x.shape[1:] == (96, 6) and batch.y.shape[1:] == (96, 6)
        first = batch.x if first is None else first
        seen += len(batch)
    assert seen == 5_165  # 5,165 = 80 × 64 + 45: the partial last batch is kept
    torch.testing.assert_close(first[:1], splits.test[0].x)
    with pytest.raises(DataError, match="drop_last"):
        make_loader(splits.test, 64, shuffle=False, drop_last=True)


def test_shuffled_loader_is_seeded_and_batches_are_b_l_c(electricity):
    splits = make_splits(electricity, lookback=96, horizon=48)
    a = next(iter(make_loader(splits.train, 32, shuffle=True, seed=3)))
    b = next(iter(make_loader(splits.train, 32, shuffle=True, seed=3)))
    c = next(iter(make_loader(splits.train, 32, shuffle=True, seed=4)))
    assert isinstance(a, WindowBatch) and a.x.shape == (32, 96, 6) and a.y.shape == (32, 48, 6)
    torch.testing.assert_close(a.x, b.x)
    assert not torch.equal(a.x, c.x)


def test_distributed_loaders_train_on_shards_and_evaluate_every_window_once(electricity):
    splits = make_splits(electricity, lookback=96, horizon=96)
    train = make_loader(splits.train, 32, shuffle=True, distributed=True, num_replicas=2, rank=1)
    assert isinstance(train.sampler, torch.utils.data.DistributedSampler)
    shards = [make_loader(splits.test, 32, shuffle=False, distributed=True, num_replicas=3, rank=r) for r in range(3)]
    assert all(isinstance(s.sampler, EvalShardSampler) for s in shards)
    indices = sorted(i for s in shards for i in s.sampler)
    assert indices == list(range(len(splits.test)))


def test_channel_independent_items_are_window_major_single_channels():
    series = _toy(n=300, c=4)
    mv = make_splits(series, lookback=24, horizon=12)
    ci = make_splits(series, lookback=24, horizon=12, channel_independent=True)
    assert len(ci.train) == 4 * len(mv.train) and len(ci.test) == 4 * len(mv.test)
    for i in (0, 1, 5, len(ci.train) - 1):
        item = ci.train[i]
        w, c = divmod(i, 4)
        assert ci.train.channel_of(i) == c and item.x.shape == (1, 24, 1) and item.y.shape == (1, 12, 1)
        window = mv.train[w]
        torch.testing.assert_close(item.x[..., 0], window.x[..., c])
        torch.testing.assert_close(item.y[..., 0], window.y[..., c])
    assert next(iter(make_loader(ci.train, 8, shuffle=False))).x.shape == (8, 24, 1)
    assert mv.train.channel_of(0) is None
    # an item's targets lie where its window's do, as fractions of the split's rows
    first = (mv.train.window_start(len(mv.train) - 1) - mv.train.start + 24) / (mv.train.stop - mv.train.start)
    for ds, last in ((mv.train, len(mv.train) - 1), (ci.train, len(ci.train) - 1)):
        np.testing.assert_allclose(ds.target_position([last])[0], [first, first + 11 / (ds.stop - ds.start)])
    np.testing.assert_allclose(ci.train.target_position(range(4)), mv.train.target_position([0] * 4))
    np.testing.assert_allclose(ci.train.target_position([-1]), ci.train.target_position([len(ci.train) - 1]))


@pytest.mark.parametrize("channel_independent", [False, True])
@pytest.mark.parametrize("scaled", [False, True])
def test_a_batch_holds_the_windows_of_its_items_one_by_one(channel_independent, scaled):
    values = _toy(n=300, c=3).values
    scaler = StandardScaler.fit(values[:200]) if scaled else None
    ds = WindowDataset(values, 0, 200, 24, 12, stride=2, channel_independent=channel_independent, scaler=scaler)
    indices = [5, 0, len(ds) - 1, -2, 5]
    batch = ds.__getitems__(indices)
    assert len(batch) == 5 and batch.x.dtype == torch.float32
    for k, i in enumerate(indices):
        s, c = ds.window_start(i), ds.channel_of(i)
        cols = slice(None) if c is None else slice(c, c + 1)
        rows = values[s : s + 36, cols]
        want = rows if scaler is None else (rows - scaler.mean[cols]) / scaler.std[cols]
        np.testing.assert_allclose(torch.cat([batch.x[k], batch.y[k]]).numpy(), want, rtol=1e-5, atol=1e-5)
        assert torch.equal(batch.x[k], ds[i].x[0]) and torch.equal(batch.y[k], ds[i].y[0])
    assert batch.mask is None and batch.y_mask is None and batch.future_covariates is None
    assert np.array_equal(values, _toy(n=300, c=3).values)  # scaling in place touched only the batch's copy
    with pytest.raises(IndexError, match="out of range"):
        ds.__getitems__([0, len(ds)])


def test_a_batch_moves_every_tensor_it_holds():
    batch = WindowBatch(torch.zeros(2, 4, 3), torch.zeros(2, 5, 3), y_mask=torch.ones(2, 5, 3, dtype=torch.bool))
    moved = batch.to(torch.device("meta"))
    assert moved.x.is_meta and moved.y.is_meta and moved.y_mask.is_meta and moved.mask is None
    assert len(moved) == 2 and batch.x.device.type == "cpu"


def test_stride_thins_training_windows_and_keeps_every_evaluation_window():
    series = _toy(n=1000)
    full = make_splits(series, lookback=20, horizon=10)
    strided = make_splits(series, lookback=20, horizon=10, stride=7)
    assert len(strided.train) == (700 - 30) // 7 + 1
    assert strided.train.window_start(2) == 14
    assert len(strided.test) == len(full.test) and len(strided.val) == len(full.val)
    assert (
        len(make_splits(series, lookback=20, horizon=10, eval_stride=5).test) == (220 - 30) // 5 + 1
    )  # 200 test rows + 20 lookback


def test_return_transforms_for_prices(data_home):
    series = load_series("gafa_stock")
    p = series.values.astype(np.float64)
    log = make_splits(series, lookback=30, horizon=5, transform="log_returns")
    simple = make_splits(series, lookback=30, horizon=5, transform="returns")
    n = len(series) - 1
    assert log.train.data.shape == (n, 4)
    np.testing.assert_allclose(log.train.data, np.log(p[1:]) - np.log(p[:-1]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(simple.train.data, p[1:] / p[:-1] - 1, rtol=1e-4, atol=1e-6)
    assert log.borders["train"] == (0, int(0.7 * n))
    np.testing.assert_array_equal(log.timestamps, series.timestamps[1:])
    bad = Series("neg", series.timestamps, np.where(p > 100, -p, p).astype(np.float32), series.columns, "1d")
    with pytest.raises(DataError, match="positive prices"):
        make_splits(bad, lookback=30, horizon=5, transform="log_returns")


def test_scaler_round_trips_through_json_and_works_on_numpy_and_torch():
    rng = np.random.default_rng(1)
    x = rng.normal(5, 2, (500, 3)).astype(np.float32)
    x[:, 2] = 7.0  # constant: std set to 1 (sklearn semantics)
    scaler = StandardScaler.fit(x)
    assert scaler.std[2] == 1.0
    back = StandardScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(back.mean, scaler.mean)
    z = scaler.transform(x)
    np.testing.assert_allclose(scaler.inverse_transform(z), x, rtol=1e-5)
    zt = back.transform(torch.from_numpy(x))
    assert isinstance(zt, torch.Tensor) and zt.dtype == torch.float32
    np.testing.assert_allclose(zt.numpy(), z, rtol=1e-5, atol=1e-6)
    # channel-independent batch: (B, H, 1) with the channel of each sample
    ci = torch.from_numpy(np.stack([z[:10, 0:1], z[:10, 1:2]]))
    un = scaler.inverse_transform(ci, channel=torch.tensor([0, 1]))
    np.testing.assert_allclose(un.numpy()[:, :, 0], x[:10, :2].T, rtol=1e-5)
    with pytest.raises(DataError):
        StandardScaler.from_dict({"mean": [1.0]})


def test_too_short_series_or_bad_arguments_raise_data_errors():
    with pytest.raises(DataError, match="shorter than lookback"):
        make_splits(_toy(n=100), lookback=40, horizon=20)
    with pytest.raises(DataError, match="ett_hourly split needs 14400 rows"):
        make_splits(_toy(n=100), lookback=4, horizon=2, rule="ett_hourly")
    with pytest.raises(DataError, match="transform"):
        make_splits(_toy(), lookback=4, horizon=2, transform="diff")
    with pytest.raises(DataError, match="lookback"):
        split_borders(100, 90, "ratio")
    with pytest.raises(IndexError):
        make_splits(_toy(), lookback=4, horizon=2).test[10_000]
    with pytest.raises(DataError):
        WindowDataset(np.zeros((10, 2), np.float32), 0, 10, 0, 1)


def test_missing_values_come_as_zeros_with_masks_and_whole_rows_without():
    values = np.arange(40, dtype=np.float32).reshape(20, 2)
    holed = values.copy()
    holed[5, 0] = holed[12, 1] = np.nan
    scaler = StandardScaler(np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    batch = WindowDataset(holed, 0, 20, 6, 3, scaler=scaler).__getitems__([0, 4])
    # window 0: lookback rows 0..5, targets 6..8; window 4: lookback 4..9, targets 10..12
    assert batch.x.dtype == torch.float32 and batch.mask.shape == (2, 6, 2) and batch.y_mask.shape == (2, 3, 2)
    assert not batch.mask[0, 5, 0] and not batch.mask[1, 1, 0] and not batch.y_mask[1, 2, 1]
    assert int((~batch.mask).sum()) == 2 and int((~batch.y_mask).sum()) == 1
    assert batch.x[0, 5, 0] == 0 and batch.y[1, 2, 1] == 0  # never NaN: a masked value is not read
    whole = WindowDataset(values, 0, 20, 6, 3, scaler=scaler).__getitems__([0, 4])
    torch.testing.assert_close(batch.x[batch.mask], whole.x[batch.mask])
    assert whole.mask is None and whole.y_mask is None
    # rows [start, stop) decide: the hole before them leaves the windows after it unmasked
    assert WindowDataset(holed, 13, 20, 4, 2).__getitems__([0]).mask is None


def test_the_scaler_reads_observed_values_and_refuses_an_empty_or_infinite_column():
    x = np.array([[1.0, 10.0], [np.nan, 20.0], [3.0, np.nan], [5.0, 40.0]], dtype=np.float32)
    s = StandardScaler.fit(x)
    np.testing.assert_allclose(s.mean, [3.0, 70 / 3])
    np.testing.assert_allclose(s.std, [np.std([1, 3, 5]), np.std([10, 20, 40])], rtol=1e-6)
    with pytest.raises(DataError, match=r"\['b'\] hold no reading in the 4 rows"):
        StandardScaler.fit(np.c_[x[:, 0], np.full(4, np.nan)], ["a", "b"])
    with pytest.raises(DataError, match="inf"), np.errstate(invalid="ignore", over="ignore"):
        StandardScaler.fit(np.c_[x[:, 0], [1.0, np.inf, 2.0, 3.0]])
