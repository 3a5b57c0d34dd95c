"""LRA Image: CIFAR-10 (Krizhevsky 2009) as a sequence of 1,024 pixels, grayscale in LRA
(the LRU paper's sCIFAR uses the 3 colour channels). Three sources are read:

- the standard python batches `cifar-10-batches-py/{data_batch_1..5,test_batch}`;
- an image-folder tree `<root>/{train,test}/<class>/*.{png,jpg}`;
- the same tree inside a zip (`cifar10_jpeg.zip` on these machines: JPEG, quality ≈75, so the pixels
  are close to but not exactly CIFAR-10's).

Images come out as (n, 1024, 3) uint8 in row-major pixel order and labels (n,) int64; classes of a
folder tree are numbered in CIFAR-10's order when the names match, else alphabetically.

The python batches are pickles, and unpickling runs whatever callables a file names, so they are read
with an unpickler that admits only the globals a pickled numpy array refers to.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

from lruts.errors import DataError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_EXT = (".png", ".jpg", ".jpeg", ".bmp")
Split = tuple[np.ndarray, np.ndarray]


def to_grayscale(rgb: np.ndarray) -> np.ndarray:
    """(…, 3) uint8 → (…, 1) uint8 with ITU-R 601 luma weights (tf.image.rgb_to_grayscale)."""
    g = rgb.astype(np.float32) @ np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)
    return np.clip(np.rint(g), 0, 255).astype(np.uint8)[..., None]


def _subset(n: int, limit: int | None, seed: int) -> np.ndarray:
    """All indices, or a seeded random `limit` of them in increasing order."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


# numpy 1 pickled arrays via numpy.core, numpy 2 via numpy._core; protocol 5 rebuilds them from a buffer
_ARRAY_GLOBALS = frozenset(
    (module, name)
    for core in ("numpy.core", "numpy._core")
    for module, name in ((f"{core}.multiarray", "_reconstruct"), (f"{core}.numeric", "_frombuffer"))
) | {("numpy", "ndarray"), ("numpy", "dtype")}


class _BatchUnpickler(pickle.Unpickler):
    """Refuses every global but numpy's array constructors, before anything is called."""

    def __init__(self, f, path: Path):
        super().__init__(f, encoding="bytes")  # the batches were written by Python 2: keys are bytes
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in _ARRAY_GLOBALS:
            raise DataError(
                f"{self.path} refers to {module}.{name}; a CIFAR-10 python batch holds only dicts, lists, bytes "
                "and numpy arrays, so it was not loaded. Use the batches of "
                "https://www.cs.toronto.edu/~kriz/cifar.html (cifar-10-python.tar.gz)"
            )
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One python batch → (data (n, 3072) uint8, labels (n,) int64), without running code it names."""
    with open(path, "rb") as f:
        try:
            d = _BatchUnpickler(f, path).load()
        except (pickle.UnpicklingError, EOFError) as e:
            raise DataError(f"{path} is not a CIFAR-10 python batch (not a readable pickle: {e})") from e
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise DataError(f"{path} is not a CIFAR-10 python batch: expected a dict with keys b'data' and b'labels'")
    return np.asarray(d[b"data"], dtype=np.uint8), np.asarray(d[b"labels"], dtype=np.int64)


def read_cifar_batches(
    folder: str | Path, limits: dict[str, int | None] | None = None, seed: int = 0
) -> dict[str, Split]:
    """The python batches → {'train': (images, labels), 'test': …}."""
    folder = Path(folder)
    limits = limits or {}
    files = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    out = {}
    for split, names in files.items():
        xs, ys = [], []
        for name in names:
            p = folder / name
            if not p.is_file():
                raise DataError(f"CIFAR-10 batch {p} not found (expected data_batch_1..5 and test_batch)")
            x, y = read_cifar_batch(p)
            xs.append(x)
            ys.append(y)
        x, y = np.concatenate(xs), np.concatenate(ys)
        idx = _subset(len(y), limits.get(split), seed)
        # rows are 3072 bytes: 1024 red, 1024 green, 1024 blue, each row-major
        out[split] = (x[idx].reshape(-1, 3, 1024).transpose(0, 2, 1).copy(), y[idx])
    return out


def _class_ids(names: set[str]) -> dict[str, int]:
    if names <= set(CLASSES):
        return {c: CLASSES.index(c) for c in names}
    return {c: i for i, c in enumerate(sorted(names))}


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    if arr.shape != (32, 32, 3):
        raise DataError(f"CIFAR image of shape {arr.shape}; expected 32×32")
    return arr.reshape(1024, 3)


def read_image_tree(root: str | Path, limits: dict[str, int | None] | None = None, seed: int = 0) -> dict[str, Split]:
    """`<root>/{train,test}/<class>/*` images, or the same tree inside a .zip (a top folder is allowed)."""
    root = Path(root)
    limits = limits or {}
    if root.suffix == ".zip":
        zf = zipfile.ZipFile(root)
        entries = [n for n in zf.namelist() if n.lower().endswith(_EXT)]
        read = zf.read
    else:
        zf = None
        entries = [str(p.relative_to(root)) for p in root.rglob("*") if p.suffix.lower() in _EXT]
        read = lambda n: (root / n).read_bytes()  # noqa: E731
    try:
        by_split: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
        for name in sorted(entries):
            parts = Path(name).parts
            if len(parts) < 3 or parts[-3] not in by_split:
                continue
            by_split[parts[-3]].append((name, parts[-2]))
        if not by_split["train"] or not by_split["test"]:
            raise DataError(f"{root}: expected images under train/<class>/ and test/<class>/")
        ids = _class_ids({c for items in by_split.values() for _, c in items})
        out = {}
        for split, items in by_split.items():
            idx = _subset(len(items), limits.get(split), seed)
            x = np.stack([_decode(read(items[i][0])) for i in idx])
            y = np.array([ids[items[i][1]] for i in idx], dtype=np.int64)
            out[split] = (x, y)
        return out
    finally:
        if zf is not None:
            zf.close()
