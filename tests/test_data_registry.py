"""The registry and file resolution: named specs, the data-directory order, the offline error, a checked
download (file:// URLs, no network) and the UCI electricity archive -> standard hourly table conversion."""

import hashlib
import os
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import lruts.data.files as files
from lruts.data import DATASETS, data_dirs, load_series, resolve_raw
from lruts.data.download import uci_electricity_to_standard
from lruts.data.registry import protocol_horizons
from lruts.errors import DataError

SHARED = (files.REPO_ROOT / "../shared/datasets").resolve()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LRUTS_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("LRUTS_OFFLINE", raising=False)
    return tmp_path / "data"


def test_registry_names_every_required_dataset_with_its_facts():
    required = {"electricity", "traffic", "ETTh1", "ETTh2", "ETTm1", "ETTm2", "weather", "exchange_rate", "illness"}
    assert required <= set(DATASETS) and {"gafa_stock", "amazon"} <= set(DATASETS)
    assert DATASETS["electricity"].expected_shape == (26_304, 321) and DATASETS["traffic"].n_series == 862
    assert DATASETS["ETTh1"].split == "ett_hourly" and DATASETS["ETTm2"].split == "ett_minute"
    assert {s.split for s in DATASETS.values()} == {"ett_hourly", "ett_minute", "ratio"}
    assert all(s.source and s.files and s.freq for s in DATASETS.values())
    assert DATASETS["electricity"].url.startswith("https://archive.ics.uci.edu/")


def test_the_protocol_horizons_are_the_datasets_own():
    assert protocol_horizons("ETTh1") == [96, 192, 336, 720] == protocol_horizons("some/file.csv")
    assert protocol_horizons("illness") == protocol_horizons("ILLNESS") == [24, 36, 48, 60]


def test_data_dirs_order_is_home_then_env_then_config(tmp_path, monkeypatch, home):
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("LRUTS_DATA_DIRS", os.pathsep.join([str(a), str(b)]))
    assert data_dirs()[:3] == [home, a, b]
    assert data_dirs()[-1] == SHARED  # data.yaml's default ../shared/datasets, relative to the repo root


def test_resolution_prefers_the_project_folder_then_env_dirs_then_config(tmp_path, monkeypatch, home):
    monkeypatch.delenv("LRUTS_DATA_DIRS", raising=False)
    assert resolve_raw("ETTh1") == SHARED / "forecasting" / "ETTh1.csv"
    assert resolve_raw("amazon") == SHARED / "finance" / "Amazon.csv"
    env_dir = tmp_path / "mirror"
    (env_dir / "forecasting").mkdir(parents=True)
    (env_dir / "forecasting" / "ETTh1.csv").write_text("date,x\n")
    monkeypatch.setenv("LRUTS_DATA_DIRS", str(env_dir))
    assert resolve_raw("ETTh1") == env_dir / "forecasting" / "ETTh1.csv"
    home.mkdir(parents=True)
    (home / "ETTh1.csv").write_text("date,x\n")
    assert resolve_raw("etth1") == home / "ETTh1.csv"  # names are case-insensitive


def test_a_full_file_wins_over_a_partial_copy(tmp_path, monkeypatch, home):
    monkeypatch.delenv("LRUTS_DATA_DIRS", raising=False)
    assert resolve_raw("electricity").name == "electricity_6clients.csv"
    late = tmp_path / "late"
    late.mkdir()
    (late / "electricity.csv").write_text("date,0\n")
    monkeypatch.setenv("LRUTS_DATA_DIRS", str(late))
    assert resolve_raw("electricity") == late / "electricity.csv"


