"""New observations pasted or uploaded as CSV, checked before they reach the forecaster.

The bytes are size-limited, written only under <data home>/uploads (sanitised name, removed once read),
read by the ingestion's CSV reader and validated by `load_series` exactly like a pipeline's input.
The ingestion validates a series, which needs two rows to have a step, so the last observation of the
stream goes in front of the new rows: the validator then also checks the step from it to the first new
row. `LRUForecaster.update` finally checks that the rows continue the series without gaps.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from lruts.errors import DataError

MAX_UPLOAD_MB = 5  # also server.maxUploadSize in .streamlit/config.toml
SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")


def save_upload(data: bytes, filename: str) -> Path:
    """Write an upload to <data home>/uploads/<sanitised name>-<content hash><suffix>; DataError if too big."""
    from lruts.data.ingest import output_dir
    from lruts.io import safe_name

    if len(data) > MAX_UPLOAD_MB << 20:
        raise DataError(f"{filename} is {len(data) / (1 << 20):.1f} MB; the limit is {MAX_UPLOAD_MB} MB")
    if not data.strip():
        raise DataError(f"{filename} is empty: paste or upload CSV rows with a header line")
    name = Path(filename.replace("\\", "/")).name
    suffix = Path(name).suffix.lower() if Path(name).suffix.lower() in SUFFIXES else ".csv"
    stem = safe_name(Path(name).stem)
    path = output_dir("uploads") / f"{stem}-{hashlib.sha256(data).hexdigest()[:12]}{suffix}"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def new_rows(
    data: bytes,
    filename: str,
    *,
    time_col: str,
    columns: list[str],
    freq: str | None,
    last_time: np.datetime64,
    last_values: np.ndarray,
) -> pd.DataFrame:
    """CSV bytes → validated rows (time_col + columns) that come after `last_time`. Raises DataError.

    last_values: (C,) the stream's last observation, in the order of `columns`."""
    import polars as pl

    from lruts.data import load_series
    from lruts.data.read import read_any
    from lruts.data.timestamps import parse_timestamps

    path = save_upload(data, filename)
    try:
        raw = read_any(path, time_col=time_col)
    except DataError as e:  # name the file as the user knows it, not as it was stored
        raise DataError(str(e).replace(path.name, filename)) from None
    finally:
        path.unlink(missing_ok=True)
    missing = [c for c in columns if c not in raw.value_cols]
    if missing:
        raise DataError(
            f"{filename}: no numeric column(s) {missing}; the model needs the columns "
            f"{[time_col, *columns]} (a header line first)"
        )
    unreadable = {c: n for c, n in {**raw.empty_cells, **raw.junk_cells}.items() if c in columns and n}
    if unreadable:
        raise DataError(
            f"{filename}: {sum(unreadable.values())} value(s) missing or not a number (per column: {unreadable}); "
            "a new observation needs a number for every series"
        )
    times = parse_timestamps(raw.frame[raw.time_col]).values
    if times.null_count():
        bad = raw.frame[raw.time_col].filter(times.is_null()).head(3).to_list()
        raise DataError(f"{filename}: unreadable timestamps {bad}; use ISO 8601 such as '2016-07-01 02:00:00'")
    early = times.to_numpy() <= last_time
    if early.any():
        i = int(np.argmax(early))
        raise DataError(
            f"{filename}: row {i + 1} at {times[i]} is not after the last observation {pd.Timestamp(last_time)}; "
            "send only rows that continue the series"
        )
    rows = raw.frame.select(times.alias(time_col), *(pl.col(c).cast(pl.Float32) for c in columns))
    context = pl.DataFrame(
        {time_col: pl.Series(np.array([last_time], dtype="datetime64[ns]"))}
        | {c: pl.Series([float(v)], dtype=pl.Float32) for c, v in zip(columns, last_values, strict=True)}
    )
    series = load_series(
        pl.concat([context, rows]),
        time_col=time_col,
        target_cols=columns,
        freq=freq,
        fill="error",  # a live observation is never invented: a missing value is the sender's to fix
        exact_rows=True,  # gaps are reported by update() as errors, not filled
        name=filename,
    )
    return pd.DataFrame({time_col: series.timestamps[1:], **{c: series.values[1:, j] for j, c in enumerate(columns)}})
