"""LRA Text: IMDB sentiment (Maas et al. 2011) at byte level, length ≤ 4,096, the official 25k/25k
split. Two sources are read:

- `imdb_all.jsonl.xz` (or `.jsonl`): one JSON object per review with `split` (train/val/test: train
  and val together are the official training split), `label` (0/1) and `text`;
- the `aclImdb/` folder of the original release: `{train,test}/{pos,neg}/<id>_<rating>.txt`.

Tokens are the UTF-8 bytes + 1 (0 is padding), truncated to `max_len`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lruts.errors import DataError

VOCAB_SIZE = 257  # 256 byte values + padding


def encode_bytes(text: str, max_len: int) -> np.ndarray:
    """UTF-8 bytes of `text` + 1 (int16: 50k documents stay ≈ 120 MB), at most `max_len` of them."""
    b = np.frombuffer(text.encode("utf-8")[:max_len], dtype=np.uint8)
    return b.astype(np.int16) + 1


def read_imdb_jsonl(path: str | Path, max_len: int = 4096) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    """{'train': (tokens, labels), 'test': (tokens, labels)} from the jsonl(.xz) file."""
    import lzma

    path = Path(path)
    opener = lzma.open if path.suffix == ".xz" else open
    out: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                split = {"train": "train", "val": "train", "test": "test"}[rec["split"]]
                label, text = int(rec["label"]), rec["text"]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise DataError(f"{path}:{i}: expected JSON with split (train/val/test), label, text ({e})") from None
            if label not in (0, 1):
                raise DataError(f"{path}:{i}: label {label} is not 0/1")
            out[split][0].append(encode_bytes(text, max_len))
            out[split][1].append(label)
    return {k: (t, np.array(y, dtype=np.int64)) for k, (t, y) in out.items()}


def read_aclimdb(root: str | Path, max_len: int = 4096) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    """The original `aclImdb/` tree: {split}/{pos,neg}/*.txt, files in name order."""
    root = Path(root)
    out = {}
    for split in ("train", "test"):
        tokens, labels = [], []
        for label, sub in ((0, "neg"), (1, "pos")):
            folder = root / split / sub
            if not folder.is_dir():
                raise DataError(f"IMDB folder {folder} not found: expected aclImdb/{{train,test}}/{{pos,neg}}/*.txt")
            for p in sorted(folder.glob("*.txt")):
                tokens.append(encode_bytes(p.read_text(encoding="utf-8"), max_len))
                labels.append(label)
        out[split] = (tokens, np.array(labels, dtype=np.int64))
    return out
