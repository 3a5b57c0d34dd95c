"""LRA Retrieval: ACL Anthology Network citation pairs (Radev et al. 2013), byte level, ≤ 4,000 bytes
per document; label 1 when the two papers are linked by a citation.

Official files (no header, tab-separated, one pair per line):

    tsv_data/new_aan_pairs.train.tsv      label  id1  id2  text1  text2
    tsv_data/new_aan_pairs.eval.tsv       (validation)
    tsv_data/new_aan_pairs.test.tsv
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lruts.errors import DataError
from lruts.lra.text import encode_bytes

FOLDER = "tsv_data"
SPLITS = {"train": "new_aan_pairs.train.tsv", "val": "new_aan_pairs.eval.tsv", "test": "new_aan_pairs.test.tsv"}

Pairs = tuple[list[np.ndarray], list[np.ndarray], np.ndarray]


def read_aan_split(path: str | Path, max_len: int = 4000, limit: int | None = None) -> Pairs:
    """One official TSV → (tokens of text1, tokens of text2, labels (n,) int64)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"AAN file {path} not found")
    t1, t2, labels = [], [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, start=1):
            if limit is not None and len(labels) >= limit:
                break
            line = line.rstrip("\n")
            if not line:
                continue
            fields = line.split("\t", 4)
            if len(fields) != 5:
                raise DataError(
                    f"{path}:{i}: expected 5 tab-separated fields (label id1 id2 text1 text2), got {len(fields)}"
                )
            try:
                label = int(float(fields[0]))
            except ValueError:
                raise DataError(f"{path}:{i}: label {fields[0]!r} is not a number") from None
            if label not in (0, 1):
                raise DataError(f"{path}:{i}: label {label} is not 0/1")
            t1.append(encode_bytes(fields[3], max_len))
            t2.append(encode_bytes(fields[4], max_len))
            labels.append(label)
    return t1, t2, np.array(labels, dtype=np.int64)


def missing_message(searched: str) -> str:
    return (
        "LRA Retrieval (AAN) needs the official LRA release files, which are not on this machine "
        "(no offline copy exists). Put these three files\n"
        f"  {FOLDER}/{SPLITS['train']}\n  {FOLDER}/{SPLITS['val']}\n  {FOLDER}/{SPLITS['test']}\n"
        "(from lra_release.gz of the Long Range Arena release: lra_release/tsv_data/) into one of these "
        f"directories, or pass --data-dir DIR with DIR/{FOLDER}/ inside:\n{searched}"
    )
