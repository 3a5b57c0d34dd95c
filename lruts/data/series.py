"""A loaded series: timestamps (T,), values (T, C) float32, and what it is; `load_series` makes one.

series = load_series("electricity")            # named dataset: resolve, ingest if needed, read
series = load_series("my.csv", time_col="t")    # any CSV/TSV/Parquet file (ingested under data/)
series = load_series(df)                        # a polars/pandas DataFrame: validated in memory
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lruts.data.ingest import IngestReport, build_report, ingest, library_errors_as_data_errors
from lruts.data.registry import SPLIT_RULES, get_spec
from lruts.errors import DataError, ShapeError

# columns read from Parquet per batch: bounds the temporary copy next to the (T, C) result
_READ_BYTES = 4 << 20


@dataclass
class Series:
    """name; timestamps: (T,) datetime64[ns], sorted (distinct unless ingested with exact_rows);
    values: (T, C) float32, C-contiguous; columns: the C series names; freq: the step ("1h", "15m",
    "1d", ...); split: the split rule ("ett_hourly" | "ett_minute" | "ratio"); report: how it
    was ingested (None if built by hand)."""

    name: str
    timestamps: np.ndarray
    values: np.ndarray
    columns: list[str]
    freq: str
    split: str = "ratio"
    report: IngestReport | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.timestamps = np.asarray(self.timestamps).astype("datetime64[ns]", copy=False)
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        if self.values.ndim != 2:
            raise ShapeError(f"series values must be (T, C), got shape {self.values.shape}")
        if self.timestamps.shape != (self.values.shape[0],):
            raise ShapeError(
                f"timestamps {self.timestamps.shape} do not match values {self.values.shape}: expected (T,)"
            )
        if len(self.columns) != self.values.shape[1]:
            raise ShapeError(f"{len(self.columns)} column names for {self.values.shape[1]} value columns")
        if self.split not in SPLIT_RULES:
            raise DataError(f"split rule '{self.split}' unknown; use one of {SPLIT_RULES}")

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def n_channels(self) -> int:
        return self.values.shape[1]


def read_parquet_series(path: Path, *, name: str, freq: str, split: str, report: IngestReport | None = None) -> Series:
    """Read an ingested Parquet file into one (T, C) float32 array, a few columns at a time: the peak is
    ≈ the result plus one small batch of columns, where reading the whole table first (or big batches
    with pyarrow) holds a second copy of it (docs/experiments.md, "Ingestion memory")."""
    import polars as pl

    schema = pl.read_parquet_schema(path)
    cols = [c for c in schema if c != "timestamp"]
    timestamps = pl.read_parquet(path, columns=["timestamp"])["timestamp"].to_numpy().astype("datetime64[ns]")
    values = np.empty((len(timestamps), len(cols)), dtype=np.float32)
    per_batch = max(1, _READ_BYTES // max(4 * len(timestamps), 1))
    for lo in range(0, len(cols), per_batch):
        table = pl.read_parquet(path, columns=cols[lo : lo + per_batch])
        for j, c in enumerate(table.columns):
            values[:, lo + j] = table[c].to_numpy()
        del table
    return Series(name, timestamps, values, cols, freq, split, report)


FRAME_OPTIONS = ("time_col", "target_cols", "freq", "fill", "regular", "id_col")  # ingest's that a DataFrame takes


def load_series(source: str | os.PathLike | object, *, split: str | None = None, **options: Any) -> Series:
    """A named dataset, a file path, or a polars/pandas DataFrame as a validated `Series`.

    options: `ingest`'s (time_col, target_cols, freq, fill, force, dest_dir, name, regular, id_col,
    drop_constant, exact_rows). Names and paths go through `ingest` and are read from the resulting
    Parquet; DataFrames are validated in memory with the same steps and nothing is written. `split`
    overrides the split rule (default: the dataset's, "ratio" for everything else).
    """
    known = set(inspect.signature(ingest).parameters) - {"source"}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"load_series() got unknown option(s) {sorted(unknown)}; choose from {sorted(known)}")
    if isinstance(source, str | os.PathLike):
        result = ingest(source, **options)
        spec = get_spec(str(source)) if isinstance(source, str) and not Path(source).is_file() else None
        rule = split or (spec.split if spec else "ratio")
        return read_parquet_series(
            result.parquet, name=result.report.name, freq=result.report.freq, split=rule, report=result.report
        )
    return _series_from_frame(
        source,
        name=options.get("name") or "dataframe",
        split=split or "ratio",
        drop_constant=bool(options.get("drop_constant")),
        exact_rows=bool(options.get("exact_rows")),
        **{k: options.get(k) for k in FRAME_OPTIONS},
    )


def _series_from_frame(df: object, *, name: str, split: str, drop_constant: bool, exact_rows: bool, **opts) -> Series:
    from lruts.data.ingest import PIPELINE_VERSION
    from lruts.data.read import from_user_frame, read_frame
    from lruts.data.validate import T, validate

    report = build_report(name, "<DataFrame>", None, {**opts, "drop_constant": drop_constant, "exact_rows": exact_rows})
    report.version = PIPELINE_VERSION
    with library_errors_as_data_errors(f"DataFrame '{name}'"):
        time_col = opts.pop("time_col")
        raw = read_frame(from_user_frame(df), time_col=time_col, id_col=opts["id_col"])
        frame = validate(raw, report, drop_constant=drop_constant, exact_rows=exact_rows, **opts)
    cols = [c for c in frame.columns if c != T]
    values = frame.select(cols).to_numpy(order="c").astype(np.float32, copy=False)
    return Series(name, frame[T].to_numpy(), values, cols, report.freq, split, report)
