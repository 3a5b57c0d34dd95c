"""Where LRA files are looked for, and where generated data is written.

Search order: `--data-dir` if given (only there); otherwise each directory of
`lruts.data.data_dirs()` (the project's data home, $LRUTS_DATA_DIRS, data.yaml) and its `lra/` and
`lra_release/` subfolders. Generated data (ListOps, Pathfinder) goes under `<data home>/lra/generated/`
and is found again on the next run.
"""

from __future__ import annotations

from pathlib import Path

from lruts.errors import DataError

_SUBFOLDERS = ("", "lra", "lra_release", "lra/lra_release")


def search_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """Directories searched for LRA files, best first."""
    if data_dir is not None:
        root = Path(data_dir).expanduser().resolve()
        if not root.is_dir():
            raise DataError(f"--data-dir {root} is not a directory")
        bases = [root]
    else:
        from lruts.data import data_dirs

        bases = data_dirs()
    out: list[Path] = []
    for base in bases:
        for sub in _SUBFOLDERS:
            d = base / sub if sub else base
            if d.is_dir() and d not in out:
                out.append(d)
    return out


def find(relative: str, data_dir: str | Path | None = None, *, kind: str = "any") -> Path | None:
    """First `<dir>/<relative>` that exists (a file, a directory, or either) in the search dirs."""
    for d in search_dirs(data_dir):
        p = d / relative
        if (kind == "file" and p.is_file()) or (kind == "dir" and p.is_dir()) or (kind == "any" and p.exists()):
            return p
    return None


def generated_dir(name: str) -> Path:
    """Where a generated data set called `name` lives: <data home>/lra/generated/<name>."""
    from lruts.data import data_home

    return data_home() / "lra" / "generated" / name


def describe_search(data_dir: str | Path | None = None) -> str:
    dirs = search_dirs(data_dir) if data_dir is None or Path(data_dir).is_dir() else [Path(data_dir)]
    return "\n".join(f"  {d}" for d in dirs) or "  (none of the data directories exists)"
