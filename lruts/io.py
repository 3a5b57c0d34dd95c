"""Files: writing them so that a crash or Ctrl-C leaves either the old file or the new one, never half;
reading a YAML settings file with one clear error per mistake."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call write(f) on a temporary file next to `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_json(obj: Any, path: str | Path) -> Path:
    return write_atomic(path, lambda f: f.write(json.dumps(obj, indent=2, default=str).encode()))


def save_torch(obj: Any, path: str | Path) -> Path:
    import torch

    return write_atomic(path, lambda f: torch.save(obj, f))


def load_torch(path: str | Path, map_location: Any = "cpu") -> Any:
    """Load a file written by save_torch without unpickling arbitrary objects."""
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)


def replace_between(text: str, key: str, body: str) -> str:
    """text with the block between `<!-- key:begin -->` and `<!-- key:end -->` replaced by body
    (appended at the end when the markers are missing); the text around it is kept as written."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        a, b = text.index(begin), text.index(end) + len(end)
        return text[:a] + block + text[b:]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def read_yaml_mapping(path: str | Path, what: str, example: str) -> dict[str, Any]:
    """The mapping a YAML settings file holds (an empty file: {}); a ConfigError that names the file when it
    is missing, is not valid YAML, or holds something else. what: "experiment settings"; example: how a
    valid file begins, for the message."""
    import yaml

    from lruts.errors import ConfigError

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no file {path}: give the path of a YAML file of {what} ({example})")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of {what}, got {type(values).__name__}")
    return values


COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zip")  # a file's name without them: what it holds


def safe_name(name: str, default: str = "dataset") -> str:
    """A user-given name as a file or folder name that cannot leave its folder: an existing file's path
    becomes its stem (a compressed file's, the stem of what it holds: sales.csv.gz → sales); only
    [A-Za-z0-9._-] is kept (anything else → "_"), no leading or trailing ".", "_" or "-", at most 100
    characters; `default` when nothing is left."""
    path = Path(name)
    if path.suffix and path.is_file():
        name = Path(path.stem).stem if path.suffix.lower() in COMPRESSED_SUFFIXES else path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:100] or default
