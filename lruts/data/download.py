"""Download a dataset's public source with a progress bar and a checksum, then convert it if needed.

The electricity source is the UCI ElectricityLoadDiagrams20112014 archive (15-minute kW readings of
370 clients, 2011-2014); `uci_electricity_to_standard` turns it into the standard hourly 321-client
table that LSTNet, Autoformer and TSLib use (26,304 rows).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.request
import zipfile
from pathlib import Path

from lruts.data.registry import DatasetSpec
from lruts.errors import DataError

log = logging.getLogger(__name__)

# The conversion, as reconstructed from the published LSTNet electricity file (26,304 rows, 321 clients):
# hourly sums of the four 15-minute readings, each hour labelled by its start and closed on the right
# ((h, h+1h] -> h); clients kept when they have a non-zero reading up to this cut-off (clients created
# later read zero before it); rows from 2012-01-01 00:00 on.
ELECTRICITY_CLIENT_CUTOFF = "2012-01-07 17:00:00"
ELECTRICITY_START = "2012-01-01 00:00:00"
# The standard file carries shifted dates: its first row (2012-01-01 00:00 hour) reads 2016-07-01 02:00.
ELECTRICITY_STANDARD_FIRST_DATE = "2016-07-01 02:00:00"


def download(url: str, dest: Path, *, sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Download `url` to `dest` with a tqdm progress bar; verify `sha256` when known. Atomic: a partial
    download never appears under `dest`. Raises DataError on a checksum mismatch."""
    from lruts.training import progress_bar

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + f".part{os.getpid()}")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with progress_bar(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                while block := resp.read(1 << 20):
                    out.write(block)
                    h.update(block)
                    bar.update(len(block))
        digest = h.hexdigest()
        if sha256 is not None and digest != sha256:
            raise DataError(
                f"checksum mismatch for {url}: got sha256 {digest}, expected {sha256}; the download is corrupt "
                "or the source changed. Download it by hand and check it, then put it in data/."
            )
        log.info("downloaded %s (sha256 %s)", url, digest)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def fetch_dataset(spec: DatasetSpec, raw_dir: Path) -> Path:
    """Download the dataset's source into `raw_dir` and convert it if the spec says so; returns files[0]."""
    assert spec.url is not None
    target = raw_dir / spec.files[0]
    if spec.convert is None:
        return download(spec.url, target, sha256=spec.sha256.get(spec.files[0]))
    archive = download(spec.url, raw_dir / Path(spec.url).name, sha256=spec.sha256.get(Path(spec.url).name))
    if spec.convert == "uci_electricity":
        return uci_electricity_to_standard(archive, target)
    raise DataError(f"dataset '{spec.name}': unknown conversion '{spec.convert}'")


def _extract_txt(archive: Path, workdir: Path) -> Path:
    if not zipfile.is_zipfile(archive):
        return archive
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.namelist() if m.endswith(".txt") and not m.startswith("__MACOSX")]
        if not members:
            raise DataError(f"{archive} holds no .txt file; expected LD2011_2014.txt (the UCI electricity archive)")
        out = workdir / Path(members[0]).name
        with zf.open(members[0]) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return out


def uci_electricity_to_standard(archive: Path, out_csv: Path, *, shift_dates: bool = True) -> Path:
    """Convert the UCI archive (zip, or the extracted LD2011_2014.txt) to the standard hourly table.

    Input: `;`-separated, decimal commas, first column the 15-minute timestamp (end of the interval),
    one column per client MT_001..MT_370. Output CSV: `date,0,1,…,OT` (the last kept client is named
    OT as in the TSLib file), hourly, from 2012-01-01 on; with `shift_dates` the dates are relabelled as
    in the standard file (first row 2016-07-01 02:00). Written atomically.
    """
    import polars as pl

    out_csv.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = out_csv.parent / f".convert{os.getpid()}"
    tmp_dir.mkdir(exist_ok=True)
    try:
        txt = _extract_txt(archive, tmp_dir)
        header = pl.read_csv(txt, separator=";", n_rows=0).columns
        clients = header[1:]
        lf = (
            pl.scan_csv(
                txt,
                separator=";",
                decimal_comma=True,
                new_columns=["t", *clients],
                schema_overrides={"t": pl.String, **{c: pl.Float64 for c in clients}},
            )
            .with_columns(pl.col("t").str.to_datetime("%Y-%m-%d %H:%M:%S"))
            # (h, h+1h] -> h: shift back by the smallest step before truncating to the hour
            .with_columns(hour=(pl.col("t") - pl.duration(microseconds=1)).dt.truncate("1h"))
        )
        cutoff = pl.lit(ELECTRICITY_CLIENT_CUTOFF).str.to_datetime()
        active = lf.filter(pl.col("t") <= cutoff).select((pl.col(c) != 0).any() for c in clients).collect()
        kept = [c for c in clients if active[c][0]]
        hourly = (
            lf.group_by("hour")
            .agg(pl.col(c).sum() for c in kept)
            .filter(pl.col("hour") >= pl.lit(ELECTRICITY_START).str.to_datetime())
            .sort("hour")
            .collect()
        )
        if hourly.height == 0 or not kept:
            raise DataError(
                f"{archive}: no hourly rows from {ELECTRICITY_START} on, or no active client; not the UCI file?"
            )
        if shift_dates:
            offset = pl.lit(ELECTRICITY_STANDARD_FIRST_DATE).str.to_datetime() - hourly["hour"][0]
            hourly = hourly.with_columns(pl.col("hour") + offset)
        names = [str(i) for i in range(len(kept) - 1)] + ["OT"]
        table = hourly.select(
            pl.col("hour").dt.strftime("%Y-%m-%d %H:%M:%S").alias("date"),
            *(pl.col(c).alias(n) for c, n in zip(kept, names, strict=True)),
        )
        part = tmp_dir / out_csv.name
        table.write_csv(part)
        os.replace(part, out_csv)
        log.info("converted %s: %d hourly rows x %d clients -> %s", archive, table.height, len(kept), out_csv)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return out_csv