def test_missing_file_offline_gives_one_error_naming_file_places_and_source(tmp_path, monkeypatch, home):
    monkeypatch.setattr(files, "REPO_ROOT", tmp_path / "elsewhere")  # no data.yaml, no shared folder next to it
    monkeypatch.delenv("LRUTS_DATA_DIRS", raising=False)
    monkeypatch.setenv("LRUTS_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        resolve_raw("ETTh1")
    msg = str(err.value)
    assert "ETTh1.csv" in msg and str(home) in msg and "ETDataset" in msg and "LRUTS_DATA_DIRS" in msg
    assert "raw.githubusercontent.com/zhouhaoyi/ETDataset" in msg
    with pytest.raises(DataError, match="no direct download link"):
        resolve_raw("weather")
    with pytest.raises(DataError, match="unknown dataset"):
        resolve_raw("nope")


def _spec(monkeypatch, tmp_path, url, sha=None, **kw):
    spec = replace(
        DATASETS["ETTh1"], name="toy", files=("toy.csv",), url=url, sha256={"toy.csv": sha} if sha else {}, **kw
    )
    monkeypatch.setitem(DATASETS, "toy", spec)
    monkeypatch.setattr(files, "REPO_ROOT", tmp_path / "elsewhere")
    monkeypatch.delenv("LRUTS_DATA_DIRS", raising=False)
    return spec


def test_download_checks_the_checksum_and_lands_in_data_raw(tmp_path, monkeypatch, home):
    src = tmp_path / "src.csv"
    src.write_bytes(b"date,x\n2020-01-01 00:00:00,1\n2020-01-01 01:00:00,2\n")
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    _spec(monkeypatch, tmp_path, src.as_uri(), sha)
    got = resolve_raw("toy")
    assert got == home / "raw" / "toy.csv" and got.read_bytes() == src.read_bytes()
    assert resolve_raw("toy") == got  # found locally the second time
    got.unlink()
    _spec(monkeypatch, tmp_path, src.as_uri(), "0" * 64)
    with pytest.raises(DataError, match="checksum mismatch"):
        resolve_raw("toy")
    assert not list((home / "raw").iterdir())  # nothing half-written left behind
    _spec(monkeypatch, tmp_path, (tmp_path / "missing.csv").as_uri())
    with pytest.raises(DataError, match="download failed"):
        resolve_raw("toy")


def _uci_archive(path: Path, days: int = 3) -> Path:
    """A small file in the UCI LD2011_2014.txt layout: `;`-separated, decimal commas, quoted header,
    15-minute readings labelled at the end of each interval, from 2011-12-31 00:15."""
    t = np.datetime64("2011-12-31T00:15") + np.arange(days * 96) * np.timedelta64(15, "m")
    k = np.arange(len(t))
    clients = {
        "MT_001": 1.25 + (k % 4),  # active from the start
        "MT_002": np.zeros(len(t)),  # created later: zeros until after the cut-off
        "MT_003": 0.5 * (k % 7),
    }
    lines = ['"";' + ";".join(f'"{c}"' for c in clients)]
    for i, ti in enumerate(t):
        stamp = str(ti).replace("T", " ") + ":00"
        lines.append(f'"{stamp}";' + ";".join(f"{v[i]:g}".replace(".", ",") for v in clients.values()))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_uci_archive_converts_to_the_standard_hourly_table(tmp_path):
    raw = _uci_archive(tmp_path / "LD2011_2014.txt")
    out = uci_electricity_to_standard(raw, tmp_path / "electricity.csv")
    text = out.read_text().splitlines()
    assert text[0] == "date,0,OT"  # MT_002 dropped (no reading before the cut-off); last client named OT
    assert text[1].startswith("2016-07-01 02:00:00,")  # the standard file's shifted first date
    assert len(text) - 1 == 48  # hours labelled 2012-01-01 00:00 .. 2012-01-02 23:00
    # hour 2012-01-01 00:00 sums the readings at 00:15, 00:30, 00:45 and 01:00 (closed on the right)
    t = np.datetime64("2011-12-31T00:15") + np.arange(3 * 96) * np.timedelta64(15, "m")
    k = np.arange(len(t))
    first = (t > np.datetime64("2012-01-01T00:00")) & (t <= np.datetime64("2012-01-01T01:00"))
    a, b = (1.25 + (k % 4))[first].sum(), (0.5 * (k % 7))[first].sum()
    assert [float(v) for v in text[1].split(",")[1:]] == pytest.approx([a, b])


def test_electricity_download_path_fetches_the_zip_and_converts_it(tmp_path, monkeypatch, home):
    raw = _uci_archive(tmp_path / "LD2011_2014.txt")
    archive = tmp_path / "electricityloaddiagrams20112014.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(raw, "LD2011_2014.txt")
    _spec(monkeypatch, tmp_path, archive.as_uri(), convert="uci_electricity", split="ratio", expected_shape=(48, 2))
    path = resolve_raw("toy")
    assert path == home / "raw" / "toy.csv"
    series = load_series("toy")
    assert series.values.shape == (48, 2) and series.freq == "1h"
    assert sorted(p.name for p in (home / "raw").iterdir()) == ["electricityloaddiagrams20112014.zip", "toy.csv"]
