"""Tiny LRA data sets in the official on-disk formats, written by the tests (no committed blobs)."""

from __future__ import annotations

import json
import lzma
import pickle
from pathlib import Path

import numpy as np

LISTOPS_ROWS = [  # (source as in the release, label)
    ("( ( ( [MAX 2 ) 9 ) ] )", 9),
    ("( ( ( ( [SM 5 ) ( ( ( [MIN 7 ) 3 ) ] ) ) 8 ) ] )", 6),
    ("( ( ( ( [MED 1 ) 4 ) 6 ) ] )", 4),
]


def write_listops(root: Path, rows=LISTOPS_ROWS) -> Path:
    folder = root / "listops-1000"
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        lines = ["Source\tTarget"] + [f"{s}\t{y}" for s, y in rows]
        (folder / f"basic_{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def write_aan(root: Path, n: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "tsv_data"
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "eval", "test"):
        lines = []
        for i in range(n):
            a = " ".join(rng.choice(["cite", "model", "parse", "tree", "é"], size=rng.integers(3, 30)))
            b = " ".join(rng.choice(["graph", "model", "corpus"], size=rng.integers(3, 30)))
            lines.append(f"{float(i % 2)}\tP{i}-a\tP{i}-b\t{a}\t{b}")
        (folder / f"new_aan_pairs.{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def write_imdb_jsonl(root: Path, n_per_split: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path = root / "imdb_all.jsonl.xz"
    with lzma.open(path, "wt", encoding="utf-8") as f:
        for split in ("train", "val", "test"):
            for i in range(n_per_split):
                label = i % 2
                words = rng.choice(
                    ["good", "great", "fine"] if label else ["bad", "awful", "dull"], size=rng.integers(5, 80)
                )
                rec = {"split": split, "id": i, "rating": 8 if label else 2, "label": label, "text": " ".join(words)}
                f.write(json.dumps(rec) + "\n")
    return path


def write_cifar_batches(root: Path, n_per_batch: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, size=n_per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
    return folder
