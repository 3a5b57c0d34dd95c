"""The one place that finds raw dataset files: data directories, then a checked download.

Resolution order for a named dataset (each file name of its spec, best first):
  1. the project's data/ folder (or $LRUTS_DATA_HOME), including data/raw/ where downloads land;
  2. each directory in $LRUTS_DATA_DIRS (os.pathsep-separated);
  3. each directory in data.yaml's `data_dirs` (relative paths resolved against the repository root);
in each directory also its forecasting/ and finance/ subfolders. A full file anywhere beats a partial
copy; a partial copy beats a download. Otherwise the public source is downloaded (with a progress bar,
checked against the known SHA-256) unless $LRUTS_OFFLINE=1 or download=False.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from lruts.data.registry import DATASETS, DatasetSpec, get_spec
from lruts.errors import DataError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = "data.yaml"
DEFAULT_DATA_DIRS = ("../shared/datasets",)
_SUBFOLDERS = ("", "forecasting", "finance", "covariates", "panel", "raw")


def data_home() -> Path:
    """Where ingested Parquet files, reports and downloads are written: $LRUTS_DATA_HOME or <repo>/data."""
    env = os.environ.get("LRUTS_DATA_HOME")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "data"


def _config_dirs() -> list[Path]:
    path = REPO_ROOT / CONFIG_FILE
    entries: list[str] = list(DEFAULT_DATA_DIRS)
    if path.is_file():
        import yaml

        try:
            cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise DataError(f"{path} is not valid YAML ({e}); fix it or delete it to use the defaults") from None
        entries = [str(p) for p in cfg.get("data_dirs", entries) or []]
    return [(REPO_ROOT / Path(p).expanduser()).resolve() for p in entries]


def data_dirs() -> list[Path]:
    """Directories searched for raw files, in order: data home, $LRUTS_DATA_DIRS, data.yaml `data_dirs`."""
    env = [Path(p).expanduser().resolve() for p in os.environ.get("LRUTS_DATA_DIRS", "").split(os.pathsep) if p]
    out: list[Path] = []
    for d in [data_home(), *env, *_config_dirs()]:
        if d not in out:
            out.append(d)
    return out


def _first_file(*relatives: str) -> Path | None:
    """The first existing file among these paths inside each data directory, directories in data_dirs() order."""
    return next((d / r for d in data_dirs() for r in relatives if (d / r).is_file()), None)


def data_file(relative: str) -> Path:
    """A file by its path inside a data directory ("panel/bank_calls.csv"), from the first directory of
    data_dirs() that has it; a DataError naming the directories searched when none does."""
    path = _first_file(relative)
    if path is None:
        raise DataError(
            f"{relative} is in none of the data directories {[str(d) for d in data_dirs()]}: add the directory "
            "that holds it to $LRUTS_DATA_DIRS"
        )
    return path


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _offline() -> bool:
    return os.environ.get("LRUTS_OFFLINE", "").lower() in ("1", "true", "yes")


def _missing_message(spec: DatasetSpec, reason: str) -> str:
    where = "\n".join(f"  {d}" for d in data_dirs())
    origin = spec.url or "no direct link"
    return (
        f"dataset '{spec.name}': none of {', '.join(spec.files)} was found and it could not be downloaded ({reason}).\n"
        f"Put {spec.files[0]} (or a partial copy: {', '.join(spec.files[1:]) or '-'}) in one of these directories "
        f"(searched in this order, also in their forecasting/ and finance/ subfolders):\n{where}\n"
        f"or add a directory to $LRUTS_DATA_DIRS or to data_dirs in data.yaml.\n"
        f"Source: {spec.source}; download: {origin}."
    )


def resolve_raw(name: str, *, download: bool = True) -> Path:
    """Path of the raw file of the named dataset; downloads (and converts) it if no copy is found.

    Raises DataError naming the file, the directories searched and the public source when the file
    is missing and cannot be downloaded (offline, no direct link, or $LRUTS_OFFLINE=1).
    """
    spec = get_spec(name)
    if spec is None:
        raise DataError(f"unknown dataset '{name}'; known: {', '.join(DATASETS)} (or pass a file path)")
    for file_name in spec.files:
        path = _first_file(*(str(Path(sub) / file_name) for sub in _SUBFOLDERS))
        if path is not None:
            return path
    if spec.url is None:
        raise DataError(_missing_message(spec, "no direct download link is known"))
    if not download or _offline():
        raise DataError(_missing_message(spec, "offline: download disabled"))
    from lruts.data.download import fetch_dataset

    try:
        return fetch_dataset(spec, data_home() / "raw")
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise DataError(_missing_message(spec, f"download failed: {e}")) from None
